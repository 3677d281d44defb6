"""The API's docs page in a real Chromium, under the site's Content-Security-Policy:
Swagger UI runs from our own static files and lists every operation."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from downloader.browser import open_browser
from downloader.config import browser_options_from_settings

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, databases="__all__")]


def test_the_docs_page_renders_every_operation(cassandra_db, live_server):
    with open_browser(browser_options_from_settings(), width=1280, height=900) as browser:
        browser.get(live_server.url + "/api/v1/docs")
        operations = WebDriverWait(browser, 30).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path") or None
        )
        paths = {element.get_attribute("data-path") or element.text for element in operations}
        assert len(operations) == 8, paths
        assert "/api/v1/jobs/{job_id}/manifest" in {p.replace("\u200b", "") for p in paths}
