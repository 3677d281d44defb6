"""``manage.py download_urls`` and ``fetch_images`` need no job store: with no Cassandra
node to reach they run, and say nothing about it (no start-up check, no connection)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from tests import suite_node
from tests.imagehosts import ImageHost
from tests.paths import REPO


def manage(tmp_path: Path, *args: str, allowed: str = "") -> subprocess.CompletedProcess:
    """``manage.py args`` with the project's settings and Cassandra on a closed port."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEDL_", "CASSANDRA_", "DJANGO_"))}
    environ.update(
        DJANGO_SETTINGS_MODULE="imagedl_site.settings",
        CASSANDRA_HOSTS="127.0.0.1",
        CASSANDRA_PORT=str(suite_node.free_ports(1)[0]),  # nothing listens there
        IMAGEDL_VAR_DIR=str(tmp_path / "var"),
        IMAGEDL_EXTRA_ALLOWED_NETWORKS=allowed,
    )
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def said_nothing_of_cassandra(done: subprocess.CompletedProcess, tmp_path: Path) -> bool:
    logged = "".join(path.read_text() for path in (tmp_path / "var" / "log").glob("*.log"))
    heard = (done.stderr + logged).lower()
    return not any(word in heard for word in ("cassandra", "nohostavailable", "warning"))


def test_download_urls_delivers_with_no_cassandra_node(tmp_path):
    with ImageHost("127.0.0.1") as host:
        listing = tmp_path / "urls.txt"
        listing.write_text("\n".join(host.url(f"/img/{n}.jpeg?w=300&h=200") for n in range(3)))
        out = tmp_path / "out.zip"
        done = manage(
            tmp_path,
            "download_urls",
            str(listing),
            "--out",
            str(out),
            "--no-progress",
            allowed=f"{host.address}/32",
        )
    assert done.returncode == 0, done.stderr
    assert "kept 3" in done.stdout
    assert said_nothing_of_cassandra(done, tmp_path), done.stderr
    with zipfile.ZipFile(out) as zf:
        assert len([name for name in zf.namelist() if name.endswith(".jpg")]) == 3


def test_fetch_images_runs_no_start_up_checks(tmp_path):
    # Its arguments are read after the checks would have run: a bad count is all it says.
    done = manage(tmp_path, "fetch_images", "red fox", "--count", "0", "--out", str(tmp_path / "a.zip"))
    assert done.returncode == 1
    assert done.stderr.strip() == "CommandError: --count must be between 1 and 500"
    assert said_nothing_of_cassandra(done, tmp_path), done.stderr
