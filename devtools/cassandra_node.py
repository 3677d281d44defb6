"""Run the project's own local Cassandra: fetch, configure, start, wait, stop.

Cassandra has no Debian package and the machines reach no download mirror, so the
server comes from Maven Central as ``org.apache.cassandra:cassandra-all``: Maven
resolves its runtime classpath once into a cache folder, and this module starts the
daemon class directly on the machine's JDK 17.

One node runs on 127.0.0.1; ``--nodes N`` adds nodes on 127.0.0.2 ... 127.0.0.N as one
cluster (same ports, distinct loopback addresses and data folders). Starting a node
that answers is a no-op; a node whose process died is started again.

Used by the Makefile, the test suite and ``manage.py cassandra_node``. Standard
library only, except the readiness probe, which uses the project's Cassandra driver.

    python -m devtools.cassandra_node start [--nodes N]
    python -m devtools.cassandra_node stop | status | fetch | wipe
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from devtools import maven

CASSANDRA_VERSION = "5.0.8"
ROOT = Path(__file__).resolve().parent.parent
POM = Path(__file__).resolve().parent / "cassandra" / "pom.xml"
HEAP = os.environ.get("IMAGEDL_CASSANDRA_HEAP") or "768M"
READY_TIMEOUT = float(os.environ.get("IMAGEDL_CASSANDRA_READY_TIMEOUT") or 180)


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "imagedl" / f"cassandra-{CASSANDRA_VERSION}"
    return Path(os.environ.get("IMAGEDL_CASSANDRA_CACHE") or default)


# Processes started by this process, by node folder: their exit status tells why a
# node died while starting.
_STARTED: dict[Path, subprocess.Popen] = {}


def data_root() -> Path:
    return Path(os.environ.get("IMAGEDL_CASSANDRA_DATA") or ROOT / "var" / "cassandra")


# Read when used, not when imported: the test suite chooses its node's ports in its
# settings, and a process may import this module before or after that.
def native_port() -> int:
    return int(os.environ.get("CASSANDRA_PORT") or 9042)


def storage_port() -> int:
    return int(os.environ.get("IMAGEDL_CASSANDRA_STORAGE_PORT") or 7010)


class NodeError(RuntimeError):
    """The node could not be fetched, started or stopped; the message says why."""


class NodeExited(NodeError):
    """The node's process ended before it answered CQL."""


def log(message: str) -> None:
    print(f"[cassandra] {message}", file=sys.stderr, flush=True)


# --- runtime -----------------------------------------------------------------------


def lib_dir() -> Path:
    return cache_dir() / "lib"


def runtime_ready() -> bool:
    lib = lib_dir()
    return (lib / f"cassandra-all-{CASSANDRA_VERSION}.jar").exists() and any(lib.glob("jamm-*.jar"))


def fetch_runtime() -> Path:
    """Resolve cassandra-all and its runtime dependencies into the cache (once)."""
    if runtime_ready():
        return lib_dir()
    log(f"fetching cassandra-all {CASSANDRA_VERSION} and its dependencies from Maven Central")
    try:
        maven.resolve(POM, {"cassandra.version": CASSANDRA_VERSION}, lib_dir(), "Cassandra")
    except maven.MavenError as exc:
        raise NodeError(str(exc)) from exc
    return lib_dir()


def java_binary() -> str:
    home = os.environ.get("JAVA_HOME")
    candidates = [Path(home) / "bin" / "java"] if home else []
    candidates.append(Path("/usr/lib/jvm/java-17-openjdk-amd64/bin/java"))
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    found = shutil.which("java")
    if not found:
        raise NodeError("no Java runtime found; install openjdk-17-jre-headless")
    return found


