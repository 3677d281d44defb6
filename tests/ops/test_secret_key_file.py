"""The fallback SECRET_KEY file: created private (0600) from its first byte, whatever
the umask, and processes that start together end up with one key."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

from tests.paths import REPO
from tests.waiting import wait_for

# Each child loads the real settings with no SECRET_KEY, an open umask and chmod
# disabled (a file that is private only after a chmod shows up as such), once the
# go-file appears, so they all reach the key file at the same moment. It says it is at
# the start line with a file of its own.
CHILD = """
import os, pathlib, sys, time
import django, cassandra.cluster  # the slow imports happen before the start line
os.umask(0)
pathlib.Path.chmod = lambda *args, **kwargs: None
os.chmod = lambda *args, **kwargs: None
go = pathlib.Path(sys.argv[1])
pathlib.Path(sys.argv[2]).touch()
while not go.exists():
    time.sleep(0.001)
from imagedl_site.settings import SECRET_KEY
from tests.paths import REPO
print(SECRET_KEY)
"""


def test_processes_started_together_share_one_private_key(tmp_path):
    var = tmp_path / "var"
    go = tmp_path / "go"
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env.update(IMAGEDL_VAR_DIR=str(var), DJANGO_SETTINGS_MODULE="imagedl_site.settings")
    ready = [tmp_path / f"ready-{n}" for n in range(8)]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(go), str(flag)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for flag in ready
    ]
    assert wait_for(lambda: all(flag.exists() for flag in ready), timeout=60), "a child never got ready"
    go.touch()
    keys = [child.communicate(timeout=60)[0].strip() for child in children]
    assert all(child.returncode == 0 for child in children)
    key_file = var / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600  # with umask 0 and no chmod
    assert len(set(keys)) == 1 and len(keys[0]) >= 50, keys
    assert key_file.read_text().strip() == keys[0]
    assert [p.name for p in var.iterdir() if p.name.startswith(".secret_key")] == []  # no leftovers
