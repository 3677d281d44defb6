"""Where a machine's CPU time goes while a benchmark phase runs, by kind of process.

Reads /proc (the kernel's own accounting, independent of the code measured): the
machine's busy and idle time from /proc/stat, and each process's user + system time
from /proc/<pid>/stat, grouped by what the process is (Chromium, a worker, a web
process, a Cassandra JVM, ...). A sampler thread reads every process twice a second,
so processes that start and end within the phase (each job's Chromium) are counted up
to their last reading. With a ``Scope`` only the bench's processes count: the bench and
its descendants, and every process whose command line or environment names the
bench's folder (the services a command it ran left running: ``devtools.cluster up``
exits once they run) with their descendants (each worker's Chromium). Other work on
the machine is left out.

    with CpuSampler() as sampler:
        ... phase ...
    print(sampler.table())
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
KINDS = (
    ("bench (image hosts, imitation, mail)", (b"bench/bench_", b"bench.bench_")),
    ("chromium", (b"chromium", b"chromedriver")),
    ("cassandra", (b"CassandraDaemon",)),
    ("s3proxy", (b"s3proxy",)),
    ("postgres", (b"postgres",)),
    ("redis", (b"redis-server",)),
    ("worker", (b"qcluster",)),
    ("web", (b"gunicorn",)),
)


UNNAMED = "other"


def kind_of(cmdline: bytes) -> str:
    for kind, words in KINDS:
        if any(word in cmdline for word in words):
            return kind
    return "other"


@dataclass
class CpuSnapshot:
    busy: float = 0.0  # machine seconds not idle
    total: float = 0.0  # machine seconds, all cores
    by_process: dict[int, tuple[str, float]] = field(default_factory=dict)

    @classmethod
    def take(cls, scope: Scope | None = None) -> CpuSnapshot:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        snapshot = cls(busy=(sum(fields) - idle) / TICKS, total=sum(fields) / TICKS)
        parents: dict[int, int] = {}
        starts: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            seconds = (int(stat[11]) + int(stat[12])) / TICKS  # utime + stime
            snapshot.by_process[int(entry.name)] = (kind_of(cmdline), seconds)
            parents[int(entry.name)] = int(stat[1])
            starts[int(entry.name)] = int(stat[19])
        if scope is not None:
            inside = _descendants(scope.roots(starts), parents)
            snapshot.by_process = {pid: v for pid, v in snapshot.by_process.items() if pid in inside}
        return snapshot

    def since(self, before: CpuSnapshot) -> CpuPhase:
        per_kind: dict[str, float] = {}
        for pid, (kind, seconds) in self.by_process.items():
            earlier = before.by_process.get(pid)
            used = seconds - (earlier[1] if earlier and earlier[0] == kind else 0.0)
            per_kind[kind] = per_kind.get(kind, 0.0) + max(0.0, used)
        return CpuPhase(self.busy - before.busy, self.total - before.total, per_kind)


@dataclass
class CpuPhase:
    busy: float
    total: float
    per_kind: dict[str, float]

    def table(self) -> str:
        """``machine 93% busy; chromium 41%, worker 22%, ...`` (shares of busy time)."""
        parts = [
            f"{kind} {seconds / self.busy:.0%}"
            for kind, seconds in sorted(self.per_kind.items(), key=lambda item: -item[1])
            if seconds / max(self.busy, 1e-9) >= 0.01
        ]
        return f"machine {self.busy / max(self.total, 1e-9):.0%} busy; of that: " + ", ".join(parts)


@dataclass
class Scope:
    """The processes of one bench: ``pid`` (the bench) and those naming ``marker``."""

    pid: int
    marker: bytes
    _seen: dict[tuple[int, int], bool] = field(default_factory=dict)  # (pid, start tick)

    def roots(self, starts: dict[int, int]) -> set[int]:
        """``starts``: each process's start time (pids are reused)."""
        found = {self.pid}
        for pid, start in starts.items():
            named = self._seen.get((pid, start))
            if named is None:
                named = self._seen[(pid, start)] = self._names_marker(pid)
            if named:
                found.add(pid)
        return found

    def _names_marker(self, pid: int) -> bool:
        for part in ("cmdline", "environ"):
            try:
                if self.marker in Path(f"/proc/{pid}/{part}").read_bytes():
                    return True
            except OSError:
                continue
        return False


def _descendants(roots: set[int], parents: dict[int, int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found, todo = set(roots), list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


class CpuSampler:
    """Per-kind CPU seconds of every process seen during a ``with`` block."""

    def __init__(self, interval: float = 0.5, scope: Scope | None = None) -> None:
        self.interval = interval
        self.scope = scope
        self._baseline: dict[int, tuple[str, float]] = {}
        self._last: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.phase: CpuPhase | None = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._remember(CpuSnapshot.take(self.scope).by_process)

    def __enter__(self) -> CpuSampler:
        self._start = CpuSnapshot.take(self.scope)
        self._baseline = dict(self._start.by_process)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        end = CpuSnapshot.take(self.scope)
        self._remember(end.by_process)
        per_kind: dict[str, float] = {}
        for pid, (kind, seconds) in self._last.items():
            base = self._baseline.get(pid)
            used = seconds - (base[1] if base and base[0] == kind else 0.0)
            per_kind[kind] = per_kind.get(kind, 0.0) + max(0.0, used)
        self.phase = CpuPhase(end.busy - self._start.busy, end.total - self._start.total, per_kind)

    def _remember(self, readings: dict[int, tuple[str, float]]) -> None:
        """The latest times; an exited process not yet reaped (a zombie) has no
        command line any more, so it keeps the kind it was seen with."""
        for pid, (kind, seconds) in readings.items():
            known = self._last.get(pid)
            if kind == UNNAMED and known is not None:
                kind = known[0]
            self._last[pid] = (kind, seconds)

    def table(self) -> str:
        return self.phase.table() if self.phase else "(no reading)"
