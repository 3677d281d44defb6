"""The public pages in a real Chromium against a live server: fill and submit the form,
follow the status link, watch the progress bar move, cancel, download; screenshots at
desktop and phone widths go to var/screenshots/, or to IMAGEDL_SCREENSHOT_DIR (which
`make screenshots` sets to docs/screenshots/)."""

from __future__ import annotations

import datetime as dt
import zipfile

import pytest
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from downloader.browser import open_browser
from downloader.config import browser_options_from_settings
from jobs.core import services
from jobs.lib import links
from jobs.models import JobStatus
from jobs.store import records
from jobs.web.estimate import estimate_seconds
from tests.factories import images_in_archive, make_done_job, stored_archive
from tests.paths import screenshot_dir
from tests.waiting import wait_for


def settle(browser, seconds: float) -> WebDriverWait:
    """A wait that rides out page loads: the element read may belong to the page being
    replaced (stale) or to the next one not yet parsed (missing)."""
    return WebDriverWait(
        browser, seconds, ignored_exceptions=(StaleElementReferenceException, NoSuchElementException)
    )


def text_of(driver, element_id: str) -> str:
    """An element's text, or "" while the page that holds it is being replaced (the
    element may be stale, missing, or - Chromium's words - "not belong to the
    document" any more)."""
    try:
        return driver.find_element(By.ID, element_id).text
    except (StaleElementReferenceException, NoSuchElementException):
        return ""
    except WebDriverException as exc:
        if "does not belong to the document" in str(exc):
            return ""
        raise


pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases="__all__")]


@pytest.fixture
def browser(cassandra_db):
    with open_browser(browser_options_from_settings(), width=1280, height=900) as driver:
        yield driver


def shoot(driver, name: str) -> None:
    shots = screenshot_dir()
    shots.mkdir(parents=True, exist_ok=True)
    # Let transitions finish (the progress bar slides to its width), or the picture
    # catches them half-way.
    settle(driver, 5).until(
        lambda d: d.execute_script("return document.getAnimations().every(a => a.playState !== 'running')")
    )
    for label, width in (("desktop", 1280), ("phone", 360)):
        driver.set_window_size(width, 900)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width, min(max(height, 600), 2400))
        driver.save_screenshot(str(shots / f"{name}-{label}.png"))
        if label == "phone":  # nothing may stick out sideways at 360 px
            assert driver.execute_script("return document.documentElement.scrollWidth") <= 360
    driver.set_window_size(1280, 900)


@pytest.mark.screenshots
def test_submit_follow_watch_and_cancel(browser, live_server):
    browser.get(live_server.url + "/")
    shoot(browser, "home")
    query = browser.find_element(By.ID, "id_query")
    query.click()
    query.send_keys("red fox")
    count = browser.find_element(By.ID, "id_count")
    count.send_keys(Keys.CONTROL, "a")
    count.send_keys("150")
    assert f"about {estimate_seconds(150)} seconds" in browser.find_element(By.ID, "estimate").text
    # Run times are checked in the browser too, in the chosen zone: a set time reveals them.
    browser.find_element(By.ID, "id_start_1").click()
    assert browser.find_element(By.ID, "send").text == "Schedule"
    date, time = browser.find_element(By.ID, "id_run_date"), browser.find_element(By.ID, "id_run_time")
    today = date.get_attribute("value")
    in_an_hour = (dt.datetime.now() + dt.timedelta(hours=1)).strftime("%H:%M")
    browser.execute_script("arguments[0].value = arguments[1];", time, in_an_hour)
    for day, field, message in (
        (dt.date.fromisoformat(today) - dt.timedelta(days=1), "id_run_time", "That time has passed"),
        (
            dt.date.fromisoformat(today) + dt.timedelta(days=400),
            "id_run_date",
            "Choose a date within the next",
        ),
    ):
        browser.execute_script("arguments[0].value = arguments[1];", date, day.isoformat())
        browser.find_element(By.ID, "send").click()
        assert message in browser.find_element(By.ID, f"{field}_error").text
        assert message in browser.find_element(By.ID, "error-summary").text
    tomorrow = dt.date.fromisoformat(today) + dt.timedelta(days=1)  # (in an hour may be after midnight)
    browser.execute_script("arguments[0].value = arguments[1];", date, tomorrow.isoformat())
    # Client-side check first: an empty email is stopped in the browser.
    browser.find_element(By.ID, "send").click()
    assert "Enter your email address" in browser.find_element(By.ID, "id_email_error").text
    browser.find_element(By.ID, "id_email").send_keys("ada@example.org", Keys.ENTER)

    settle(browser, 10).until(lambda d: "/submitted" in d.current_url)
    assert "Your search is scheduled" in browser.page_source
    shoot(browser, "submitted")
    browser.find_element(By.LINK_TEXT, "Follow its progress").click()
    settle(browser, 10).until(lambda d: d.find_elements(By.ID, "progress"))
    job_id = links.token_read(browser.current_url.rstrip("/").split("/")[-1], "status")
    job = records.job_get(job_id)

    # The job runs (driven from here) and the page follows it without a reload.
    services.job_start_attempt(job)
    services.job_record_progress(job, found_count=90, downloaded_count=60, rejected_count=7)
    settle(browser, 15).until(
        lambda d: d.find_element(By.ID, "progress").get_attribute("aria-valuenow") == "40"
    )
    assert browser.find_element(By.ID, "c-downloaded").text == "60"
    assert browser.find_element(By.ID, "status-word").text == "Running"
    assert "left" in browser.find_element(By.ID, "time-left").text  # the time it still takes
    shoot(browser, "status-running")

    browser.find_element(By.CSS_SELECTOR, "#cancel button").click()
    settle(browser, 10).until(lambda d: "Cancelled" in text_of(d, "status-word"))
    assert records.job_get(job_id).status == JobStatus.CANCELLED
    assert browser.find_element(By.ID, "resubmit").is_displayed()