# --- one node ----------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    index: int  # 1-based
    root: Path | None = None  # the data folder; None: data_root() when used

    @property
    def address(self) -> str:
        return f"127.0.0.{self.index}"

    @property
    def home(self) -> Path:
        return (self.root or data_root()) / f"node{self.index}"

    @property
    def pid_file(self) -> Path:
        return self.home / "cassandra.pid"

    @property
    def out_file(self) -> Path:
        return self.home / "logs" / "console.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, PermissionError):
            return None
        # A recycled pid belongs to something else: only our daemon counts.
        if b"CassandraDaemon" not in cmdline or str(self.home).encode() not in cmdline:
            return None
        return pid

    def write_config(self, seeds: str) -> Path:
        conf = self.home / "conf"
        for sub in ("conf", "data", "commitlog", "saved_caches", "hints", "cdc_raw", "logs"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        yaml = f"""# Written by devtools/cassandra_node.py; edits are overwritten at each start.
cluster_name: imagedl-local
num_tokens: 1
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
commitlog_sync: periodic
commitlog_sync_period: 10000ms
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "{seeds}"
listen_address: {self.address}
rpc_address: {self.address}
native_transport_port: {native_port()}
storage_port: {storage_port()}
start_native_transport: true
auto_bootstrap: {"false" if self.index == 1 else "true"}
auto_snapshot: false
hinted_handoff_enabled: false
concurrent_reads: 8
concurrent_writes: 8
concurrent_counter_writes: 4
concurrent_materialized_view_writes: 4
concurrent_compactors: 1
data_file_directories:
  - {self.home / "data"}
commitlog_directory: {self.home / "commitlog"}
saved_caches_directory: {self.home / "saved_caches"}
hints_directory: {self.home / "hints"}
cdc_raw_directory: {self.home / "cdc_raw"}
"""
        (conf / "cassandra.yaml").write_text(yaml)
        (conf / "logback.xml").write_text(
            f"""<configuration scan="false">
  <appender name="FILE" class="ch.qos.logback.core.rolling.RollingFileAppender">
    <file>{self.home / "logs" / "system.log"}</file>
    <rollingPolicy class="ch.qos.logback.core.rolling.FixedWindowRollingPolicy">
      <fileNamePattern>{self.home / "logs" / "system.log.%i"}</fileNamePattern>
      <minIndex>1</minIndex><maxIndex>3</maxIndex>
    </rollingPolicy>
    <triggeringPolicy class="ch.qos.logback.core.rolling.SizeBasedTriggeringPolicy">
      <maxFileSize>20MB</maxFileSize>
    </triggeringPolicy>
    <encoder><pattern>%-5level [%thread] %date{{ISO8601}} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="FILE"/></root>
</configuration>
"""
        )
        return conf

    def command(self, conf: Path) -> list[str]:
        lib = lib_dir()
        jamm = sorted(lib.glob("jamm-*.jar"))[-1]
        java = java_binary()
        # Flags from Cassandra 5.0's conf/jvm17-server.options: without the module
        # opens it stops with "Cassandra is unable to access required classes".
        module_flags = [
            "--add-exports",
            "java.base/jdk.internal.misc=ALL-UNNAMED",
            "--add-exports",
            "java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
            "--add-exports",
            "java.rmi/sun.rmi.registry=ALL-UNNAMED",
            "--add-exports",
            "java.rmi/sun.rmi.server=ALL-UNNAMED",
            "--add-exports",
            "java.sql/java.sql=ALL-UNNAMED",
            "--add-exports",
            "java.base/java.lang.ref=ALL-UNNAMED",
            "--add-exports",
            "jdk.unsupported/sun.misc=ALL-UNNAMED",
            "--add-opens",
            "java.base/java.lang.module=ALL-UNNAMED",
            "--add-opens",
            "java.base/jdk.internal.loader=ALL-UNNAMED",
            "--add-opens",
            "java.base/jdk.internal.ref=ALL-UNNAMED",
            "--add-opens",
            "java.base/jdk.internal.reflect=ALL-UNNAMED",
            "--add-opens",
            "java.base/jdk.internal.math=ALL-UNNAMED",
            "--add-opens",
            "java.base/jdk.internal.module=ALL-UNNAMED",
            "--add-opens",
            "java.base/jdk.internal.util.jar=ALL-UNNAMED",
            "--add-opens",
            "jdk.management/com.sun.management.internal=ALL-UNNAMED",
            "--add-opens",
            "java.base/sun.nio.ch=ALL-UNNAMED",
            "--add-opens",
            "java.base/java.io=ALL-UNNAMED",
            "--add-opens",
            "java.base/java.lang.reflect=ALL-UNNAMED",
            "--add-opens",
            "java.base/java.lang=ALL-UNNAMED",
            "--add-opens",
            "java.base/java.util=ALL-UNNAMED",
        ]
        if (Path(java).parent / "javac").exists():
            module_flags += [
                "--add-exports",
                "jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
                "--add-exports",
                "jdk.attach/sun.tools.attach=ALL-UNNAMED",
                "--add-opens",
                "jdk.compiler/com.sun.tools.javac=ALL-UNNAMED",
            ]
        return [
            java,
            f"-Xms{HEAP}",
            f"-Xmx{HEAP}",
            "-Xss512k",
            "-XX:+UseG1GC",
            "-XX:+ParallelRefProcEnabled",
            "-XX:MaxGCPauseMillis=300",
            "-XX:+HeapDumpOnOutOfMemoryError",
            f"-XX:HeapDumpPath={self.home / 'logs'}",
            "-XX:TieredStopAtLevel=1"
            if os.environ.get("IMAGEDL_CASSANDRA_QUICK_JIT")
            else "-XX:+UseStringDeduplication",
            "-Djdk.attach.allowAttachSelf=true",
            "-Dio.netty.tryReflectionSetAccessible=true",
            *module_flags,
            f"-javaagent:{jamm}",
            f"-Dcassandra.config=file://{conf / 'cassandra.yaml'}",
            f"-Dcassandra.storagedir={self.home}",
            f"-Dcassandra.logdir={self.home / 'logs'}",
            f"-Dlogback.configurationFile={conf / 'logback.xml'}",
            "-Dcassandra-foreground=yes",
            "-Dcassandra.skip_wait_for_gossip_to_settle=0",
            "-Dcassandra.ring_delay_ms=1000",
            "-Dcassandra.superuser_setup_delay_ms=0",
            # A development and test node: no fsync. Killing the process loses nothing
            # (the OS keeps the writes); production uses CASSANDRA_HOSTS instead.
            "-Dcassandra.skip_sync=true",
            f"-Dimagedl.node.home={self.home}",
            "-cp",
            f"{conf}:{lib}/*",
            "org.apache.cassandra.service.CassandraDaemon",
        ]

    def start(self, seeds: str) -> bool:
        """Start the node if it is not running; return True if a process was started."""
        if self.pid() is not None:
            return False
        if answers_cql(self.address, timeout=2):
            # Another checkout's node (or a system Cassandra) already serves this
            # address; a second JVM could not bind the port anyway.
            where = f"{self.address}:{native_port()}"
            log(f"a Cassandra node not started from here already answers on {where}; using it")
            return False
        fetch_runtime()
        conf = self.write_config(seeds)
        log(f"starting node {self.index} on {self.address}:{native_port()} (data in {self.home})")
        with open(self.out_file, "ab") as out:
            process = subprocess.Popen(
                self.command(conf),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in a terminal reaches it only via stop()
                cwd=self.home,
            )
        self.pid_file.write_text(str(process.pid))
        _STARTED[self.home] = process
        return True

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        process = _STARTED.get(self.home)
        while time.monotonic() < deadline:
            # First: a node that answers is ready, whoever started it (another
            # checkout's node on the same address is used as it is).
            if answers_cql(self.address, timeout=3):
                return
            code = process.poll() if process is not None else None
            if code is not None or (process is None and self.pid() is None):
                status = f" (exit status {code})" if code is not None else ""
                raise NodeExited(
                    f"node {self.index} exited while starting{status}; last lines of its log:\n"
                    + self.log_tail()
                )
            time.sleep(0.5)
        raise NodeError(
            f"node {self.index} did not answer CQL within {timeout:.0f}s; log tail:\n" + self.log_tail()
        )

    def stop(self, timeout: float = 60) -> bool:
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        log(f"stopping node {self.index} (pid {pid})")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pid() is not None:
            time.sleep(0.2)
        if self.pid() is not None:
            log(f"node {self.index} ignored SIGTERM for {timeout:.0f}s; killing it")
            os.kill(pid, signal.SIGKILL)
            while self.pid() is not None:
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 40) -> str:
        chunks = []
        for path in (self.out_file, self.home / "logs" / "system.log"):
            if path.exists():
                chunks.append(
                    f"--- {path}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
                )
        return "\n".join(chunks) or "(no log written)"


