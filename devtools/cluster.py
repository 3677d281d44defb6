"""A whole imagedl deployment on one machine, on 127.0.0.0/8, for development, tests
and benchmarks: three Cassandra nodes, PostgreSQL, Redis, an S3 server (s3proxy), two
workers and two web processes, all in the background, everything under one folder
(``var/cluster/`` by default: pids, data and logs).

    python -m devtools.cluster up [--root DIR] [--free-ports]
    python -m devtools.cluster status | down
    python -m devtools.cluster kill NAME | start NAME

``up`` starts what is not running, prepares the databases and the bucket, waits until
every part answers and prints one JSON line (web URLs, Cassandra contact points,
PostgreSQL, Redis and S3 URLs, worker names); if a part does not come up it exits
non-zero naming it. The ports are chosen at the first ``up`` (fixed ones, or free ones
with ``--free-ports``) and kept in ``cluster.json`` with the environment given to
``up`` (engine base URLs, ``EMAIL_*``, ``IMAGEDL_*``...), which reaches every process;
``start NAME`` uses both again. Names: cassandra-1..3, postgres, redis, s3, worker-1..2,
web-1..2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from devtools import cassandra_node
from devtools.app_process import AppProcess
from devtools.postgres import Postgres
from devtools.redis_server import RedisServer
from devtools.s3proxy import S3Proxy
from devtools.service import Service, masked

ROOT = Path(__file__).resolve().parent.parent
NODES = 3
WORKERS = 2
WEBS = 2
READY_TIMEOUT = float(os.environ.get("IMAGEDL_CLUSTER_READY_TIMEOUT") or 300)
FIXED_PORTS = {
    "cassandra": 9242,
    "cassandra_storage": 7210,
    "postgres": 5442,
    "redis": 6389,
    "s3": 8281,
    "web": [8001, 8002],
    "worker_metrics": [9811, 9812],  # each worker's /metrics (ops/prometheus/prometheus.yml)
}
# Set per process by the cluster, never taken from the caller's environment.
OWNED = {
    "DJANGO_SETTINGS_MODULE",
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "CASSANDRA_HOSTS",
    "CASSANDRA_PORT",
    "CASSANDRA_REPLICATION",
    "CASSANDRA_LOCAL_DC",
    "IMAGEDL_VAR_DIR",
    "IMAGEDL_STATIC_ROOT",
    "IMAGEDL_WORKER_METRICS_PORT",
    "IMAGEDL_S3_BUCKET",
    "AWS_S3_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_S3_REGION_NAME",
}
FORWARDED_PREFIXES = ("IMAGEDL_", "EMAIL_", "CASSANDRA_")
FORWARDED_NAMES = {"DEFAULT_FROM_EMAIL", "SERVER_EMAIL", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "DEBUG"}
# The suite's own node and markers are its business, not the cluster's.
NOT_FORWARDED_PREFIXES = ("IMAGEDL_TEST_", "IMAGEDL_CASSANDRA_", "IMAGEDL_MANAGED_")


class ClusterError(RuntimeError):
    """A part did not come up; the message names it."""


def log(message: str) -> None:
    print(f"[cluster] {message}", file=sys.stderr, flush=True)


# --- configuration kept between commands ----------------------------------------------


@dataclass
class Layout:
    root: Path
    ports: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)
    secret_key: str = ""
    s3_identity: str = ""
    s3_credential: str = ""
    keyspace: str = "imagedl"
    bucket: str = "imagedl"

    @property
    def file(self) -> Path:
        return self.root / "cluster.json"

    def save(self) -> None:
        """Write cluster.json atomically (readers see the old file or the new one), and
        private from its first byte: it holds the secret key and the S3 credential."""
        self.root.mkdir(parents=True, exist_ok=True)
        data = {k: v for k, v in asdict(self).items() if k != "root"}
        fd, temporary = tempfile.mkstemp(prefix=".cluster-", suffix=".tmp", dir=self.root)  # mode 0600
        try:
            with os.fdopen(fd, "w") as out:
                out.write(json.dumps(data, indent=2))
            os.replace(temporary, self.file)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, root: Path) -> Layout:
        path = root / "cluster.json"
        if not path.exists():
            raise ClusterError(f"no cluster under {root}: run `python -m devtools.cluster up` first")
        return cls(root=root, **json.loads(path.read_text()))

    @classmethod
    def first(cls, root: Path, free_ports: bool, environ: dict[str, str]) -> Layout:
        layout = cls(
            root=root,
            ports=choose_free_ports() if free_ports else dict(FIXED_PORTS),
            env=forwarded(environ),
            secret_key=environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
            s3_identity="imagedl",
            s3_credential=secrets.token_urlsafe(24),
            keyspace=environ.get("CASSANDRA_KEYSPACE") or "imagedl",
        )
        layout.save()
        return layout

    # --- the parts ---

    @property
    def cassandra_root(self) -> Path:
        return self.root / "cassandra"

    def node(self, index: int) -> cassandra_node.Node:
        return cassandra_node.Node(index, root=self.cassandra_root)

    def postgres(self) -> Postgres:
        return Postgres(self.root / "postgres", self.ports["postgres"])

    def redis(self) -> RedisServer:
        return RedisServer(self.root / "redis", self.ports["redis"])

    def s3(self) -> S3Proxy:
        return S3Proxy(self.root / "s3", self.ports["s3"], self.s3_identity, self.s3_credential)

    def app(self, name: str) -> AppProcess:
        kind, index = name.rsplit("-", 1)
        port = self.ports["web"][int(index) - 1] if kind == "web" else 0
        return AppProcess(self.root / name, name, kind, self.app_env(name), port)

    def web_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports['web'][index - 1]}"

    def cassandra_hosts(self) -> list[str]:
        return [f"127.0.0.{i}" for i in range(1, NODES + 1)]

    def app_env(self, name: str) -> dict[str, str]:
        """The environment of a worker, a web process or a manage.py command."""
        base = {
            k: v
            for k, v in os.environ.items()
            if k not in OWNED and not k.startswith(FORWARDED_PREFIXES) and k not in FORWARDED_NAMES
        }
        var_dir = self.root / name
        return {
            **base,
            **self.env,
            "DJANGO_SETTINGS_MODULE": "imagedl_site.settings",
            "PYTHONUNBUFFERED": "1",
            "SECRET_KEY": self.secret_key,
            "DATABASE_URL": self.postgres().url,
            "REDIS_URL": self.redis().url,
            "CASSANDRA_HOSTS": ",".join(self.cassandra_hosts()),
            "CASSANDRA_PORT": str(self.ports["cassandra"]),
            "CASSANDRA_KEYSPACE": self.keyspace,
            "CASSANDRA_REPLICATION": f"SimpleStrategy:{NODES}",
            "CASSANDRA_LOCAL_DC": "datacenter1",
            "IMAGEDL_VAR_DIR": str(var_dir),
            "IMAGEDL_STATIC_ROOT": str(self.root / "static"),
            "IMAGEDL_S3_BUCKET": self.bucket,
            "AWS_S3_ENDPOINT_URL": self.s3().url,
            "AWS_ACCESS_KEY_ID": self.s3_identity,
            "AWS_SECRET_ACCESS_KEY": self.s3_credential,
            "AWS_S3_REGION_NAME": "us-east-1",
            "IMAGEDL_WORKER_METRICS_PORT": self.worker_metrics_port(name),
        }

    def worker_metrics_port(self, name: str) -> str:
        """A worker's /metrics port (a cluster.json of an earlier version has none: off)."""
        ports = self.ports.get("worker_metrics", [])
        index = int(name.rsplit("-", 1)[1]) - 1 if name.startswith("worker-") else len(ports)
        return str(ports[index]) if index < len(ports) else "0"

    def use_node_ports(self) -> None:
        # devtools.cassandra_node reads its ports from the environment when it uses them.
        os.environ["CASSANDRA_PORT"] = str(self.ports["cassandra"])
        os.environ["IMAGEDL_CASSANDRA_STORAGE_PORT"] = str(self.ports["cassandra_storage"])


