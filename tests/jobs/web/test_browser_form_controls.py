"""The form's newer controls in a real Chromium: safe search (radio buttons) and
the engine "all", chosen by keyboard alone; the pages at desktop and 360 px widths
(screenshots under var/screenshots/, or IMAGEDL_SCREENSHOT_DIR)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from downloader.browser import open_browser
from downloader.config import browser_options_from_settings
from jobs.lib import links
from jobs.store import records
from tests.jobs.web.test_browser_pages import Tabber, press, settle, shoot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases="__all__")]


@pytest.fixture
def chromium(cassandra_db):
    with open_browser(browser_options_from_settings(), width=1280, height=900) as driver:
        yield driver


def checked(driver, name: str) -> str:
    return driver.execute_script(f"return document.querySelector('input[name={name}]:checked').value")


@pytest.mark.screenshots
def test_safe_search_and_all_engines_by_keyboard_and_on_a_phone(chromium, live_server):
    chromium.get(live_server.url + "/")
    assert checked(chromium, "safe_search") == "moderate"  # on by default
    chromium.execute_script("document.querySelector('#job-form details').open = true")
    shoot(chromium, "home-safe-search")  # nothing sticks out at 360 px (shoot checks)
    chromium.execute_script("document.querySelector('#job-form details').open = false")

    tab = Tabber(chromium)
    tab.to("#id_query")
    press(chromium, "snowy owl")
    tab.to("#id_email")
    press(chromium, "ada@example.org")
    tab.to("#job-form summary")
    press(chromium, Keys.ENTER)  # opens the optional filters, safe search first
    tab.to("input[name=safe_search]")  # Tab enters the group at its checked button
    assert chromium.switch_to.active_element.get_attribute("value") == "moderate"
    press(chromium, Keys.ARROW_LEFT)  # arrows move within the group, and choose
    assert checked(chromium, "safe_search") == "strict"
    tab.to("#id_engine")
    press(chromium, Keys.ARROW_DOWN)  # Automatic -> All engines
    assert chromium.find_element(By.ID, "id_engine").get_attribute("value") == "all"
    tab.to("#job-form button[type=submit]")
    press(chromium, Keys.ENTER)

    settle(chromium, 10).until(lambda d: "/submitted" in d.current_url)
    token = chromium.current_url.rstrip("/").split("/")[-2]
    job = records.job_get(links.token_read(token, "status"))
    assert (job.query, job.safe_search, job.engine) == ("snowy owl", "strict", "all")
    chromium.get(live_server.url + f"/jobs/{token}/")
    assert chromium.find_element(By.ID, "safe-search").text == "Strict"
    shoot(chromium, "status-safe-search")


@pytest.mark.screenshots
def test_repeat_by_keyboard_and_the_series_page_on_a_phone(chromium, live_server):
    from jobs.store.series import series_get

    chromium.get(live_server.url + "/")
    assert checked(chromium, "repeat") == "never"  # runs once unless asked
    tab = Tabber(chromium)
    tab.to("#id_query")
    press(chromium, "snowy owl")
    tab.to("input[name=repeat]")  # Tab enters the group at its checked button
    press(chromium, Keys.ARROW_RIGHT)  # Never -> Every day
    press(chromium, Keys.ARROW_RIGHT)  # -> Every week
    assert checked(chromium, "repeat") == "week"
    shoot(chromium, "home-repeat")
    tab.to("#id_email")
    press(chromium, "ada@example.org")
    tab.to("#job-form button[type=submit]")
    press(chromium, Keys.ENTER)

    settle(chromium, 10).until(lambda d: "/submitted" in d.current_url)
    token = chromium.current_url.rstrip("/").split("/")[-2]
    job = records.job_get(links.token_read(token, "status"))
    series = series_get(job.series_id)
    assert series.every == "week" and job.series_run == 1
    chromium.find_element(By.CSS_SELECTOR, "#series-link a").click()
    settle(chromium, 10).until(lambda d: "/series/" in d.current_url)
    assert chromium.find_elements(By.ID, "series-pending")  # nothing runs until confirmed
    # The link of the first mail (double opt-in): one button confirms.
    chromium.get(live_server.url + urlsplit(links.series_confirm_url(series.id)).path)
    Tabber(chromium).to("#confirm button")
    press(chromium, Keys.ENTER)
    settle(chromium, 10).until(lambda d: d.find_elements(By.ID, "series-next"))
    assert "Next run" in chromium.find_element(By.ID, "series-next").text
    shoot(chromium, "series")
    tab = Tabber(chromium)
    tab.to("#stop button")  # the Stop button, by keyboard
    press(chromium, Keys.ENTER)
    settle(chromium, 10).until(lambda d: d.find_elements(By.ID, "series-stopped"))
    assert not series_get(series.id).is_active
    shoot(chromium, "series-stopped")


@pytest.mark.screenshots
def test_engine_filters_by_keyboard_and_on_a_phone(chromium, live_server):
    chromium.get(live_server.url + "/")
    chromium.execute_script("document.querySelector('#job-form details').open = true")
    shoot(chromium, "home-engine-filters")  # six selects; nothing sticks out at 360 px (shoot checks)
    chromium.execute_script("document.querySelector('#job-form details').open = false")

    tab = Tabber(chromium)
    tab.to("#id_query")
    press(chromium, "red fox")
    tab.to("#id_email")
    press(chromium, "ada@example.org")
    tab.to("#job-form summary")
    press(chromium, Keys.ENTER)  # opens the filters
    tab.to("#id_filter_license")
    press(chromium, Keys.ARROW_DOWN)  # Any -> Creative Commons
    tab.to("#id_filter_layout")
    press(chromium, Keys.ARROW_DOWN, Keys.ARROW_DOWN)  # Any -> Square -> Wide
    tab.to("#id_filter_freshness")
    press(chromium, Keys.END)  # the last: Past month
    values = {
        kind: chromium.find_element(By.ID, f"id_filter_{kind}").get_attribute("value")
        for kind in ("license", "colour", "layout", "freshness")
    }
    assert values == {"license": "cc", "colour": "", "layout": "wide", "freshness": "month"}
    tab.to("#job-form button[type=submit]")
    press(chromium, Keys.ENTER)

    settle(chromium, 10).until(lambda d: "/submitted" in d.current_url)
    token = chromium.current_url.rstrip("/").split("/")[-2]
    job = records.job_get(links.token_read(token, "status"))
    assert (job.filter_license, job.filter_layout, job.filter_freshness) == ("cc", "wide", "month")
    chromium.get(live_server.url + f"/jobs/{token}/")
    assert chromium.find_element(By.ID, "filters").text == (
        "License: Creative Commons; Layout: Wide; Freshness: Past month"
    )
    shoot(chromium, "status-engine-filters")