def answers_cql(address: str, port: int | None = None, timeout: float = 3.0) -> bool:
    """True if a driver session at address:port (the native port by default) answers a
    query on system.local."""
    import socket

    port = native_port() if port is None else port

    try:
        with socket.create_connection((address, port), timeout=timeout):
            pass
    except OSError:
        return False
    try:
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import WhiteListRoundRobinPolicy
    except ImportError:  # no driver here: an open native port is the best we can tell
        return True
    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([address]))
    cluster = Cluster(
        [address],
        port=port,
        connect_timeout=timeout,
        control_connection_timeout=timeout,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        protocol_version=4,
    )
    try:
        session = cluster.connect()
        row = session.execute("SELECT release_version FROM system.local", timeout=timeout).one()
        return row is not None
    except Exception:
        return False
    finally:
        cluster.shutdown()


# --- the cluster ---------------------------------------------------------------------


def existing_nodes() -> list[Node]:
    root = data_root()
    if not root.exists():
        return []
    indexes = sorted(int(p.name[4:]) for p in root.glob("node*") if p.name[4:].isdigit())
    return [Node(i) for i in indexes]


def start(nodes: int = 1) -> list[str]:
    """Start nodes 1..N (those not running) and wait until each answers CQL."""
    if nodes < 1 or nodes > 9:
        raise NodeError("--nodes must be between 1 and 9")
    fetch_runtime()
    # One at a time: a joining node must see the previous ones up.
    return [start_node(Node(index)) for index in range(1, nodes + 1)]


