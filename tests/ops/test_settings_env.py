"""Environment settings parse into typed values and reject bad ones with a clear message."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from imagedl_site.env import (
    env_bool,
    env_int,
    env_int_list,
    env_list,
    env_str,
    parse_hosts,
    parse_replication,
)
from tests.paths import REPO


def test_defaults_apply_when_unset_or_blank():
    assert env_int("X", 30, environ={}) == 30
    assert env_int("X", 30, environ={"X": "  "}) == 30
    assert env_bool("X", True, environ={}) is True
    assert env_list("X", ["a"], environ={}) == ["a"]
    assert env_str("X", "d", environ={"X": ""}) == "d"


@pytest.mark.parametrize(
    "raw,expected", [("1", True), ("yes", True), ("ON", True), ("0", False), ("off", False)]
)
def test_booleans(raw, expected):
    assert env_bool("DEBUG", False, environ={"DEBUG": raw}) is expected


def test_bad_boolean_names_variable_and_value():
    with pytest.raises(ImproperlyConfigured, match=r"DEBUG='maybe' is not a boolean"):
        env_bool("DEBUG", False, environ={"DEBUG": "maybe"})


def test_bad_integers_are_rejected_with_bounds():
    with pytest.raises(ImproperlyConfigured, match="IMAGEDL_RETENTION_MINUTES='half' is not a whole number"):
        env_int("IMAGEDL_RETENTION_MINUTES", 30, environ={"IMAGEDL_RETENTION_MINUTES": "half"})
    with pytest.raises(ImproperlyConfigured, match="below the minimum of 1"):
        env_int("IMAGEDL_RETENTION_MINUTES", 30, minimum=1, environ={"IMAGEDL_RETENTION_MINUTES": "0"})
    assert env_int("P", 1, maximum=65535, environ={"P": "9042"}) == 9042


def test_lists_split_on_commas_and_drop_blanks():
    assert env_list("H", environ={"H": "10.0.0.1, cass-2 ,,"}) == ["10.0.0.1", "cass-2"]


def test_lists_of_seconds():
    name = "IMAGEDL_WEBHOOK_RETRY_SECONDS"
    assert env_int_list(name, [5, 300], minimum=1, environ={}) == [5, 300]
    assert env_int_list(name, [5], minimum=1, environ={name: "1, 2,3"}) == [1, 2, 3]
    with pytest.raises(ImproperlyConfigured, match="not a comma list of whole numbers"):
        env_int_list(name, [5], minimum=1, environ={name: "5,soon"})
    with pytest.raises(ImproperlyConfigured, match="below the minimum of 1"):
        env_int_list(name, [5], minimum=1, environ={name: "5,0"})


def test_replication_forms():
    assert parse_replication("1") == {"strategy_class": "SimpleStrategy", "replication_factor": 1}
    assert parse_replication("SimpleStrategy:3")["replication_factor"] == 3
    assert parse_replication("NetworkTopologyStrategy:dc1=3,dc2=2") == {
        "strategy_class": "NetworkTopologyStrategy",
        "dc1": 3,
        "dc2": 2,
    }
    for bad in ("SimpleStrategy:zero", "Fancy:3", "NetworkTopologyStrategy:dc1", "0"):
        with pytest.raises(ImproperlyConfigured, match="CASSANDRA_REPLICATION"):
            parse_replication(bad)


def test_hosts_reject_ports_and_urls():
    assert parse_hosts(["127.0.0.1", "cass.internal"]) == ["127.0.0.1", "cass.internal"]
    with pytest.raises(ImproperlyConfigured, match="CASSANDRA_PORT"):
        parse_hosts(["127.0.0.1:9042"])


def _load_settings(**env: str) -> subprocess.CompletedProcess:
    """Import the real settings module in a fresh interpreter with the given environment."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEDL_", "CASSANDRA_", "EMAIL_"))}
    environ.update(env)
    code = (
        "import imagedl_site.settings as s;"
        "print(s.IMAGEDL_RETENTION_MINUTES, s.EMAIL_BACKEND, s.DATABASES['cassandra']['HOST'],"
        " s.CASSANDRA_LOCAL_NODE, s.DATABASES['default']['ENGINE'])"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=environ, capture_output=True, text=True)


def test_real_settings_zero_config_defaults():
    result = _load_settings()
    assert result.returncode == 0, result.stderr
    retention, backend, hosts, local, engine = result.stdout.split()
    assert retention == "30"
    assert backend.endswith("console.EmailBackend")
    assert hosts == "127.0.0.1" and local == "True"
    assert engine.endswith("sqlite3")


def test_real_settings_read_the_environment():
    result = _load_settings(
        IMAGEDL_RETENTION_MINUTES="45", EMAIL_HOST="smtp.example.org", CASSANDRA_HOSTS="10.1.0.5,10.1.0.6"
    )
    assert result.returncode == 0, result.stderr
    retention, backend, hosts, local, _ = result.stdout.split()
    assert retention == "45"
    assert backend.endswith("smtp.EmailBackend")
    assert hosts == "10.1.0.5,10.1.0.6" and local == "False"


