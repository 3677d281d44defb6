"""Environment settings parse into typed values and reject bad ones with a clear message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from imagedl_site.env import env_bool, env_int, env_list, env_str, parse_hosts, parse_replication

ROOT = Path(__file__).resolve().parent.parent


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
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environ, capture_output=True, text=True)


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
    ],
)
def test_real_settings_refuse_bad_values_with_a_clear_message(env, message):
    result = _load_settings(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr
