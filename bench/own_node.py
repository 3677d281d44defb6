"""A benchmark's own Cassandra node and Django databases, in a folder of its own.

``node_env`` is the environment every process of the bench shares (the bench itself,
the node, workers); ``node_ready`` stops a node an interrupted run left, wipes the
folder, starts the node and makes the tables; ``cassandra_node`` runs
``devtools.cassandra_node`` with that environment (``stop`` at the end)."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.mailserver import free_port

ROOT = Path(__file__).resolve().parent.parent


def node_env(out: Path, keyspace: str, **extra: str) -> dict[str, str]:
    """The settings of a bench whose files live in ``out``: SQLite there, a node on
    two free ports with its data there, ``keyspace``; ``extra`` adds or overrides."""
    return dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="imagedl_site.settings",
        IMAGEDL_VAR_DIR=str(out),
        DATABASE_URL=f"sqlite:///{out / 'imagedl.sqlite3'}",
        IMAGEDL_CASSANDRA_DATA=str(out / "cassandra"),
        CASSANDRA_HOSTS="127.0.0.1",
        CASSANDRA_PORT=str(free_port()),
        IMAGEDL_CASSANDRA_STORAGE_PORT=str(free_port()),
        CASSANDRA_KEYSPACE=keyspace,
        **extra,
    )


def cassandra_node(env: dict[str, str], action: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "devtools.cassandra_node", action],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"cassandra_node {action} failed:\n{result.stdout}{result.stderr}")


def node_ready(out: Path, env: dict[str, str], log_level: str = "WARNING") -> None:
    """A fresh ``out``, its node answering and this process's Django set up on it with
    every table made (``migrate``, ``sync_cassandra``), logging at ``log_level``."""
    with contextlib.suppress(RuntimeError):  # a node left running by an interrupted run
        cassandra_node(env, "stop")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    os.environ.update({k: v for k, v in env.items() if k != "PYTHONUNBUFFERED"})
    os.environ["IMAGEDL_LOG_LEVEL"] = log_level
    began = time.monotonic()
    print(
        f"starting a Cassandra node on 127.0.0.1:{env['CASSANDRA_PORT']} (data in {out / 'cassandra'})",
        flush=True,
    )
    cassandra_node(env, "start")
    print(f"  answers after {time.monotonic() - began:.0f} s", flush=True)
    import django

    django.setup()
    from django.core.management import call_command

    with contextlib.redirect_stdout(io.StringIO()):
        call_command("migrate", verbosity=0)
        call_command("sync_cassandra", verbosity=0)