@pytest.mark.parametrize(
    "env,message",
    [
        ({"IMAGEDL_RETENTION_MINUTES": "soon"}, "IMAGEDL_RETENTION_MINUTES='soon' is not a whole number"),
        ({"EMAIL_PORT": "99999"}, "EMAIL_PORT=99999 is above the maximum of 65535"),
        ({"DEBUG": "sure"}, "DEBUG='sure' is not a boolean"),
        ({"IMAGEDL_BASE_URL": "imagedl.example"}, "IMAGEDL_BASE_URL='imagedl.example' must start with http"),
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL='mysql://x/y': scheme must be"),
        ({"CASSANDRA_KEYSPACE": "drop table;"}, "CASSANDRA_KEYSPACE='drop table;'"),
        ({"CASSANDRA_CONSISTENCY": "MOST"}, "CASSANDRA_CONSISTENCY='MOST' must be one of"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL='localhost:6379' must start with redis://"),
        ({"REDIS_URL": "redis://h:6379/queue"}, "the path must be a database number"),
    ],
)
def test_real_settings_refuse_bad_values_with_a_clear_message(env, message):
    result = _load_settings(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


SCALE_OUT = (
    "import json, imagedl_site.settings as s;"
    "from cassandra.cluster import EXEC_PROFILE_DEFAULT as D;"
    "p = s.DATABASES['cassandra']['OPTIONS']['connection']['execution_profiles'][D];"
    "print(json.dumps({'dc': p.load_balancing_policy._child_policy.local_dc,"
    " 'cl': p.consistency_level, 'serial': p.serial_consistency_level,"
    " 'broker': sorted(k for k in ('orm', 'redis') if k in s.Q_CLUSTER),"
    " 'cache': s.CACHES['default'], 'bucket': s.IMAGEDL_S3_BUCKET, 'redirect': s.IMAGEDL_S3_REDIRECT}))"
)


def _scale_out_settings(**env: str) -> dict:
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("IMAGEDL_", "CASSANDRA_", "EMAIL_", "REDIS_", "AWS_", "DATABASE_URL"))
    }
    result = subprocess.run(
        [sys.executable, "-c", SCALE_OUT], cwd=REPO, env={**environ, **env}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    import json

    return json.loads(result.stdout)


def test_one_machine_by_default_several_with_redis_s3_and_a_local_data_centre():
    from cassandra import ConsistencyLevel

    alone = _scale_out_settings()
    assert alone["broker"] == ["orm"] and alone["cache"]["BACKEND"] == "jobs.lib.cache.FileCache"
    assert alone["bucket"] == "" and alone["dc"] is None
    assert alone["cl"] == ConsistencyLevel.LOCAL_QUORUM and alone["serial"] == ConsistencyLevel.LOCAL_SERIAL

    several = _scale_out_settings(
        REDIS_URL="redis://redis.internal:6379/2",
        IMAGEDL_S3_BUCKET="imagedl-archives",
        IMAGEDL_S3_REDIRECT="0",
        CASSANDRA_LOCAL_DC="dc2",
        CASSANDRA_CONSISTENCY="QUORUM",
    )
    assert several["broker"] == ["redis"]  # "orm" dropped: django-q2 would prefer it
    assert several["cache"] == {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://redis.internal:6379/3",  # the next database: the broker's is never flushed
    }
    assert several["bucket"] == "imagedl-archives" and several["redirect"] is False
    assert several["dc"] == "dc2" and several["cl"] == ConsistencyLevel.QUORUM


def test_leases_are_fenced_across_data_centres_with_serial():
    from cassandra import ConsistencyLevel

    one_dc = _scale_out_settings(
        CASSANDRA_LOCAL_DC="dc1", CASSANDRA_REPLICATION="NetworkTopologyStrategy:dc1=3"
    )
    assert one_dc["serial"] == ConsistencyLevel.LOCAL_SERIAL
    two_dcs = _scale_out_settings(
        CASSANDRA_LOCAL_DC="dc1", CASSANDRA_REPLICATION="NetworkTopologyStrategy:dc1=3,dc2=3"
    )
    assert two_dcs["serial"] == ConsistencyLevel.SERIAL  # LOCAL_SERIAL fences one data centre only
    chosen = _scale_out_settings(
        CASSANDRA_LOCAL_DC="dc1",
        CASSANDRA_REPLICATION="NetworkTopologyStrategy:dc1=3,dc2=3",
        CASSANDRA_SERIAL_CONSISTENCY="LOCAL_SERIAL",
    )
    assert chosen["serial"] == ConsistencyLevel.LOCAL_SERIAL
