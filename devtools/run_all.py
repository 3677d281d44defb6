"""`make run`: the django-q2 worker and the web server in one terminal.

Starts the local Cassandra node when CASSANDRA_HOSTS is unset (and remembers whether
it was already running), then ``manage.py qcluster`` and gunicorn on 127.0.0.1:PORT.
Ctrl-C (or SIGTERM) stops the processes in reverse order, and the node too if this
command started it. If one process dies, the others are stopped and the exit code
says so.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from devtools import cassandra_node


def _stop(processes: list[tuple[str, subprocess.Popen]], timeout: float = 20) -> None:
    for name, proc in reversed(processes):
        if proc.poll() is None:
            print(f"[run] stopping {name}", file=sys.stderr, flush=True)
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for _name, proc in processes:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8000))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--stop-node", action="store_true", help="stop the local Cassandra node on exit")
    parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY") or 3))
    args = parser.parse_args(argv)

    started_node = False
    if not os.environ.get("CASSANDRA_HOSTS"):
        started_node = args.stop_node or cassandra_node.Node(1).pid() is None
        cassandra_node.start(1)

    python = sys.executable
    commands = [
        ("worker", [python, "manage.py", "qcluster"]),
        (
            "web",
            [
                python,
                "-m",
                "gunicorn",
                "imagedl_site.wsgi",
                "--config",  # Prometheus' multiprocess hooks
                "python:imagedl_site.gunicorn_conf",
                "--bind",
                f"{args.host}:{args.port}",
                "--workers",
                str(args.web_workers),
                "--threads",
                "4",
                "--access-logfile",
                "-",
                "--logger-class",  # the access log without tokens
                "imagedl_site.access_log.TokenlessLogger",
                "--timeout",
                "60",
            ],
        ),
    ]
    processes: list[tuple[str, subprocess.Popen]] = []
    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    code = 0
    try:
        for name, cmd in commands:
            # Own process groups: Ctrl-C reaches them through us, in order.
            processes.append((name, subprocess.Popen(cmd, start_new_session=True)))
        print(
            f"[run] imagedl is up: http://{args.host}:{args.port}/  (Ctrl-C stops it)",
            file=sys.stderr,
            flush=True,
        )
        while not stopping:
            for name, proc in processes:
                if proc.poll() is not None:
                    print(f"[run] {name} exited with code {proc.returncode}", file=sys.stderr, flush=True)
                    stopping, code = True, proc.returncode or 1
            time.sleep(0.3)
    finally:
        _stop(processes)
        if started_node:
            cassandra_node.stop()
    return code


if __name__ == "__main__":
    sys.exit(main())