def forwarded(environ: dict[str, str]) -> dict[str, str]:
    """What of the caller's environment reaches every process of the cluster."""
    return {
        k: v
        for k, v in environ.items()
        if (k.startswith(FORWARDED_PREFIXES) or k in FORWARDED_NAMES)
        and k not in OWNED
        and k != "CASSANDRA_KEYSPACE"
        and not k.startswith(NOT_FORWARDED_PREFIXES)
    }


def port_free(port: int, addresses: tuple[str, ...] = ("127.0.0.1",)) -> bool:
    for address in addresses:
        with socket.socket() as probe:
            try:
                probe.bind((address, port))
            except OSError:
                return False
    return True


def choose_free_ports() -> dict:
    """Free ports below Linux's ephemeral range (so no outgoing connection takes one
    between the choice and the start); Cassandra's on all three node addresses."""
    import random

    taken: set[int] = set()
    node_addresses = tuple(f"127.0.0.{i}" for i in range(1, NODES + 1))

    def pick(addresses: tuple[str, ...] = ("127.0.0.1",)) -> int:
        while True:
            port = random.randint(20000, 32767)
            if port not in taken and port_free(port, addresses):
                taken.add(port)
                return port

    return {
        "cassandra": pick(node_addresses),
        "cassandra_storage": pick(node_addresses),
        "postgres": pick(),
        "redis": pick(),
        "s3": pick(),
        "web": [pick() for _ in range(WEBS)],
        "worker_metrics": [pick() for _ in range(WORKERS)],
    }


