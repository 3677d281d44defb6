"""Where a machine's CPU time goes while a benchmark phase runs, by kind of process.

Reads /proc (the kernel's own accounting, independent of the code measured): the
machine's busy and idle time from /proc/stat, and each process's user + system time
from /proc/<pid>/stat, grouped by what the process is (Chromium, a worker, a web
process, a Cassandra JVM, ...). A process that ended during the phase is missing from
the second reading, so its time is left out; the machine total still counts it.

    before = CpuSnapshot.take()
    ... phase ...
    print(CpuSnapshot.take().since(before).table())
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
KINDS = (
    ("bench (image hosts, imitation, mail)", (b"bench/bench_",)),
    ("chromium", (b"chromium", b"chromedriver")),
    ("cassandra", (b"CassandraDaemon",)),
    ("s3proxy", (b"s3proxy",)),
    ("postgres", (b"postgres",)),
    ("redis", (b"redis-server",)),
    ("worker", (b"qcluster",)),
    ("web", (b"gunicorn",)),
)


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
    def take(cls) -> CpuSnapshot:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        snapshot = cls(busy=(sum(fields) - idle) / TICKS, total=sum(fields) / TICKS)
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
