"""A person picks how the delivery is packed ("Pack as") in the form, by keyboard, in a
real Chromium; the status page says it back. Screenshots at 1280 and 360 px (under
var/screenshots/, or IMAGEDL_SCREENSHOT_DIR)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from downloader.browser import open_browser
from downloader.choices import PACK_LABELS
from downloader.config import browser_options_from_settings
from jobs.lib import links
from jobs.store import records
from tests.jobs.web.test_browser_pages import Tabber, press, settle, shoot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases="__all__")]


@pytest.fixture
def chromium(cassandra_db):
    with open_browser(browser_options_from_settings(), width=1280, height=900) as driver:
        yield driver


@pytest.mark.screenshots
def test_the_layout_is_picked_in_the_form_and_shown_on_the_status_page(chromium, live_server):
    chromium.get(live_server.url + "/")
    pack = Select(chromium.find_element(By.ID, "id_pack"))
    assert pack.first_selected_option.get_attribute("value") == "zip"  # today's zip by default
    assert [o.text for o in pack.options] == list(PACK_LABELS.values())
    label = chromium.find_element(By.CSS_SELECTOR, "label[for=id_pack]")
    assert label.text == "Pack as" and label.is_displayed()

    tab = Tabber(chromium)
    tab.to("#id_query")
    press(chromium, "red fox")
    tab.to("#id_email")
    press(chromium, "ada@example.org")
    tab.to("#id_pack")
    press(chromium, Keys.ARROW_DOWN)  # zip -> imagefolder -> parquet
    press(chromium, Keys.ARROW_DOWN)
    assert pack.first_selected_option.get_attribute("value") == "parquet"
    chromium.execute_script("document.getElementById('packing').scrollIntoView()")
    shoot(chromium, "home-pack-as")  # nothing sticks out at 360 px (shoot checks)
    tab.to("#job-form button[type=submit]")
    press(chromium, Keys.ENTER)

    settle(chromium, 10).until(lambda d: "/submitted" in d.current_url)
    token = chromium.current_url.rstrip("/").split("/")[-2]
    job = records.job_get(links.token_read(token, "status"))
    assert (job.query, job.pack) == ("red fox", "parquet")
    chromium.get(live_server.url + urlsplit(links.status_url(job.id)).path)
    settle(chromium, 10).until(lambda d: d.find_elements(By.ID, "pack"))
    assert chromium.find_element(By.ID, "pack").text == PACK_LABELS["parquet"]
    shoot(chromium, "status-pack-as")