# --- starting, checking and stopping each part ---------------------------------------

SERVICES = ("postgres", "redis", "s3")


def names() -> list[str]:
    return [
        *(f"cassandra-{i}" for i in range(1, NODES + 1)),
        *SERVICES,
        *(f"worker-{i}" for i in range(1, WORKERS + 1)),
        *(f"web-{i}" for i in range(1, WEBS + 1)),
    ]


def _index(name: str) -> int:
    return int(name.rsplit("-", 1)[1])


def part(layout: Layout, name: str) -> Service:
    """The server of a part other than a Cassandra node."""
    if name in SERVICES:
        return getattr(layout, name)()
    if name.startswith(("worker-", "web-")) and name in names():
        return layout.app(name)
    raise ClusterError(f"no part named {name!r}; names: {', '.join(names())}")


def part_pid(layout: Layout, name: str) -> int | None:
    if name.startswith("cassandra-"):
        return layout.node(_index(name)).pid()
    return part(layout, name).pid()


def part_answers(layout: Layout, name: str) -> bool:
    if name.startswith("cassandra-"):
        node = layout.node(_index(name))
        return node.pid() is not None and cassandra_node.answers_cql(node.address, timeout=2)
    return part(layout, name).answering()


def start_part(layout: Layout, name: str) -> None:
    """Start one part (if it is not running) and wait until it answers."""
    layout.use_node_ports()
    try:
        if name.startswith("cassandra-") and name in names():
            cassandra_node.start_node(layout.node(_index(name)))
        else:
            part(layout, name).start(timeout=READY_TIMEOUT)
    except ClusterError:
        raise
    except Exception as exc:
        raise ClusterError(f"{name} did not come up: {exc}") from exc


def kill_part(layout: Layout, name: str) -> bool:
    """SIGKILL the part's process and its process group at once."""
    pid = part_pid(layout, name)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while part_pid(layout, name) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    log(f"{name} (pid {pid}) killed")
    return True


def stop_part(layout: Layout, name: str) -> bool:
    layout.use_node_ports()
    if name.startswith("cassandra-"):
        return layout.node(_index(name)).stop()
    return part(layout, name).stop()


# --- the commands ------------------------------------------------------------------------


def manage(layout: Layout, *args: str, attempts: int = 3) -> None:
    """Run a manage.py command of the setup with the cluster's environment. The setup
    commands are idempotent: one that fails is run again (a keyspace made while a node
    is still settling can miss the driver's schema agreement wait)."""
    env = layout.app_env("setup")
    (layout.root / "setup").mkdir(parents=True, exist_ok=True)
    for attempt in range(1, attempts + 1):
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
        )
        if done.returncode == 0:
            return
        if attempt < attempts:
            log(f"manage.py {' '.join(args)} failed (attempt {attempt}); once more in 5 s")
            time.sleep(5)
    raise ClusterError(f"manage.py {' '.join(args)} failed:\n{done.stdout}{done.stderr}"[-4000:])