def start_node(node: Node, seeds: str = "127.0.0.1") -> str:
    """Start one node unless it runs, wait until it answers CQL; its address."""
    started = node.start(seeds)
    t0 = time.monotonic()
    try:
        node.wait_ready()
    except NodeExited as exc:
        if not started:
            raise
        # Seen under loaded test runs: a joining node's JVM gone at once (nothing in
        # its log), or "Unable to contact any seeds" while the seed was busy. One more
        # try, saying so.
        log(f"{exc}\nstarting node {node.index} once more")
        node.start(seeds)
        node.wait_ready()
    if started:
        log(f"node {node.index} answers CQL after {time.monotonic() - t0:.1f}s")
    else:
        log(f"node {node.index} already running (pid {node.pid()})")
    return node.address


def stop() -> int:
    stopped = 0
    for node in reversed(existing_nodes()):
        stopped += node.stop()
    return stopped


def status() -> list[tuple[Node, int | None, bool]]:
    return [(n, n.pid(), answers_cql(n.address, timeout=2)) for n in existing_nodes()]


def wipe() -> None:
    stop()
    shutil.rmtree(data_root(), ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cassandra_node", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["start", "stop", "status", "fetch", "wipe", "restart"])
    parser.add_argument("--nodes", type=int, default=1, help="nodes to run (127.0.0.1..N)")
    args = parser.parse_args(argv)
    try:
        if args.action == "fetch":
            print(fetch_runtime())
        elif args.action == "start":
            print(",".join(start(args.nodes)))
        elif args.action == "restart":
            stop()
            print(",".join(start(args.nodes)))
        elif args.action == "stop":
            print(f"stopped {stop()} node(s)")
        elif args.action == "wipe":
            wipe()
            print(f"removed {data_root()}")
        else:
            rows = status()
            if not rows:
                print("no local node has been created")
            for node, pid, ok in rows:
                state = "answering" if ok else ("starting or stuck" if pid else "stopped")
                print(f"node{node.index} {node.address}:{native_port()} pid={pid or '-'} {state}")
    except NodeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
