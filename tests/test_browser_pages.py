"""The public pages in a real Chromium against a live server: fill and submit the form,
follow the status link, watch the progress bar move, cancel, download; screenshots at
desktop and phone widths go to docs/screenshots/."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from downloader.browser import open_browser
from jobs import links, records, services
from jobs.models import JobStatus


def settle(browser, seconds: float) -> WebDriverWait:
    """A wait that rides out page loads: the element read may belong to the page being
    replaced (stale) or to the next one not yet parsed (missing)."""
    return WebDriverWait(
        browser, seconds, ignored_exceptions=(StaleElementReferenceException, NoSuchElementException)
    )


pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases="__all__")]
SHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


@pytest.fixture
def browser(cassandra_db):
    with open_browser(width=1280, height=900) as driver:
        yield driver


def shoot(driver, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for label, width in (("desktop", 1280), ("phone", 360)):
        driver.set_window_size(width, 900)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width, min(max(height, 600), 2400))
        driver.save_screenshot(str(SHOTS / f"{name}-{label}.png"))
        if label == "phone":  # nothing may stick out sideways at 360 px
            assert driver.execute_script("return document.documentElement.scrollWidth") <= 360
    driver.set_window_size(1280, 900)


def test_submit_follow_watch_and_cancel(browser, live_server):
    browser.get(live_server.url + "/")
    shoot(browser, "home")
    # Keyboard only: focus the query field and tab through the form.
    query = browser.find_element(By.ID, "id_query")
    query.click()
    query.send_keys("red fox")
    count = browser.find_element(By.ID, "id_count")
    count.send_keys(Keys.CONTROL, "a")
    count.send_keys("150")
    assert "Estimated time" in browser.find_element(By.ID, "estimate").text
    browser.find_element(By.ID, "id_email").send_keys("ada@example.org")
    # Client-side check first: an empty email is stopped in the browser.
    browser.find_element(By.ID, "id_email").clear()
    browser.find_element(By.CSS_SELECTOR, "#job-form button[type=submit]").click()
    assert "Enter a valid email address." in browser.find_element(By.ID, "id_email_client_error").text
    browser.find_element(By.ID, "id_email").send_keys("ada@example.org", Keys.ENTER)

    settle(browser, 10).until(lambda d: "/submitted" in d.current_url)
    assert "Your job is scheduled" in browser.page_source
    shoot(browser, "submitted")
    browser.find_element(By.LINK_TEXT, "Follow its progress").click()
    settle(browser, 10).until(lambda d: d.find_elements(By.ID, "progress"))
    job_id = links.read_token(browser.current_url.rstrip("/").split("/")[-1], "status")
    job = records.get_job(job_id)

    # The job runs (driven from here) and the page follows it without a reload.
    services.job_start_attempt(job)
    services.job_record_progress(job, found_count=90, downloaded_count=60, rejected_count=7)
    settle(browser, 15).until(
        lambda d: d.find_element(By.ID, "progress").get_attribute("aria-valuenow") == "40"
    )
    assert browser.find_element(By.ID, "c-downloaded").text == "60"
    assert browser.find_element(By.ID, "status-word").text == "Running"
    shoot(browser, "status-running")

    browser.find_element(By.CSS_SELECTOR, "#cancel button").click()
    settle(browser, 10).until(lambda d: "Cancelled" in d.find_element(By.ID, "status-word").text)
    assert records.get_job(job_id).status == JobStatus.CANCELLED
    assert browser.find_element(By.ID, "resubmit").is_displayed()


def test_finished_job_downloads_and_pages_look_right(browser, live_server, settings):
    settings.IMAGEDL_BASE_URL = live_server.url
    from PIL import Image

    job = services.job_submit(
        email="ada@example.org",
        query="Northern lights",
        requested_count=6,
        run_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
        time_zone="Europe/Oslo",
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n in range(1, 7):
            img = io.BytesIO()
            Image.new("RGB", (400, 260), (20 * n, 120, 200 - 20 * n)).save(img, "JPEG")
            zf.writestr(f"northern-lights_000{n}.jpg", img.getvalue())
        zf.writestr("manifest.csv", "file\n")
    path = default_storage.save(f"archives/{job.id.hex}.zip", ContentFile(buf.getvalue()))
    services.job_start_attempt(job)
    services.job_record_progress(job, found_count=9, rejected_count=3)
    services.job_complete(job, archive_path=path, archive_bytes=len(buf.getvalue()), kept=6)

    browser.get(live_server.url + f"/jobs/{links.make_token(job.id, 'status')}/")
    assert "Ready to download" in browser.find_element(By.ID, "status-word").text
    thumbs = browser.find_elements(By.CSS_SELECTOR, ".thumbs img")
    assert len(thumbs) == 6
    settle(browser, 10).until(
        lambda d: all(d.execute_script("return arguments[0].naturalWidth", t) > 0 for t in thumbs)
    )
    shoot(browser, "status-done")
    href = browser.find_element(By.ID, "download").get_attribute("href")
    from django.test import Client

    response = Client().get(href.replace(live_server.url, ""))
    assert b"".join(response.streaming_content) == buf.getvalue()

    browser.get(live_server.url + "/jobs/forged-token/download")
    assert "This link is not valid" in browser.page_source
    shoot(browser, "link-invalid")
    browser.get(live_server.url + "/nothing-here")
    shoot(browser, "not-found")
