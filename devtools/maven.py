"""Java runtimes from Maven Central: a pom under devtools/ names an artifact, Maven
copies it and its runtime dependencies into a cache folder, once. Used for the
Cassandra node (devtools/cassandra_node.py) and s3proxy (devtools/s3proxy.py)."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from pathlib import Path


class MavenError(RuntimeError):
    """Maven is missing or could not resolve the artifact."""


def resolve(pom: Path, properties: dict[str, str], lib: Path, what: str) -> Path:
    """Copy the runtime classpath of ``pom`` (with ``-Dname=value`` ``properties``) into
    ``lib``, replacing it only once the whole copy succeeded; returns ``lib``.

    Several checkouts share the cache (``make run`` in one, ``make test`` in another):
    one process copies at a time, and one that waited finds ``lib`` made and stops."""
    lib.parent.mkdir(parents=True, exist_ok=True)
    with open(lib.with_name(lib.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if lib.is_dir() and any(lib.iterdir()):
            return lib
        return _copy(pom, properties, lib, what)


def _copy(pom: Path, properties: dict[str, str], lib: Path, what: str) -> Path:
    mvn = shutil.which("mvn")
    if not mvn:
        raise MavenError("Maven (mvn) is not installed; run `make deps` or apt-get install maven")
    partial = lib.with_name(lib.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    command = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(pom),
        "package",
        *(f"-D{name}={value}" for name, value in properties.items()),
        f"-Dlib.dir={partial}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    # Maven writes target/ next to the pom; it holds nothing we need.
    shutil.rmtree(pom.parent / "target", ignore_errors=True)
    if result.returncode != 0:
        raise MavenError(f"Maven could not fetch {what}:\n" + (result.stdout + result.stderr)[-3000:])
    shutil.rmtree(lib, ignore_errors=True)
    partial.rename(lib)
    return lib
