"""Who the browser runs as, and with what environment.

Chromium opens pages strangers choose. It runs with its own sandbox on, as an
unprivileged user (a worker running as root hands it to ``BrowserOptions.user``, by
default the system user ``imagedl-browser`` that ``make setup`` creates), with an environment
built from an allow-list: a renderer exploit finds no ``SECRET_KEY``, no database, S3
or SMTP credentials, and no file of the worker's it may read. A worker that is not
root runs the browser as its own user (it cannot switch), still with the allow-list.

Each launcher is a small script: ``setpriv`` switches the user (as root) and ties the
program to the process that starts it (``--pdeathsig``), ``env -i`` drops every
variable the allow-list does not name.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_BROWSER_USER = "imagedl-browser"
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
# Variables the browser may inherit: the locale, the time zone and an egress proxy.
ALLOWED_VARIABLES = (
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
)


class SandboxUnavailable(RuntimeError):
    """The browser cannot be run as an unprivileged user here (no such user, no setpriv)."""


@dataclass(frozen=True)
class BrowserUser:
    """The user the browser runs as; ``switch``: the worker is root and must change to it."""

    name: str
    uid: int
    gid: int
    switch: bool


def browser_user(name: str = DEFAULT_BROWSER_USER) -> BrowserUser:
    """As root: the user ``name``, which must exist and not be root. Otherwise: the
    process's own user (only root can switch users)."""
    if os.geteuid() != 0:
        return BrowserUser(pwd.getpwuid(os.geteuid()).pw_name, os.geteuid(), os.getegid(), switch=False)
    name = name or DEFAULT_BROWSER_USER
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise SandboxUnavailable(
            f"the browser's user {name!r} does not exist: run `make setup`, or "
            f"useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin {name}"
        ) from None
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise SandboxUnavailable(f"the browser's user {name!r} is root: it must be an unprivileged user")
    return BrowserUser(name, entry.pw_uid, entry.pw_gid, switch=True)


def browser_environment(home: str, source: Mapping[str, str] | None = None) -> dict[str, str]:
    """The browser's whole environment: a fixed PATH, ``home`` as HOME, and from
    ``source`` (the worker's) only the allow-listed variables."""
    source = os.environ if source is None else source
    kept = {name: source[name] for name in ALLOWED_VARIABLES if name in source}
    return {"PATH": SAFE_PATH, "HOME": home, **kept}


def private_folder(prefix: str, user: BrowserUser) -> str:
    """A new folder (mode 0700) that belongs to ``user``: the browser's profile."""
    folder = tempfile.mkdtemp(prefix=prefix)
    if user.switch:
        os.chown(folder, user.uid, user.gid)
    return folder


def launchers_folder(user: BrowserUser) -> str:
    """A new folder for launchers: the worker's, which ``user``'s group may read and
    enter (chromedriver runs Chromium's launcher), and nobody but the worker may change."""
    folder = tempfile.mkdtemp(prefix="imagedl-launch-")
    _share_with(folder, user)
    return folder


def _share_with(path: str | Path, user: BrowserUser) -> None:
    if user.switch:
        os.chown(path, -1, user.gid)
        os.chmod(path, 0o750)  # noqa: S103 - the browser user's group reads and runs, nobody else


def launcher(
    program: str, folder: str, *, user: BrowserUser, env: Mapping[str, str], switch: bool = True
) -> str:
    """A script in ``folder``, which ``user`` may run, that runs ``program`` with exactly
    ``env`` (as ``user``, if ``switch`` and the worker is root), killed by the kernel
    when the process that started it goes (``setpriv --pdeathsig``: a killed worker
    leaves no browser behind)."""
    switch = switch and user.switch
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        if switch:
            raise SandboxUnavailable("setpriv (util-linux) is needed to run the browser as another user")
        prefix: list[str] = []
    else:
        prefix = [setpriv, *(_switch_options(user) if switch else []), "--pdeathsig", "KILL", "--"]
    command = [*prefix, shutil.which("env") or "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in env.items())]
    script = Path(folder) / f"run-{Path(program).name}"
    script.write_text(f'#!/bin/sh\nexec {shlex.join([*command, program])} "$@"\n')
    script.chmod(0o700)
    _share_with(script, user)
    return str(script)


def _switch_options(user: BrowserUser) -> list[str]:
    return [f"--reuid={user.uid}", f"--regid={user.gid}", "--clear-groups"]
