"""sync_cassandra brings an existing keyspace's replication to CASSANDRA_REPLICATION
(today's keyspaces were only ever created), on the suite's node, on a throwaway keyspace."""

from __future__ import annotations

import io
import uuid

import pytest
from django.core.management import call_command

from imagedl_site.env import parse_replication
from jobs.store import cassandra
from jobs.store.cassandra import align_replication, keyspace_replication

pytestmark = [pytest.mark.django_db(databases=["default", "cassandra"])]


@pytest.fixture
def throwaway_keyspace(cassandra_db):
    name = f"align_{uuid.uuid4().hex[:12]}"
    cassandra.execute(
        f"CREATE KEYSPACE {name} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}",
        timeout=60,
    )
    yield name
    cassandra.execute(f"DROP KEYSPACE IF EXISTS {name}", timeout=60)


def test_simple_strategy_one_two_one(throwaway_keyspace):
    ks = throwaway_keyspace
    assert keyspace_replication(ks) == {"class": "SimpleStrategy", "replication_factor": "1"}
    assert align_replication(ks, parse_replication("SimpleStrategy:1")) == ""  # already so

    grown = align_replication(ks, parse_replication("SimpleStrategy:2"))
    assert keyspace_replication(ks) == {"class": "NetworkTopologyStrategy", "datacenter1": "2"}
    assert "SimpleStrategy:replication_factor=1 -> NetworkTopologyStrategy:datacenter1=2" in grown
    assert "repair" in grown
    assert align_replication(ks, parse_replication("SimpleStrategy:2")) == ""

    shrunk = align_replication(ks, parse_replication("SimpleStrategy:1"))
    assert keyspace_replication(ks) == {"class": "NetworkTopologyStrategy", "datacenter1": "1"}
    assert "datacenter1=2 -> NetworkTopologyStrategy:datacenter1=1" in shrunk and "repair" not in shrunk


def test_network_topology_by_data_centre(throwaway_keyspace):
    ks = throwaway_keyspace
    done = align_replication(ks, parse_replication("NetworkTopologyStrategy:datacenter1=1"))
    assert keyspace_replication(ks) == {"class": "NetworkTopologyStrategy", "datacenter1": "1"}
    assert "repair" not in done  # the same replicas, another class
    assert align_replication(ks, parse_replication("NetworkTopologyStrategy:datacenter1=1")) == ""
    assert "repair" in align_replication(ks, parse_replication("NetworkTopologyStrategy:datacenter1=3"))


def test_a_missing_keyspace_is_left_to_the_create(cassandra_db):
    assert align_replication("no_such_keyspace_here", parse_replication("SimpleStrategy:3")) == ""


def test_sync_cassandra_alters_the_configured_keyspace(throwaway_keyspace, settings):
    from django.db import connections

    settings_dict = connections["cassandra"].settings_dict
    real_name = settings_dict["NAME"]
    settings_dict["NAME"] = throwaway_keyspace
    settings.CASSANDRA_REPLICATION = parse_replication("SimpleStrategy:2")
    out = io.StringIO()
    try:
        call_command("sync_cassandra", database="cassandra", stdout=out)
    finally:
        settings_dict["NAME"] = real_name
    assert keyspace_replication(throwaway_keyspace) == {
        "class": "NetworkTopologyStrategy",
        "datacenter1": "2",
    }
    assert f"keyspace {throwaway_keyspace}: replication" in out.getvalue() and "repair" in out.getvalue()
