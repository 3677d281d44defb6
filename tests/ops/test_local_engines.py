"""The starters of the local engines (devtools/postgres.py, redis_server.py, s3proxy.py):
each starts in a folder of its own on a free port, answers, starts again as a no-op,
serves a real client, and stops."""

from __future__ import annotations

import subprocess
import sys

import pytest

from devtools.postgres import Postgres
from devtools.redis_server import RedisServer
from devtools.s3proxy import S3Proxy
from tests.mailserver import free_port


def check_life(service, client_check) -> None:
    assert service.pid() is None and not service.answering()
    service.start()
    try:
        pid = service.pid()
        assert pid is not None and service.answering()
        service.start()  # a running, answering instance: nothing new is started
        assert service.pid() == pid
        client_check(service)
    finally:
        assert service.stop() is True
    assert service.pid() is None and not service.answering()
    assert service.stop() is False


def test_postgres_starts_serves_the_imagedl_database_and_stops(tmp_path):
    import psycopg

    def check(pg: Postgres) -> None:
        assert pg.url.startswith(f"postgres://imagedl:{pg.password}@127.0.0.1:{pg.port}/imagedl")
        with psycopg.connect(pg.url.replace("postgres://", "postgresql://", 1)) as conn:
            conn.execute("CREATE TABLE t (x int)")
            conn.execute("INSERT INTO t VALUES (7)")
            assert conn.execute("SELECT current_user, sum(x) FROM t").fetchone() == ("imagedl", 7)
        # A wrong password is refused: TCP connections need the role's password.
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(f"postgresql://imagedl:wrong@127.0.0.1:{pg.port}/imagedl")

    pg = Postgres(tmp_path / "pg", free_port())
    check_life(pg, check)
    # The data outlives the server; the password is the one made the first time.
    password = pg.password
    pg.start()
    try:
        with psycopg.connect(Postgres(tmp_path / "pg", pg.port).url.replace("postgres:", "postgresql:")) as c:
            assert c.execute("SELECT x FROM t").fetchone() == (7,)
        assert pg.password == password
    finally:
        pg.stop()


def test_redis_starts_keeps_its_queue_over_a_restart_and_stops(tmp_path):
    import redis

    def check(server: RedisServer) -> None:
        client = redis.Redis.from_url(server.url)
        client.rpush("queue", b"task-1", b"task-2")
        client.close()
        server.stop()
        server.start()  # the append-only file brings the list back
        client = redis.Redis.from_url(server.url)
        assert client.lrange("queue", 0, -1) == [b"task-1", b"task-2"]
        client.close()

    check_life(RedisServer(tmp_path / "redis", free_port()), check)


def test_s3proxy_starts_stores_objects_and_stops(tmp_path):
    import boto3
    from botocore.config import Config

    def check(proxy: S3Proxy) -> None:
        s3 = boto3.client(
            "s3",
            endpoint_url=proxy.url,
            aws_access_key_id="test-identity",
            aws_secret_access_key="test-credential",
            region_name="us-east-1",
            config=Config(
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        s3.create_bucket(Bucket="imagedl-test")
        s3.put_object(Bucket="imagedl-test", Key="a/b.zip", Body=b"zip bytes")
        assert s3.get_object(Bucket="imagedl-test", Key="a/b.zip")["Body"].read() == b"zip bytes"
        assert (tmp_path / "s3" / "data" / "imagedl-test" / "a" / "b.zip").read_bytes() == b"zip bytes"
        wrong = boto3.client(
            "s3",
            endpoint_url=proxy.url,
            aws_access_key_id="test-identity",
            aws_secret_access_key="not-the-credential",
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}),
        )
        with pytest.raises(Exception, match=r"SignatureDoesNotMatch|AccessDenied|403"):
            wrong.get_object(Bucket="imagedl-test", Key="a/b.zip")
        # Warnings only: at logback's default (DEBUG) every request wrote hundreds of
        # lines of Jetty buffers, which cost s3proxy most of its CPU.
        assert " DEBUG " not in proxy.log_file.read_text(errors="replace")

    check_life(S3Proxy(tmp_path / "s3", free_port(), "test-identity", "test-credential"), check)


def test_a_start_on_a_port_taken_by_another_process_names_the_part(tmp_path):
    other = RedisServer(tmp_path / "other", free_port())
    other.start()
    try:
        mine = RedisServer(tmp_path / "mine", other.port)
        with pytest.raises(RuntimeError, match=r"redis: 127\.0\.0\.1:\d+ is taken"):
            mine.start()
    finally:
        other.stop()


def test_a_server_that_cannot_start_raises_with_its_log(tmp_path):
    # A file where Redis keeps its append-only folder: it cannot load its data.
    (tmp_path / "bad" / "data").mkdir(parents=True)
    (tmp_path / "bad" / "data" / "appendonlydir").write_text("not a folder")
    server = RedisServer(tmp_path / "bad", free_port())
    with pytest.raises(RuntimeError, match=r"redis exited while starting[\s\S]*redis\.log"):
        server.start(timeout=30)


def test_the_command_line_starts_and_stops(tmp_path):
    port = str(free_port())
    args = ["--dir", str(tmp_path / "redis"), "--port", port]

    def run(action: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "devtools.redis_server", action, *args],
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout

    assert '"up": true' in run("start")
    assert '"up": true' in run("status")
    assert "stopped" in run("stop")
    assert '"up": false' in run("status")


def test_a_folder_started_on_another_port_moves_there(tmp_path):
    import redis

    first = RedisServer(tmp_path / "redis", free_port())
    first.start()
    redis.Redis.from_url(first.url).set("kept", b"yes")
    second = RedisServer(tmp_path / "redis", free_port())
    try:
        second.start()  # the instance on the old port is stopped, the data comes along
        assert not first.answering() and second.answering()
        assert redis.Redis.from_url(second.url).get("kept") == b"yes"
    finally:
        second.stop()
    assert not second.answering() and second.pid() is None
