"""Processes seen from /proc: a process's descendants, its name, whether it still runs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path


def _stat_fields(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the name: state, parent, ...; [] if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def parent_of(pid: int) -> int:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else 0


def name_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] not in ("Z", "X")


def descendants(root: int) -> set[int]:
    """Every process below ``root``, from each process's parent."""
    parents = {int(e.name): parent_of(int(e.name)) for e in Path("/proc").iterdir() if e.name.isdigit()}
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


class BrowserTrail:
    """The Chromium and chromedriver processes started under ``root`` (a worker),
    remembered once seen: they keep running after a killed worker's children are
    handed to init, and their environment (an allow-list) carries no mark of the test."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.seen: set[int] = set()

    def running(self) -> list[int]:
        self.seen |= {pid for pid in descendants(self.root) if name_of(pid).startswith("chrom")}
        return sorted(pid for pid in self.seen if running(pid))

    def drivers(self) -> list[int]:
        return [pid for pid in self.running() if name_of(pid) == "chromedriver"]


def group_stop(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM to the process's whole group (it was started in a session of its own),
    SIGKILL to the group if it is not gone within ``grace`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