@pytest.mark.screenshots
def test_finished_job_downloads_and_pages_look_right(browser, live_server, settings):
    settings.IMAGEDL_BASE_URL = live_server.url
    job = make_done_job(
        query="Northern lights",
        time_zone="Europe/Oslo",
        images=6,
        image_size=(400, 260),
        found=9,
        rejected=3,
    )

    browser.get(live_server.url + f"/jobs/{links.token_make(job.id, 'status')}/")
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
    assert b"".join(response.streaming_content) == stored_archive(job)

    browser.get(live_server.url + "/jobs/forged-token/download")
    assert "This link is not valid" in browser.page_source
    shoot(browser, "link-invalid")
    browser.get(live_server.url + "/nothing-here")
    shoot(browser, "not-found")


def press(driver, *keys: str) -> None:
    """Keys sent to whatever has focus, as a person at the keyboard would."""
    ActionChains(driver).send_keys(*keys).perform()


class Tabber:
    """Moves the focus with Tab only, noting each element it passes and checking that
    the focused element is visibly marked."""

    def __init__(self, driver) -> None:
        self.driver = driver
        self.passed: list[str] = []

    def to(self, selector: str, limit: int = 80) -> None:
        for _ in range(limit):
            here, outline, matches = self.driver.execute_script(
                "const a = document.activeElement;"
                "return [a.id || a.tagName.toLowerCase(), getComputedStyle(a).outlineStyle, a.matches(arguments[0])];",
                selector,
            )
            if not self.passed or self.passed[-1] != here:
                self.passed.append(here)
            if matches:
                assert outline != "none", f"{selector} has the focus but shows no outline"
                return
            press(self.driver, Keys.TAB)
        raise AssertionError(f"Tab never reached {selector}; passed {self.passed}")


