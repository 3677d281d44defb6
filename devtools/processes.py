"""Background processes that outlive the command that started them.

Each runs in a session of its own (so a signal to its group reaches its children, e.g.
gunicorn's workers or a worker's Chromium) with its output in a log file and its pid in
a pid file. A pid counts only while the process still carries the marker it was started
with in its environment: a recycled pid belongs to something else. Standard library
only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

MARKER = "IMAGEDL_MANAGED_PROCESS"


@dataclass(frozen=True)
class Managed:
    """One named process: its pid file and log live in ``folder``."""

    name: str
    folder: Path

    @property
    def pid_file(self) -> Path:
        return self.folder / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.folder / f"{self.name}.log"

    @property
    def marker(self) -> str:
        return f"{MARKER}={self.folder.resolve()}/{self.name}"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, PermissionError, ProcessLookupError, IndexError):
            return None
        if state == "Z" or self.marker.encode() + b"\0" not in environ + b"\0":
            return None
        return pid

    def start(self, command: list[str], env: dict[str, str], cwd: Path) -> int:
        """Start ``command`` unless it runs already; return its pid."""
        running = self.pid()
        if running is not None:
            return running
        self.folder.mkdir(parents=True, exist_ok=True)
        name, value = self.marker.split("=", 1)
        with open(self.log_file, "ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {self.name}\n".encode())
            log.flush()
            process = subprocess.Popen(
                command,
                cwd=cwd,
                env={**env, name: value},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_file.write_text(str(process.pid))
        return process.pid

    def log_offset(self) -> int:
        try:
            return self.log_file.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, offset: int) -> str:
        try:
            with open(self.log_file, "rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_since(max(0, self.log_offset() - 20000))
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> bool:
        """SIGKILL the process and its group at once; True if it was running."""
        pid = self.pid()
        if pid is None:
            return False
        signal_group(pid, signal.SIGKILL)
        wait_gone(pid, 10)
        return True

    def stop(self, timeout: float = 20) -> bool:
        """SIGTERM the group, then SIGKILL it after ``timeout``; True if it was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        signal_group(pid, signal.SIGTERM)
        if not wait_gone(pid, timeout):
            signal_group(pid, signal.SIGKILL)
            wait_gone(pid, 10)
        self.pid_file.unlink(missing_ok=True)
        return True


def signal_group(pid: int, sig: int) -> None:
    """Signal the process group ``pid`` leads (its session), or the process alone."""
    with contextlib.suppress(ProcessLookupError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
        time.sleep(0.1)
    return not alive(pid)
