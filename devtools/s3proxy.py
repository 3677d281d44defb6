"""A private S3-compatible server for development, tests and the local cluster: s3proxy.

s3proxy has no Debian package, so it comes from Maven Central as `org.gaul:s3proxy`
(the way devtools/cassandra_node.py gets Cassandra): Maven resolves it and its runtime
dependencies once into a cache folder (~/.cache/imagedl/s3proxy-<version>, or
IMAGEDL_S3PROXY_CACHE), and the server runs on the machine's JDK 17. Its objects are
files under the instance folder (the jclouds "filesystem" provider); requests must be
signed (AWS v2 or v4) with the identity and credential given.

The instance folder holds s3proxy.properties, logback.xml (warnings only, or
IMAGEDL_S3PROXY_LOG_LEVEL), data/ (one sub-folder per bucket),
s3proxy.pid and s3proxy.log. Standard library only.

    python -m devtools.s3proxy fetch
    python -m devtools.s3proxy start|stop|status --dir D --port P [--host H]
        [--identity I --credential C]   (default: AWS_ACCESS_KEY_ID and
        AWS_SECRET_ACCESS_KEY, else a pair made once and kept in D/keys.json)
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import urllib.error
import urllib.request
from pathlib import Path

from devtools import maven
from devtools.cassandra_node import java_binary
from devtools.service import Service, cli

S3PROXY_VERSION = "2.6.0"
POM = Path(__file__).resolve().parent / "s3proxy-runtime" / "pom.xml"
HEAP = os.environ.get("IMAGEDL_S3PROXY_HEAP") or "256M"
# s3proxy ships no logging configuration: logback then logs every Jetty buffer at DEBUG,
# which cost ~4x the CPU of the requests themselves (a 6.5 MB PUT: 480 ms of the JVM's
# CPU instead of 125 ms) and hundreds of MB of log a minute. Warnings only by default.
LOG_LEVEL = os.environ.get("IMAGEDL_S3PROXY_LOG_LEVEL") or "WARN"
LOGBACK = """<configuration>
  <appender name="OUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d{{HH:mm:ss.SSS}} %-5level %logger{{36}} - %msg%n</pattern></encoder>
  </appender>
  <root level="{level}"><appender-ref ref="OUT"/></root>
</configuration>
"""


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "imagedl" / f"s3proxy-{S3PROXY_VERSION}"
    return Path(os.environ.get("IMAGEDL_S3PROXY_CACHE") or default)


def lib_dir() -> Path:
    return cache_dir() / "lib"


def runtime_ready() -> bool:
    return (lib_dir() / f"s3proxy-{S3PROXY_VERSION}.jar").exists()


def fetch() -> Path:
    """Resolve s3proxy and its runtime dependencies into the cache (once); the lib folder."""
    if runtime_ready():
        return lib_dir()
    print(f"[s3proxy] fetching s3proxy {S3PROXY_VERSION} from Maven Central", file=sys.stderr, flush=True)
    try:
        maven.resolve(POM, {"s3proxy.version": S3PROXY_VERSION}, lib_dir(), "s3proxy")
    except maven.MavenError as exc:
        raise RuntimeError(f"s3: {exc}") from exc
    return lib_dir()


class S3Proxy(Service):
    name = "s3proxy"

    def __init__(
        self,
        directory: Path | str,
        port: int,
        identity: str,
        credential: str,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(directory, port, host)
        self.identity = identity
        self.credential = credential

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def properties_file(self) -> Path:
        return self.directory / "s3proxy.properties"

    @property
    def logback_file(self) -> Path:
        return self.directory / "logback.xml"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    def prepare(self) -> None:
        fetch()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.logback_file.write_text(LOGBACK.format(level=LOG_LEVEL))
        # Written at each start (it holds the credential: owner only).
        fd = os.open(self.properties_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(
                "# Written by devtools/s3proxy.py at each start.\n"
                f"s3proxy.endpoint={self.url}\n"
                "s3proxy.authorization=aws-v2-or-v4\n"
                f"s3proxy.identity={self.identity}\n"
                f"s3proxy.credential={self.credential}\n"
                "jclouds.provider=filesystem\n"
                f"jclouds.filesystem.basedir={self.data_dir}\n"
            )

    def command(self) -> list[str]:
        return [
            java_binary(),
            f"-Xmx{HEAP}",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            f"-Dlogback.configurationFile={self.logback_file}",
            "-cp",
            f"{lib_dir()}/*",
            "org.gaul.s3proxy.Main",
            "--properties",
            str(self.properties_file),
        ]

    def markers(self) -> list[bytes]:
        return [b"org.gaul.s3proxy.Main", str(self.properties_file).encode()]

    def answering(self) -> bool:
        """True if the server answers HTTP (an unsigned GET / is refused with 403)."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
        try:
            with opener.open(f"{self.url}/", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except (OSError, ValueError):
            return False


def stored_keys(directory: Path) -> tuple[str, str]:
    """An identity and credential made once for this folder (kept in keys.json, 0600)."""
    path = Path(directory) / "keys.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        keys = {"identity": "imagedl-" + secrets.token_hex(6), "credential": secrets.token_urlsafe(30)}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(keys, out)
    keys = json.loads(path.read_text())
    return keys["identity"], keys["credential"]


def _from_args(args) -> S3Proxy:
    identity, credential = args.identity, args.credential
    if not (identity and credential):
        identity, credential = stored_keys(args.dir)
    return S3Proxy(args.dir, args.port, identity, credential, args.host)


def _keys(parser) -> None:
    parser.add_argument("--identity", default=os.environ.get("AWS_ACCESS_KEY_ID"))
    parser.add_argument("--credential", default=os.environ.get("AWS_SECRET_ACCESS_KEY"))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["fetch"]:
        try:
            print(fetch())
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    return cli("s3proxy", _from_args, argv, extra=_keys)


if __name__ == "__main__":
    sys.exit(main())