def test_the_whole_path_by_keyboard_alone_in_the_browsers_zone(browser, live_server):
    """From the form, through an error and its summary, to the collecting page, the
    status page and a cancel: only keys, each focused element visibly marked."""
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "Asia/Tokyo"})
    browser.get(live_server.url + "/")
    assert Select(browser.find_element(By.ID, "id_time_zone")).first_selected_option.get_attribute(
        "value"
    ) == ("Asia/Tokyo")
    tab = Tabber(browser)
    tab.to("a.skip")  # the first stop: past the header, to the form
    tab.to("#id_query")
    press(browser, "snowy owl")
    tab.to("#id_count")
    ActionChains(browser).key_down(Keys.CONTROL).send_keys("a").key_up(Keys.CONTROL).send_keys("12").perform()
    assert f"about {estimate_seconds(12)} seconds" in browser.find_element(By.ID, "estimate").text
    tab.to("#id_start_0")  # "As soon as possible", chosen already: the button says so
    assert browser.find_element(By.ID, "send").text == "Get my images"
    tab.to("#job-form summary")
    press(browser, Keys.ENTER)  # opens the optional filters
    tab.to("#id_formats_0")
    press(browser, Keys.SPACE)  # JPEG only
    assert "1 set" in browser.find_element(By.ID, "filters-set").text
    tab.to("#send")
    order = [
        tab.passed.index(name) for name in ("id_source_0", "id_query", "id_count", "id_start_0", "id_email")
    ]
    assert order == sorted(order), tab.passed  # the focus follows the page from top to bottom
    assert "id_page_url" not in tab.passed and "id_run_date" not in tab.passed  # hidden until asked for
    press(browser, Keys.ENTER)  # no address yet: the summary takes the focus
    assert browser.switch_to.active_element.get_attribute("id") == "error-summary"
    tab = Tabber(browser)
    tab.to("#error-summary a")
    press(browser, Keys.ENTER)  # the summary's link moves the focus to the field
    assert browser.switch_to.active_element.get_attribute("id") == "id_email"
    press(browser, "ada@example.org", Keys.ENTER)

    settle(browser, 10).until(lambda d: "/submitted" in d.current_url)
    assert "We're collecting your images now" in browser.find_element(By.TAG_NAME, "h1").text
    tab = Tabber(browser)
    tab.to("a.button")
    press(browser, Keys.ENTER)
    settle(browser, 10).until(lambda d: d.find_elements(By.ID, "status-word"))
    job = records.job_get(links.token_read(browser.current_url.rstrip("/").split("/")[-1], "status"))
    assert (job.query, job.requested_count, set(job.formats), job.time_zone) == (
        "snowy owl",
        12,
        {"jpeg"},
        "Asia/Tokyo",
    )
    tab = Tabber(browser)
    tab.to("#cancel button")
    press(browser, Keys.ENTER)
    settle(browser, 10).until(lambda d: "Cancelled" in text_of(d, "status-word"))
    assert records.job_get(job.id).status == JobStatus.CANCELLED


@pytest.mark.slow
@pytest.mark.image_hosts(count=2, latency=0.4)
@pytest.mark.imitation(total=200)
def test_the_progress_bar_follows_a_real_job(
    browser, live_server, start_worker, imitation, mailserver, browser_downloads
):
    start_worker(
        imitation,
        EMAIL_HOST=mailserver.host,
        EMAIL_PORT=str(mailserver.port),
        IMAGEDL_PER_HOST_CONNECTIONS="1",  # 30 images at 0.4 s, two at a time: about 6 s
        IMAGEDL_BASE_URL=live_server.url,
    )
    browser.get(live_server.url + "/")
    browser.find_element(By.ID, "id_query").send_keys("red fox")
    count = browser.find_element(By.ID, "id_count")
    count.send_keys(Keys.CONTROL, "a")
    count.send_keys("30")
    browser.find_element(By.ID, "id_email").send_keys("ada@example.org", Keys.ENTER)
    settle(browser, 10).until(lambda d: "/submitted" in d.current_url)
    assert "We're collecting your images now" in browser.page_source  # with the live status
    browser.find_element(By.LINK_TEXT, "Follow its progress").click()
    settle(browser, 10).until(lambda d: d.find_elements(By.ID, "progress"))

    seen: list[int] = []

    def finished(driver) -> bool:
        try:
            percent = int(driver.find_element(By.ID, "progress").get_attribute("aria-valuenow"))
            if not seen or seen[-1] != percent:
                seen.append(percent)
            return "Ready to download" in text_of(driver, "status-word")
        except (StaleElementReferenceException, NoSuchElementException, TypeError, ValueError):
            return False  # the page is being replaced
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                return False  # the same, in Chromium's words
            raise

    WebDriverWait(browser, 120, poll_frequency=0.2).until(finished)
    assert any(0 < p < 100 for p in seen), seen  # it moved while the job ran, without a reload
    assert seen == sorted(seen), seen
    assert browser.find_element(By.ID, "d-count").text == "30"
    # One click in the browser saves the zip, named after the query.
    browser.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(browser_downloads)}
    )
    browser.find_element(By.ID, "download").click()
    saved = browser_downloads / "red-fox.zip"
    assert wait_for(lambda: saved.exists() and not list(browser_downloads.glob("*.crdownload")), timeout=30)
    with zipfile.ZipFile(saved) as zf:
        assert len(images_in_archive(zf.namelist())) == 30
