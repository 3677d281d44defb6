"""``downloader`` is a library of its own: it imports nothing of Django (but for its
settings adapter ``downloader.config``, its AppConfig and its commands) and downloads,
validates and packs images with Django's settings never configured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from tests.imagehosts import ImageHost
from tests.paths import REPO

# Every library module (the adapter, the AppConfig and the commands are Django's side).
IMPORT_ALL = """
import pkgutil, sys, importlib, downloader
DJANGO_SIDE = {"downloader.config", "downloader.apps", "downloader.management"}
for info in pkgutil.walk_packages(downloader.__path__, "downloader."):
    if not any(info.name == side or info.name.startswith(side + ".") for side in DJANGO_SIDE):
        importlib.import_module(info.name)
"""

DOWNLOAD = """
import json, sys, tempfile
from pathlib import Path

from downloader.archive import write_archive
from downloader.collect import Candidate, collect_images
from downloader.http import Fetcher, FetchPolicy
from downloader.validation import ImageRules, validate_file
from tests.paths import REPO

class Folder:
    \"\"\"The least a storage needs for write_archive: a local folder.\"\"\"
    def __init__(self, root): self.root = Path(root)
    def path(self, name): return str(self.root / name)
    def exists(self, name): return (self.root / name).exists()
    def delete(self, name): (self.root / name).unlink()
    def save(self, name, content): raise AssertionError("a local folder is written in place")

urls, address = json.loads(sys.argv[1]), sys.argv[2]
with tempfile.TemporaryDirectory() as work:
    fetcher = Fetcher(FetchPolicy(extra_allowed=(address + "/32",)), concurrency=4, per_host=2)
    result = collect_images([Candidate(url) for url in urls], wanted=len(urls), workdir=Path(work), fetcher=fetcher)
    fetcher.close()
    checks = [validate_file(image.path, ImageRules()) for image in result.kept]
    archive = write_archive(result.kept, name_stem="Red Fox", path="out.zip", storage=Folder(work))
    print(json.dumps({
        "kept": len(result.kept),
        "rejected": result.rejected,
        "valid": [check.ok for check in checks],
        "formats": sorted(check.format for check in checks),
        "archive": archive.count,
    }))
"""


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    """``script`` in a fresh interpreter with no Django settings module anywhere."""
    environ = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_library_imports_nothing_of_django():
    check = IMPORT_ALL + "print(sorted(m for m in sys.modules if m == 'django' or m.startswith('django.')))"
    done = _run(check)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_images_are_downloaded_validated_and_packed_without_settings():
    with ImageHost("127.0.0.1") as host:  # a free port on loopback
        urls = [
            host.url(f"/img/{n}.{fmt}?w=320&h=240") for n, fmt in enumerate(["jpeg", "png", "webp", "gif"])
        ]
        urls.append(host.url("/html.jpg"))  # markup served as an image is rejected
        done = _run(DOWNLOAD, json.dumps(urls), host.address)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["kept"] == 4 and outcome["rejected"] == {"html": 1}
    assert outcome["valid"] == [True] * 4 and outcome["formats"] == ["gif", "jpeg", "png", "webp"]
    assert outcome["archive"] == 4
