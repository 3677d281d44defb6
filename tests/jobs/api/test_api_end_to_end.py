"""The API end to end: a real gunicorn and a real worker, a job submitted over HTTP
with an API key, its webhooks received on loopback and verified with
``standardwebhooks``, the zip downloaded from the link the ``job.ready`` event carries."""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import subprocess
import sys
import zipfile
from urllib.parse import urlsplit

import pytest
import requests

from tests.fixtures.hosts import allow_address
from tests.mailserver import free_port
from tests.paths import REPO
from tests.waiting import wait_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True, databases="__all__"),
    pytest.mark.imitation(total=60),
]
EVENTS = ("job.scheduled", "job.started", "job.ready")


@pytest.fixture
def receiver(start_receiver):
    return start_receiver("127.0.0.62")


@pytest.fixture
def web(start_web, receiver):
    return start_web(workers=1)


def submit(web: str, key: str, **body: object) -> dict:
    answer = requests.post(f"{web}/api/v1/jobs", json=body, headers={"X-Api-Key": key}, timeout=30)
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_signed_webhooks_retried_then_the_zip(web, api_keys, receiver, imitation, start_worker):
    receiver.answers = lambda webhook_id, n: 500 if n <= 2 else 200
    start_worker(imitation, IMAGEDL_BASE_URL=web, IMAGEDL_WEBHOOK_RETRY_SECONDS="1,1,1")
    made = submit(web, api_keys.read_write, query="red fox", count=5, webhook_url=receiver.url)
    (ready,) = receiver.wait_for_type("job.ready", timeout=300)
    for event_type in EVENTS:
        assert wait_for(lambda t=event_type: receiver.wait_for_type(t, timeout=0), timeout=120), event_type
        tries = receiver.of_type(event_type)
        assert [t.answered for t in tries] == [500, 500, 200], event_type  # delivered once
        assert len({t.webhook_id for t in tries}) == 1 and all(t.verified for t in tries)
    data = ready.body["data"]
    assert data["job_id"] == made["id"] and data["status"] == "done" and data["downloaded_count"] == 5
    zipped = requests.get(data["download_url"], timeout=30)
    assert zipped.status_code == 200 and len(zipped.content) == data["archive_bytes"]
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as archive:
        assert len([n for n in archive.namelist() if n.endswith((".jpg", ".jpeg", ".png", ".webp"))]) == 5
    own = urlsplit(made["links"]["self"])._replace(netloc=urlsplit(web).netloc).geturl()

    def deliveries() -> set[tuple[str, str, int]]:
        detail = requests.get(own, headers={"Authorization": f"Bearer {api_keys.read_only}"}, timeout=30)
        return {(w["type"], w["state"], w["tries"]) for w in detail.json()["webhooks"]}

    # The receiver answers before the sender records the answer: the job's detail says
    # "sent" a moment after the last try arrived.
    assert wait_for(lambda: deliveries() >= {(t, "sent", 3) for t in EVENTS}, timeout=30), deliveries()


def test_410_gone_stops_the_keys_webhooks(web, api_keys, receiver, start_worker):
    receiver.answers = lambda webhook_id, n: 410
    start_worker(IMAGEDL_BASE_URL=web)
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).isoformat()
    made = submit(
        web,
        api_keys.read_write,
        query="owls",
        count=3,
        run_at=later,
        time_zone="Europe/Paris",
        webhook_url=receiver.url,
    )
    assert receiver.wait_for_type("job.scheduled", answered=410, timeout=60)
    cancel = requests.post(
        f"{web}/api/v1/jobs/{made['id']}/cancel", headers={"X-Api-Key": api_keys.read_write}, timeout=30
    )
    assert cancel.status_code == 200
    own = f"{web}/api/v1/jobs/{made['id']}"

    def states() -> dict[str, str]:
        detail = requests.get(own, headers={"X-Api-Key": api_keys.read_only}, timeout=30).json()
        return {w["type"]: w["state"] for w in detail["webhooks"]}

    assert wait_for(
        lambda: states() == {"job.scheduled": "disabled", "job.cancelled": "disabled"}, timeout=60
    ), states()
    assert len(receiver.received) == 1


@pytest.fixture
def example_hook(settings) -> tuple[str, int]:
    """Where the docs' example listens (let in before the web starts: it checks the
    webhook address when the job is made)."""
    allow_address(settings, "127.0.0.63")
    return "127.0.0.63", free_port("127.0.0.63")


def test_the_python_example_of_the_docs_gets_its_zip(
    example_hook, web, api_keys, imitation, start_worker, tmp_path
):
    """docs/api.md's example, run as written but for its addresses and count."""
    start_worker(imitation, IMAGEDL_BASE_URL=web)
    address, port = example_hook
    text = (REPO / "docs" / "api.md").read_text()
    example = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    for old, new in (
        ("https://imagedl.example/api/v1", f"{web}/api/v1"),
        ("http://me.example:8080/hook", f"http://{address}:{port}/hook"),
        ('("", 8080)', f'("{address}", {port})'),
        ('"count": 50', '"count": 4'),
    ):
        assert old in example
        example = example.replace(old, new)
    env = {
        **os.environ,
        "IMAGEDL_KEY": api_keys.read_write,
        "IMAGEDL_WEBHOOK_SECRET": api_keys.webhook_secret,
    }
    subprocess.run([sys.executable, "-c", example], cwd=tmp_path, env=env, timeout=300, check=True)
    with zipfile.ZipFile(tmp_path / "red-fox.zip") as archive:
        assert len([n for n in archive.namelist() if n.startswith("red-fox_")]) == 4
