"""The several-machine deployment, on a cluster of its own on loopback
(``devtools.cluster``): three Cassandra nodes (RF=3), PostgreSQL, Redis, s3proxy, two
workers and two web processes, on free ports, under var/test-cluster/.

Everything here goes through the cluster's own processes: a job is submitted with the
form of web-1, followed and downloaded through web-2, runs on whichever worker takes
it; parts are killed with ``devtools.cluster kill`` and started again with ``start``.
The test process itself reads nothing from the cluster's databases.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile

import pytest
import requests

from tests.factories import images_in_archive
from tests.imagehosts import ImageHost, image_urls
from tests.imitations.server import SearchImitation
from tests.mailserver import MailServer
from tests.paths import REPO
from tests.waiting import wait_for, wait_for_count
from tests.web_client import WebClient, download_path

CLUSTER_ROOT = REPO / "var" / "test-cluster"
# Fixed addresses of this module's servers (127.0.0.2-99 are for such tests); the
# cluster's Cassandra nodes use 127.0.0.1-3.
HOST_ADDRESSES = ("127.0.0.61", "127.0.0.62", "127.0.0.63")
IMITATION_ADDRESS = "127.0.0.64"

pytestmark = [pytest.mark.browser, pytest.mark.cluster]


def cluster_command(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "devtools.cluster", *args, "--root", str(CLUSTER_ROOT)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def cluster_env(imitation: SearchImitation, mail: MailServer) -> dict[str, str]:
    allowed = [f"{a}/32" for a in (*HOST_ADDRESSES, IMITATION_ADDRESS)]
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("IMAGEDL_", "CASSANDRA_", "EMAIL_"))},
        **{name: str(value) for name, value in imitation.engine_settings(0.5).items()},
        "EMAIL_HOST": mail.host,
        "EMAIL_PORT": str(mail.port),
        "IMAGEDL_BASE_URL": "http://testserver",
        "IMAGEDL_EXTRA_ALLOWED_NETWORKS": ",".join(allowed),
        "IMAGEDL_Q_WORKERS": "1",
        # Quiet logs: a worker must be seen running without django-q2's INFO lines.
        "IMAGEDL_LOG_LEVEL": "WARNING",
        "IMAGEDL_LEASE_SECONDS": "9",
        # Longer than any test here: what these tests see recovered is recovered by the
        # queue or a lease, never by the reaper standing in for a lost task.
        "IMAGEDL_REAPER_GRACE_SECONDS": "900",
        "IMAGEDL_TRANSIENT_BACKOFF_SECONDS": "2",
        "IMAGEDL_TRANSIENT_RETRIES": "3",
        "IMAGEDL_EMAIL_RETRY_SECONDS": "5",
        "IMAGEDL_SUBMIT_RATE_PER_IP": "100/h",
        "IMAGEDL_SUBMIT_RATE_PER_EMAIL": "100/h",
        "CASSANDRA_KEYSPACE": "imagedl_cluster_test",
    }


def copies_window(env: dict[str, str]) -> float:
    """Seconds within which a second copy of a run or a mail would have come: a lease
    running out, a mail's retry, a run's whole chain of step-backs, and a margin. Redis
    never hands a task out twice and the reaper waits longer than any test, so "once"
    is watched past every other source of copies."""
    backoff, retries = int(env["IMAGEDL_TRANSIENT_BACKOFF_SECONDS"]), int(env["IMAGEDL_TRANSIENT_RETRIES"])
    step_backs = sum(backoff * 2**retry for retry in range(retries))
    return int(env["IMAGEDL_LEASE_SECONDS"]) + int(env["IMAGEDL_EMAIL_RETRY_SECONDS"]) + step_backs + 5


class Cluster:
    def __init__(self, info: dict, hosts: list[ImageHost], mail: MailServer, env: dict[str, str]) -> None:
        self.info = info
        self.hosts = hosts
        self.mail = mail
        self.web = info["web"]
        self.watch_for_copies = copies_window(env)

    def kill(self, name: str) -> None:
        done = cluster_command("kill", name)
        assert done.returncode == 0, done.stderr

    def start(self, name: str) -> None:
        done = cluster_command("start", name)
        assert done.returncode == 0, done.stderr

    def status(self) -> dict:
        done = cluster_command("status")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def submit(self, web: str, email: str, count: int) -> str:
        """Submit the form of ``web`` as a browser would; the status page's path."""
        return WebClient(web).submit_ok(email, count)

    def job_state(self, web: str, status_path: str) -> dict:
        return WebClient(web).state(status_path)

    def ready_mail(self, email: str, timeout: float = 240):
        return self.mail.wait_for(email, "are ready", timeout=timeout)

    def download(self, web: str, message) -> tuple[requests.Response, bytes]:
        answer = requests.get(web + download_path(message), allow_redirects=False, timeout=60)
        if answer.status_code in (302, 303, 307):
            location = answer.headers["Location"]
            assert location.startswith(self.info["s3"]), location  # a presigned URL of the bucket
            fetched = requests.get(location, timeout=60)
            assert fetched.status_code == 200
            return answer, fetched.content
        assert answer.status_code == 200
        return answer, answer.content

    def working_worker(self, timeout: float = 120) -> str | None:
        """The worker whose disk holds a run's folder (the one running a job)."""

        def find() -> str | None:
            for name in self.info["workers"]:
                work = CLUSTER_ROOT / name / "media" / "work"
                if work.exists() and any(p.is_dir() and any(p.iterdir()) for p in work.iterdir()):
                    return name
            return None

        return wait_for(find, timeout=timeout, interval=0.2)


