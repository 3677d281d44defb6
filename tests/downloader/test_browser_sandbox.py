"""The browser that opens a stranger's page cannot reach the worker's secrets: every
Chromium and chromedriver process of a run runs as an unprivileged user, with
Chromium's sandbox on and an environment built from an allow-list; its profile folder
belongs to that user and is gone after the run."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from downloader.config import gather_options_from_settings
from downloader.gather import Request, gather
from tests.imagehosts import image_urls
from tests.processes import descendants

SECRETS = {
    "SECRET_KEY": "sandbox-test-secret-key",
    "DATABASE_URL": "postgres://app:hunter2@db.internal/imagedl",
    "REDIS_URL": "redis://:hunter2@redis.internal:6379/0",
    "AWS_SECRET_ACCESS_KEY": "sandbox-test-aws-secret",
    "EMAIL_HOST_PASSWORD": "sandbox-test-smtp-password",
    "CASSANDRA_PASSWORD": "sandbox-test-cassandra-password",
}
SECRET_PREFIXES = ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "AWS_", "EMAIL_", "CASSANDRA_")


@dataclass(frozen=True)
class Seen:
    pid: int
    name: str
    uid: int
    seccomp: int
    environ: tuple[str, ...]
    cmdline: tuple[str, ...]


def _seen(pid: int) -> Seen | None:
    folder = Path(f"/proc/{pid}")
    try:
        status = dict(
            line.split(":", 1) for line in (folder / "status").read_text().splitlines() if ":" in line
        )
        environ = (folder / "environ").read_bytes().split(b"\0")
        cmdline = (folder / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return Seen(
        pid=pid,
        name=status["Name"].strip(),
        uid=int(status["Uid"].split()[0]),
        seccomp=int(status.get("Seccomp", "0").strip()),
        environ=tuple(v.decode(errors="replace") for v in environ if v),
        # Chromium's zygote children rewrite their command line as one string.
        cmdline=tuple(part for v in cmdline for part in v.decode(errors="replace").split()),
    )


class BrowserWatch:
    """Samples this process's Chromium and chromedriver descendants until stopped."""

    def __init__(self) -> None:
        self.seen: dict[int, Seen] = {}
        self.profile_owners: dict[str, int] = {}  # --user-data-dir -> its owner's uid
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> BrowserWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            for pid in descendants(os.getpid()):
                seen = _seen(pid)
                if seen is not None and seen.name.startswith("chrom"):
                    self.seen[pid] = seen
                    self._note_profile(seen)

    def _note_profile(self, seen: Seen) -> None:
        for arg in seen.cmdline:
            if arg.startswith("--user-data-dir=") and arg not in self.profile_owners:
                try:
                    self.profile_owners[arg.split("=", 1)[1]] = os.stat(arg.split("=", 1)[1]).st_uid
                except OSError:
                    pass


@pytest.mark.browser
def test_every_browser_process_of_a_page_run_is_unprivileged_sandboxed_and_holds_no_secret(
    monkeypatch, tmp_path, start_imitation, image_hosts
):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    site = start_imitation(scroll_wait=0.5)
    site.pages["/gallery"] = (
        "<!doctype html><html><body>"
        + "".join(f'<img src="{image_urls(image_hosts)(i)}">' for i in range(1, 6))
        + "</body></html>"
    )
    with BrowserWatch() as watch:
        result = gather(
            Request(wanted=5, page_url=site.base + "/gallery"),
            tmp_path,
            on_event=lambda *a: None,
            options=gather_options_from_settings(),
        )
    assert len(result.kept) == 5
    _assert_sandboxed(watch)
    # One profile folder, the browser user's own, deleted after the run.
    assert len(watch.profile_owners) == 1, watch.profile_owners
    [(profile, owner)] = watch.profile_owners.items()
    assert owner == min(s.uid for s in watch.seen.values())
    assert owner != 0 and not Path(profile).exists()


@pytest.mark.browser
def test_the_browser_kept_across_searches_is_as_unprivileged_sandboxed_and_secret_free(
    monkeypatch, tmp_path, imitation
):
    from downloader.browsers import KEEPER

    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    options = gather_options_from_settings()
    KEEPER.close()  # the searches start the kept browser under these variables
    try:
        with BrowserWatch() as watch:
            for number in (1, 2):
                result = gather(
                    Request(wanted=5, query=f"fox {number}", engine="bing"),
                    tmp_path / str(number),
                    on_event=lambda *a: None,
                    options=options,
                )
                assert len(result.kept) == 5
            assert KEEPER.kept is not None and KEEPER.kept.uses == 2
        _assert_sandboxed(watch)
        # Both searches in one browser: one profile folder, the browser user's own ...
        assert len(watch.profile_owners) == 1, watch.profile_owners
        [(profile, owner)] = watch.profile_owners.items()
        assert owner == min(s.uid for s in watch.seen.values()) and owner != 0
    finally:
        KEEPER.close()
    assert not Path(profile).exists()  # ... deleted when the browser is quit


def _assert_sandboxed(watch: BrowserWatch) -> None:
    names = {s.name for s in watch.seen.values()}
    assert "chromedriver" in names and "chromium" in names, names
    for seen in watch.seen.values():
        assert seen.uid != 0, seen
        leaked = [v.split("=", 1)[0] for v in seen.environ if v.startswith(SECRET_PREFIXES)]
        assert leaked == [], (seen.name, leaked)
        assert not any(value in v for v in seen.environ for value in SECRETS.values())
        assert "--no-sandbox" not in seen.cmdline, seen
    # Chromium's own sandbox is on: its renderers run under a seccomp-bpf filter.
    assert any(s.seccomp == 2 for s in watch.seen.values() if "--type=renderer" in s.cmdline)
