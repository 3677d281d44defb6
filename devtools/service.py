"""What the local engine starters share: a detached process with a pid file and a log in
its own folder, started once, waited for, and stopped.

A subclass says how to prepare its folder, which command runs the server, how to tell
that it answers and which words of its command line mark it as ours. Used by
devtools/postgres.py, devtools/redis_server.py and devtools/s3proxy.py (and through them
by devtools/cluster.py and the tests). Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

# Processes started by this process, by pid file: polling them reaps the ones that
# exited (a zombie would otherwise look alive) and tells why a start failed.
_STARTED: dict[Path, subprocess.Popen] = {}


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def masked(url: str) -> str:
    """``url`` with its password, if any, shown as ``***``: what may be printed."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def private_file(path: Path, make: Callable[[], str]) -> str:
    """The text of ``path``, a file only its owner may read, written once with
    ``make()``: created mode 0600 from its first byte (no window with the umask's)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as out:
            out.write(make() + "\n")
    return path.read_text().strip()


def tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return "(no log written)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) or "(log is empty)"


class Service:
    """One server process of a local engine, living in `directory`."""

    name = "service"  # the part's name in messages, the pid file's and the log's
    stop_signal = signal.SIGTERM

    def __init__(self, directory: Path | str, port: int, host: str = "127.0.0.1") -> None:
        self.directory = Path(directory).resolve()
        self.port = int(port)
        self.host = host

    # --- what a subclass provides ---------------------------------------------------

    @property
    def url(self) -> str:
        raise NotImplementedError

    def answering(self) -> bool:
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Make the folder ready for a first or a later start (idempotent)."""
        self.directory.mkdir(parents=True, exist_ok=True)

    def after_start(self) -> None:
        """Runs once the server answers, each time start() is called (idempotent)."""

    def markers(self) -> list[bytes]:
        """Words that the server's command line holds: a recycled pid is not ours."""
        return [str(self.directory).encode()]

    # --- files ------------------------------------------------------------------------

    @property
    def pid_file(self) -> Path:
        return self.directory / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.directory / f"{self.name}.log"

    def read_pid_file(self) -> int | None:
        try:
            return int(self.pid_file.read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def recorded_port(self) -> int | None:
        """The port the last started instance of this folder was given."""
        try:
            return int(self.pid_file.read_text().split()[1])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def pid(self) -> int | None:
        """The server's pid if it runs (whoever started it), else None."""
        process = _STARTED.get(self.pid_file)
        if process is not None:
            process.poll()  # reaps it if it has exited
        pid = self.read_pid_file()
        if pid is None:
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            return None
        if not all(marker in cmdline for marker in self.markers()):
            return None
        return pid

    def log_tail(self, lines: int = 30) -> str:
        return f"--- {self.log_file}\n{tail(self.log_file, lines)}"

    # --- life -------------------------------------------------------------------------

    def environment(self) -> dict[str, str] | None:
        """The server's environment (None: this process's)."""
        return None

    def working_directory(self) -> Path:
        return self.directory

    def launch(self) -> subprocess.Popen:
        with open(self.log_file, "ab") as out:
            process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives the caller; Ctrl-C does not reach it
                cwd=self.working_directory(),
                env=self.environment(),
            )
        _STARTED[self.pid_file] = process
        return process

    def record_pid(self, process: subprocess.Popen) -> None:
        self.pid_file.write_text(f"{process.pid}\n{self.port}\n")

    def start(self, timeout: float = 60) -> None:
        """Start the server unless it runs, and wait until it answers.

        Raises RuntimeError naming the part, with the tail of its log, if it exits,
        does not answer within `timeout` seconds (it is then stopped), or if something
        else already holds the port. An instance of this folder running on another port
        is stopped first.
        """
        if self.pid() is not None and self.recorded_port() not in (None, self.port):
            self.stop()
        if self.pid() is None:
            if port_open(self.host, self.port):
                raise RuntimeError(
                    f"{self.name}: {self.host}:{self.port} is taken by a process not started "
                    f"from {self.directory}"
                )
            self.prepare()
            process = self.launch()
            self.record_pid(process)
        else:
            process = _STARTED.get(self.pid_file)
        deadline = time.monotonic() + timeout
        while not self.answering():
            if process is not None and process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited while starting (exit status {process.returncode}); "
                    f"last lines of its log:\n{self.log_tail()}"
                )
            if process is None and self.pid() is None:
                raise RuntimeError(f"{self.name} stopped while starting:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"{self.name} did not answer on {self.host}:{self.port} within "
                    f"{timeout:.0f}s (stopped it); last lines of its log:\n{self.log_tail()}"
                )
            time.sleep(0.2)
        self.after_start()

    def stop(self, timeout: float = 30) -> bool:
        """Stop the server; True if one was running. SIGKILL after `timeout` seconds."""
        pid = self.pid()
        if pid is None:
            return False
        try:
            os.kill(pid, self.stop_signal)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + timeout
        while self.pid() is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.pid() is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            while self.pid() is not None:
                time.sleep(0.1)
        process = _STARTED.pop(self.pid_file, None)
        if process is not None:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        return True

    def status(self) -> dict:
        return {"pid": self.pid(), "up": self.answering(), "url": masked(self.url)}


def cli(
    prog: str,
    make: Callable[[argparse.Namespace], Service],
    argv: list[str] | None = None,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> int:
    """`python -m devtools.<prog> start|stop|status --dir D --port P [--host H]`."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--dir", required=True, type=Path, help="the instance's folder")
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--timeout", type=float, default=60)
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    service = make(args)
    try:
        if args.action == "start":
            service.start(timeout=args.timeout)
            print(json.dumps(service.status()))
        elif args.action == "stop":
            print(f"{service.name}: {'stopped' if service.stop() else 'was not running'}")
        else:
            print(json.dumps(service.status()))
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