def ready_mails(mail: MailServer, email: str) -> list:
    return [m for m in mail.messages_to(email) if "are ready" in str(m["Subject"])]


def images_in(data: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return images_in_archive(archive.namelist())


@pytest.fixture(scope="module")
def cluster():
    if cluster_command("status").returncode == 0:  # left by a session killed outright
        cluster_command("down")
    shutil.rmtree(CLUSTER_ROOT, ignore_errors=True)
    hosts = [ImageHost(address, latency=0.05).start() for address in HOST_ADDRESSES]
    imitation = SearchImitation(IMITATION_ADDRESS, image_url=image_urls(hosts), total=300).start()
    mail = MailServer().start()
    env = cluster_env(imitation, mail)
    try:
        started = subprocess.run(
            [sys.executable, "-m", "devtools.cluster", "up", "--free-ports", "--root", str(CLUSTER_ROOT)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert started.returncode == 0, started.stderr[-5000:]
        info = json.loads(started.stdout.strip().splitlines()[-1])
        assert len(info["web"]) == 2 and len(info["cassandra"]) == 3 and len(info["workers"]) == 2
        yield Cluster(info, hosts, mail, env)
    finally:
        cluster_command("down")
        mail.stop()
        imitation.stop()
        for host in hosts:
            host.stop()
        shutil.rmtree(CLUSTER_ROOT, ignore_errors=True)


def test_status_names_every_part_up(cluster):
    parts = cluster.status()
    expected = {"cassandra-1", "cassandra-2", "cassandra-3", "postgres", "redis", "s3"}
    expected |= {"worker-1", "worker-2", "web-1", "web-2"}
    assert set(parts) == expected
    assert all(part["up"] and part["pid"] for part in parts.values()), parts


def test_submitted_on_one_web_followed_and_downloaded_on_the_other(cluster):
    web1, web2 = cluster.web
    status_path = cluster.submit(web1, "ada@example.org", 20)
    page = requests.get(web2 + status_path, timeout=30)  # signed by web-1, opened on web-2
    assert page.status_code == 200 and "red fox" in page.text
    assert wait_for(lambda: cluster.job_state(web2, status_path).get("status") == "done", timeout=240)
    answer, data = cluster.download(web2, cluster.ready_mail("ada@example.org"))
    assert answer.status_code in (302, 303, 307)  # the bucket serves the bytes, not the web
    assert len(images_in(data)) == 20


def test_a_job_is_delivered_with_one_cassandra_node_killed(cluster):
    for host in cluster.hosts:
        host.latency = 0.3
    try:
        status_path = cluster.submit(cluster.web[0], "bob@example.org", 40)
        running = lambda: cluster.job_state(cluster.web[1], status_path).get("downloaded", 0) >= 3  # noqa: E731
        assert wait_for(running, timeout=180)
        cluster.kill("cassandra-3")
        assert cluster.status()["cassandra-3"]["up"] is False
        message = cluster.ready_mail("bob@example.org", timeout=300)
        assert len(images_in(cluster.download(cluster.web[1], message)[1])) == 40
        # Its outcome, once; nothing else but "started", had its start come later than a
        # minute after it was submitted.
        ready = lambda: len(ready_mails(cluster.mail, "bob@example.org"))  # noqa: E731
        assert wait_for_count(ready, 1, timeout=60, settle=cluster.watch_for_copies) == 1
        others = [str(m["Subject"]) for m in cluster.mail.messages_to("bob@example.org")]
        others = [subject for subject in others if "are ready" not in subject]
        assert len(others) <= 1 and all("has started" in subject for subject in others), others
    finally:
        for host in cluster.hosts:
            host.latency = 0.05
        cluster.start("cassandra-3")


def test_a_killed_worker_leaves_the_job_to_the_other(cluster):
    for host in cluster.hosts:
        host.latency = 0.4
    killed = None
    try:
        status_path = cluster.submit(cluster.web[0], "cy@example.org", 40)
        killed = cluster.working_worker()
        assert killed is not None
        assert wait_for(lambda: cluster.job_state(cluster.web[1], status_path).get("downloaded", 0) >= 3, 180)
        cluster.kill(killed)
        for host in cluster.hosts:
            host.latency = 0.05
        message = cluster.ready_mail("cy@example.org", timeout=360)
        assert len(images_in(cluster.download(cluster.web[1], message)[1])) == 40
        assert cluster.status()[killed]["pid"] is None  # the other worker delivered it
        # A web may answer from a replica a moment behind (or its one-second memory).
        done = lambda: cluster.job_state(cluster.web[1], status_path).get("status") == "done"  # noqa: E731
        assert wait_for(done, timeout=30)
        ready = lambda: len(ready_mails(cluster.mail, "cy@example.org"))  # noqa: E731
        assert wait_for_count(ready, 1, timeout=10, settle=cluster.watch_for_copies) == 1
    finally:
        for host in cluster.hosts:
            host.latency = 0.05
        if killed:
            cluster.start(killed)


def test_jobs_queued_in_redis_survive_its_restart(cluster):
    for name in cluster.info["workers"]:
        cluster.kill(name)
    try:
        emails = [f"queued{i}@example.org" for i in range(3)]
        paths = {
            email: cluster.submit(cluster.web[index % 2], email, 10) for index, email in enumerate(emails)
        }
        time.sleep(2)  # past Redis's one-second append-only fsync
        cluster.kill("redis")
        cluster.start("redis")
    finally:
        for name in cluster.info["workers"]:
            cluster.start(name)
    for email in emails:
        message = cluster.ready_mail(email, timeout=300)
        assert len(images_in(cluster.download(cluster.web[1], message)[1])) == 10
        # Run from the queue that survived: the reaper queued nothing again.
        events = [e["message"] for e in cluster.job_state(cluster.web[1], paths[email]).get("events", [])]
        assert events and not any(m.startswith("Queued again") for m in events), (email, events)
    # One each (every one has one by now): no job runs twice from a queue that survived.
    all_ready = lambda: sum(len(ready_mails(cluster.mail, email)) for email in emails)  # noqa: E731
    count = wait_for_count(all_ready, len(emails), timeout=10, settle=cluster.watch_for_copies)
    assert count == len(emails)
