"""A private PostgreSQL instance for development, tests and the local cluster.

Uses Debian's `postgresql` package (its programs live in /usr/lib/postgresql/<ver>/bin,
not on PATH; the newest version there is used, or IMAGEDL_POSTGRES_BIN). Nothing of
Debian's own cluster ("main") is used or needed.

The instance folder holds:

    data/          the cluster (initdb on the first start), data/postmaster.pid its pid
    socket/        its own Unix socket folder (mode 0700: only the server's user connects)
    postgres.log   the server's output
    password       the `imagedl` role's password, made once (mode 0600)

PostgreSQL refuses to run as root, so when this runs as root initdb, the server and
psql run as the `postgres` system user (through runuser). That user must then reach the
folder: the instance folder is chowned to it, and each parent folder that lacks the
"search" bit for others gets o+x (only that bit: nothing becomes listable or readable),
as a folder under /work/... or a pytest tmp folder (0700) would otherwise keep it out.

The server listens on the given address only, with password (SCRAM) authentication over
TCP; it creates the role `imagedl` and the database `imagedl` it owns. Standard library
only.

    python -m devtools.postgres start|stop|status --dir D --port P [--host H]
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

from devtools.service import Service, cli, private_file

SERVER_USER = "postgres"
ROLE = "imagedl"
DATABASE = "imagedl"


def server_bin() -> Path:
    """The folder of the newest installed PostgreSQL server's programs."""
    override = os.environ.get("IMAGEDL_POSTGRES_BIN")
    if override:
        return Path(override)
    found = []
    for candidate in Path("/usr/lib/postgresql").glob("*/bin"):
        version = candidate.parent.name
        if (candidate / "postgres").exists() and re.fullmatch(r"\d+(\.\d+)?", version):
            found.append((float(version), candidate))
    if not found:
        raise RuntimeError(
            "postgres: no PostgreSQL server found in /usr/lib/postgresql/*/bin; run `make deps`"
        )
    return max(found)[1]


def as_root() -> bool:
    return os.geteuid() == 0


def run_as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", SERVER_USER, "--", *cmd] if as_root() else cmd


def open_path_to(folder: Path) -> None:
    """Give others the search bit (o+x) on each parent of `folder` that lacks it."""
    for parent in reversed(folder.parents):
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            os.chmod(parent, stat.S_IMODE(mode) | stat.S_IXOTH)
            print(f"[postgres] o+x on {parent} so that the postgres user reaches {folder}", file=sys.stderr)


class Postgres(Service):
    name = "postgres"
    # SIGINT is PostgreSQL's "fast" shutdown: clients are disconnected, data is kept.
    stop_signal = signal.SIGINT

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def socket_dir(self) -> Path:
        return self.directory / "socket"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "postmaster.pid"  # written by the server itself

    @property
    def password(self) -> str:
        return private_file(self.directory / "password", lambda: secrets.token_urlsafe(24))

    @property
    def url(self) -> str:
        return f"postgres://{ROLE}:{self.password}@{self.host}:{self.port}/{DATABASE}"

    def markers(self) -> list[bytes]:
        return [b"postgres", str(self.data_dir).encode()]

    def answering(self) -> bool:
        result = subprocess.run(
            [str(server_bin() / "pg_isready"), "-q", "-h", self.host, "-p", str(self.port), "-t", "2"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return result.returncode == 0

    # --- first start -------------------------------------------------------------------

    def chown(self, path: Path) -> None:
        if as_root():
            user = pwd.getpwnam(SERVER_USER)
            os.chown(path, user.pw_uid, user.pw_gid)

    def prepare(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.password  # noqa: B018 - made once, before the folder changes hands
        if as_root():
            try:
                pwd.getpwnam(SERVER_USER)
            except KeyError:
                raise RuntimeError("postgres: no `postgres` system user; run `make deps`") from None
            open_path_to(self.directory)
        self.chown(self.directory)
        os.chmod(self.directory, 0o700)
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        self.chown(self.socket_dir)
        if not (self.data_dir / "PG_VERSION").exists():
            self.initdb()

    def initdb(self) -> None:
        # Into a side folder first: a half-made cluster never becomes data/.
        partial = self.directory / "data.partial"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(self.data_dir, ignore_errors=True)
        cmd = [
            str(server_bin() / "initdb"),
            "-D",
            str(partial),
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--auth-local=trust",  # the socket folder is the server user's alone
            "--auth-host=scram-sha-256",
        ]
        result = subprocess.run(
            run_as_server_user(cmd), stdin=subprocess.DEVNULL, capture_output=True, text=True
        )
        if result.returncode != 0:
            raise RuntimeError(f"postgres: initdb failed:\n{(result.stdout + result.stderr)[-3000:]}")
        partial.rename(self.data_dir)

    def command(self) -> list[str]:
        return run_as_server_user(
            [
                str(server_bin() / "postgres"),
                "-D",
                str(self.data_dir),
                "-p",
                str(self.port),
                "-k",
                str(self.socket_dir),
                "-c",
                f"listen_addresses={self.host}",
                "-c",
                "logging_collector=off",
            ]
        )

    def record_pid(self, process: subprocess.Popen) -> None:
        pass  # the server writes data/postmaster.pid

    def recorded_port(self) -> int | None:
        try:
            return int(self.pid_file.read_text().splitlines()[3])  # its fourth line
        except (FileNotFoundError, ValueError, IndexError):
            return None

    # --- role and database ----------------------------------------------------------------

    def psql(self, sql: str, **variables: str) -> str:
        """Run `sql` as the superuser over the socket; :'name' in it is a quoted variable."""
        cmd = [str(server_bin() / "psql"), "-h", str(self.socket_dir), "-p", str(self.port)]
        cmd += ["-U", "postgres", "-d", "postgres", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"]
        for name, value in variables.items():
            cmd += ["-v", f"{name}={value}"]
        # Through standard input: psql substitutes variables there, not in -c.
        result = subprocess.run(run_as_server_user(cmd), input=sql, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"postgres: {sql.split()[0]} failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def after_start(self) -> None:
        """Create the role and its database if missing; the role's password is the file's."""
        names = {"role": ROLE, "database": DATABASE}
        if not self.psql("SELECT 1 FROM pg_roles WHERE rolname = :'role'", **names):
            self.psql('CREATE ROLE :"role" LOGIN', **names)
        self.psql("ALTER ROLE :\"role\" PASSWORD :'password'", **names, password=self.password)
        if not self.psql("SELECT 1 FROM pg_database WHERE datname = :'database'", **names):
            self.psql('CREATE DATABASE :"database" OWNER :"role"', **names)


def main(argv: list[str] | None = None) -> int:
    return cli("postgres", lambda a: Postgres(a.dir, a.port, a.host), argv)


if __name__ == "__main__":
    sys.exit(main())
