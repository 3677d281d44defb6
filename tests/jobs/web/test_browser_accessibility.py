"""WCAG 2.2 AA, proven by a tool: axe-core (tests/axe/, pinned; `make test` installs it)
injected into every public page and state, at 1280 and 360 px, must find no violation
of the wcag2a, wcag2aa, wcag21aa and wcag22aa rules. Then what axe cannot see: the
errors' summary takes the focus, every aria-describedby names an element that exists,
and the focus ring and borders contrast enough."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.by import By

from downloader.browser import open_browser
from downloader.config import browser_options_from_settings
from jobs.core import services
from jobs.lib import links
from jobs.store import records
from tests.factories import IN_AN_HOUR, make_done_job, make_job, submit_series
from tests.jobs.web.test_browser_pages import settle, shoot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases="__all__")]


@pytest.fixture
def browser(cassandra_db):
    with open_browser(browser_options_from_settings(), width=1280, height=900) as driver:
        yield driver


def dangling_describedby(driver) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('[aria-describedby]')).flatMap(e =>"
        " e.getAttribute('aria-describedby').split(/\\s+/).filter(id => id && !document.getElementById(id))"
        " .map(id => (e.id || e.tagName) + ' -> ' + id));"
    )


def contrast(driver, css: str, prop: str) -> float:
    """The contrast ratio of an element's ``prop`` colour against white."""
    return driver.execute_script(
        "const c = getComputedStyle(document.querySelector(arguments[0]))[arguments[1]].match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number);"
        "const l = c.map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });"
        "const lum = 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2];"
        "return 1.05 / (lum + 0.05);",
        css,
        prop,
    )


def post_without_the_browsers_checks(driver, **values: str) -> None:
    """Fill the form and post it with HTMLFormElement.submit(), which skips form.js:
    the server's checks answer."""
    driver.execute_script(
        "const f = document.getElementById('job-form');"
        "for (const [name, value] of Object.entries(arguments[0])) {"
        "  const inputs = f.querySelectorAll(`[name=${name}]`);"
        "  if (inputs[0].type === 'radio') inputs.forEach(i => { i.checked = i.value === value; });"
        "  else inputs[0].value = value; }"
        "f.submit();",
        values,
    )
    settle(driver, 10).until(lambda d: d.find_elements(By.ID, "error-summary"))


@pytest.mark.screenshots
def test_the_form_and_its_error_states(browser, live_server, axe):
    browser.get(live_server.url + "/")
    assert browser.find_element(By.ID, "id_email").get_attribute("autocomplete") == "email"
    assert dangling_describedby(browser) == []
    assert contrast(browser, "#id_query", "borderTopColor") >= 3
    browser.find_element(By.ID, "id_query").click()
    assert contrast(browser, "#id_query", "outlineColor") >= 3
    axe(browser, "home")
    browser.execute_script("document.querySelector('#job-form details').open = true")
    browser.find_element(By.ID, "id_repeat_1").click()
    browser.find_element(By.ID, "id_start_1").click()
    assert dangling_describedby(browser) == []
    axe(browser, "home, filters open, a set time, repeating")

    # The server's errors: the summary, focused, a link to each field, "Error: " in the title.
    post_without_the_browsers_checks(
        browser, query="", count="0", email="nope", start="later", run_date="2020-01-01", run_time="10:00"
    )
    assert browser.title.startswith("Error: ")
    assert browser.switch_to.active_element.get_attribute("id") == "error-summary"
    links_to = [
        a.get_attribute("href").split("#")[1]
        for a in browser.find_elements(By.CSS_SELECTOR, "#error-summary a")
    ]
    assert links_to == ["id_query", "id_count", "id_run_time", "id_email"]
    assert len(browser.find_elements(By.CSS_SELECTOR, "[role=alert]")) == 1  # one announcement
    assert dangling_describedby(browser) == []
    axe(browser, "server errors")
    shoot(browser, "home-errors")
    browser.find_element(By.CSS_SELECTOR, "#error-summary a[href='#id_count']").click()
    assert browser.switch_to.active_element.get_attribute("id") == "id_count"

    browser.get(live_server.url + "/")
    post_without_the_browsers_checks(
        browser, source="page", page_url="http://10.0.0.1/x", email="a@example.org"
    )
    axe(browser, "server error on the page address")

    # The browser's errors: the same summary and words, before anything is posted.
    browser.get(live_server.url + "/")
    browser.find_element(By.ID, "send").click()
    summary = browser.find_element(By.ID, "error-summary")
    assert browser.switch_to.active_element == summary and browser.title.startswith("Error: ")
    assert "Enter the words to search for" in summary.text and "Enter your email address" in summary.text
    assert dangling_describedby(browser) == []
    axe(browser, "browser errors")


@pytest.mark.screenshots
def test_the_job_pages_in_each_state(browser, live_server, axe, settings):
    settings.IMAGEDL_BASE_URL = live_server.url
    later = make_job(run_in=IN_AN_HOUR)
    browser.get(live_server.url + f"/jobs/{links.token_make(later.id, 'status')}/submitted")
    axe(browser, "submitted for later")

    now = make_job(run_in=dt.timedelta(0))
    browser.get(live_server.url + f"/jobs/{links.token_make(now.id, 'status')}/submitted")
    assert "We're collecting your images now" in browser.find_element(By.TAG_NAME, "h1").text
    axe(browser, "collecting now")
    shoot(browser, "collecting")

    running = records.job_get(now.id)
    services.job_start_attempt(running)
    services.job_record_progress(running, found_count=20, downloaded_count=8, rejected_count=2)
    browser.get(live_server.url + f"/jobs/{links.token_make(now.id, 'status')}/")
    assert contrast(browser, "#status-word", "color") >= 4.5
    assert browser.find_element(By.ID, "live").get_attribute("aria-live") == "polite"
    axe(browser, "running")

    done = make_done_job(images=3, found=5, rejected=2)
    browser.get(live_server.url + f"/jobs/{links.token_make(done.id, 'status')}/")
    axe(browser, "done")
    services.job_cancel(records.job_get(later.id))
    browser.get(live_server.url + f"/jobs/{links.token_make(later.id, 'status')}/")
    axe(browser, "cancelled")

    expired = links.token_make(done.id, "download", dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    browser.get(live_server.url + f"/jobs/{expired}/download")
    axe(browser, "expired link")
    browser.get(live_server.url + "/jobs/forged/download")
    axe(browser, "invalid link")
    browser.get(live_server.url + "/nothing-here")
    axe(browser, "404")


@pytest.mark.screenshots
def test_the_series_pages(browser, live_server, axe):
    from jobs.store.series import series_get

    first = submit_series()
    series = series_get(first.series_id)
    browser.get(live_server.url + urlsplit(links.series_url(series.id, 1)).path)
    axe(browser, "series")
    stop = urlsplit(links.series_stop_url(series.id)).path
    browser.get(live_server.url + stop)
    axe(browser, "stop question")
    shoot(browser, "series-stop")
    browser.find_element(By.CSS_SELECTOR, "#stop button").click()
    settle(browser, 10).until(lambda d: d.find_elements(By.ID, "series-stopped"))
    axe(browser, "series stopped")
