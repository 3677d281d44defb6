"""A WSGI app for the worker test: ``/hold`` answers once the file named by
``HOLD_RELEASE`` exists (its process writes ``HOLD_MARK`` first), ``/pid`` at once;
both answer with the process id."""

from __future__ import annotations

import os
import time
from pathlib import Path


def application(environ, start_response):
    if environ["PATH_INFO"] == "/hold":
        Path(os.environ["HOLD_MARK"]).write_text(str(os.getpid()))
        release = Path(os.environ["HOLD_RELEASE"])
        deadline = time.monotonic() + 60
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