def up(root: Path, free_ports: bool = False) -> dict:
    started = time.monotonic()
    try:
        layout = Layout.load(root)
    except ClusterError:
        layout = Layout.first(root, free_ports, dict(os.environ))
    layout.use_node_ports()
    cassandra_node.fetch_runtime()
    # The services start beside the nodes, which join one at a time.
    with ThreadPoolExecutor(max_workers=len(SERVICES)) as pool:
        services = {name: pool.submit(start_part, layout, name) for name in SERVICES}
        for index in range(1, NODES + 1):
            start_part(layout, f"cassandra-{index}")
        for future in services.values():
            future.result()
    log("databases answer; preparing them")
    manage(layout, "migrate", "--noinput", "-v0")
    manage(layout, "sync_cassandra", "-v0")
    manage(layout, "ensure_storage", "-v0")
    manage(layout, "collectstatic", "--noinput", "-v0")
    apps = [*(f"worker-{i}" for i in range(1, WORKERS + 1)), *(f"web-{i}" for i in range(1, WEBS + 1))]
    with ThreadPoolExecutor(max_workers=len(apps)) as pool:
        for future in [pool.submit(start_part, layout, name) for name in apps]:
            future.result()
    wait_queue_seen(layout)
    return summary(layout, started)


def summary(layout: Layout, started: float) -> dict:
    """What ``up`` prints: where each part answers, with no password (the URLs with
    theirs are in each part's folder and in cluster.json, both private)."""
    return {
        "web": [layout.web_url(i) for i in range(1, WEBS + 1)],
        "cassandra": [f"{host}:{layout.ports['cassandra']}" for host in layout.cassandra_hosts()],
        "postgres": masked(layout.postgres().url),
        "redis": masked(layout.redis().url),
        "s3": layout.s3().url,
        "workers": [f"worker-{i}" for i in range(1, WORKERS + 1)],
        "seconds": round(time.monotonic() - started, 1),
    }


def wait_queue_seen(layout: Layout, timeout: float = 120) -> None:
    """Every web sees both workers' django-q2 clusters (through Redis) and says ok."""
    deadline = time.monotonic() + timeout
    report: dict | None = None
    while time.monotonic() < deadline:
        reports = [layout.app(f"web-{i}").health() for i in range(1, WEBS + 1)]
        if all(r and r.get("ok") and r["components"]["queue"].get("clusters", 0) >= WORKERS for r in reports):
            return
        report = next((r for r in reports if not (r and r.get("ok"))), reports[0])
        time.sleep(1)
    raise ClusterError(f"the web processes do not report every part healthy: {json.dumps(report)}")


def status(layout: Layout) -> dict:
    layout.use_node_ports()
    return {name: {"pid": part_pid(layout, name), "up": part_answers(layout, name)} for name in names()}


def down(layout: Layout) -> None:
    for name in reversed(names()):
        if stop_part(layout, name):
            log(f"{name} stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "status", "down", "kill", "start"])
    parser.add_argument("name", nargs="?", help="the part, for kill and start")
    parser.add_argument("--root", type=Path, default=ROOT / "var" / "cluster")
    parser.add_argument(
        "--free-ports", action="store_true", help="at the first up: free ports, not fixed ones"
    )
    args = parser.parse_args(argv)
    root = args.root.resolve()
    try:
        if args.command == "up":
            print(json.dumps(up(root, args.free_ports)), flush=True)
            return 0
        layout = Layout.load(root)
        if args.command == "status":
            print(json.dumps(status(layout)))
        elif args.command == "down":
            down(layout)
        elif args.name not in names():
            parser.error(f"{args.command} needs a part name: {', '.join(names())}")
        elif args.command == "kill":
            if not kill_part(layout, args.name):
                log(f"{args.name} was not running")
        else:
            start_part(layout, args.name)
            log(f"{args.name} answers")
        return 0
    except ClusterError as exc:
        log(str(exc))
        return 1


if __name__ == "__main__":
    sys.exit(main())
