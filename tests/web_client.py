"""A browser's view of a running imagedl web process, over HTTP: submit the form, read
a job's status JSON, follow the download link of a ready mail. Used by the cluster
tests and bench/bench_scale.py, which talk to web processes they did not start in
their own Python process."""

from __future__ import annotations

import datetime as dt
import re
from email.message import EmailMessage
from urllib.parse import urlsplit

import requests

from tests.mailserver import text_body

CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class WebClient:
    """One visitor (its own cookies) of the web process at ``base``."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.session = requests.Session()
        self._csrf: str | None = None

    def csrf(self) -> str:
        if self._csrf is None:
            form = self.session.get(self.base + "/", timeout=30)
            form.raise_for_status()
            self._csrf = CSRF_FIELD.search(form.text).group(1)
        return self._csrf

    def submit(
        self,
        email: str,
        count: int,
        *,
        query: str = "red fox",
        run_at: dt.datetime | None = None,
        **fields: str,
    ) -> requests.Response:
        """POST the form (run now unless ``run_at``, in UTC); the answer, redirects not followed."""
        when = run_at or dt.datetime.now(dt.UTC)
        data = {
            "csrfmiddlewaretoken": self.csrf(),
            "query": query,
            "count": str(count),
            "email": email,
            "run_date": when.strftime("%Y-%m-%d"),
            "run_time": when.strftime("%H:%M"),
            "time_zone": "UTC",
            "engine": "bing",
            "safe_search": "moderate",
            **fields,
        }
        return self.session.post(self.base + "/", data=data, allow_redirects=False, timeout=60)

    def submit_ok(self, email: str, count: int, **options) -> str:
        """Submit and return the job's status page path (``/jobs/<token>/``)."""
        answer = self.submit(email, count, **options)
        assert answer.status_code == 302, answer.text[:2000]
        return re.sub(r"submitted$", "", urlsplit(answer.headers["Location"]).path)

    def state(self, status_path: str) -> dict:
        """The job's status JSON ({} when the web does not answer 200)."""
        answer = self.session.get(self.base + status_path + "status.json", timeout=30)
        return answer.json() if answer.status_code == 200 else {}


def download_path(message: EmailMessage) -> str:
    """The path of the one-click download link of a "ready" mail."""
    match = re.search(r"Download them \(one click\):\s*(http\S+)", text_body(message))
    assert match, text_body(message)
    return urlsplit(match.group(1)).path
