"""Safe search: on (moderate) by default, chosen per job, passed to every engine in its
own words; the imitations leave adult results out unless it is off."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from downloader.choices import SAFE_SEARCH, SAFE_SEARCH_DEFAULT
from downloader.config import engine_options_from_settings
from downloader.engines import get_engine
from downloader.engines.base import SearchRules
from jobs.core.run import job_run
from jobs.lib import links
from jobs.store import records
from tests.factories import make_job, manifest_rows, stored_archive

# Every fourth result is adult; the engines' pages answer at once.
ADULT = pytest.mark.imitation(total=24, adult=lambda i: i % 4 == 0, scroll_wait=0.5)
ENGINE_WORDS = {  # the parameter each engine is sent, per setting
    "bing": ("adlt", {"strict": "strict", "moderate": "moderate", "off": "off"}),
    "duckduckgo": ("kp", {"strict": "1", "moderate": "-1", "off": "-2"}),
    "google": ("safe", {"strict": "active", "moderate": "active", "off": "off"}),
}
ENGINE_PATHS = {"bing": "/images/search", "duckduckgo": "/i.js", "google": "/search"}


def adult_urls(imitation) -> set[str]:
    return {imitation.image_url(i) for i in range(1, imitation.total + 1) if imitation.adult(i)}


def test_moderate_is_the_default_everywhere():
    from jobs.models import Job
    from jobs.web.forms import JobForm

    assert SAFE_SEARCH_DEFAULT == "moderate" and SAFE_SEARCH == ("strict", "moderate", "off")
    assert SearchRules().safe_search == "moderate"
    assert JobForm.base_fields["safe_search"].initial == "moderate"
    assert Job(safe_search=None).safe_search_label == "Moderate"  # jobs stored before it existed


@pytest.mark.browser
@ADULT
@pytest.mark.parametrize("engine", ["bing", "duckduckgo", "google"])
@pytest.mark.parametrize("setting", SAFE_SEARCH)
def test_every_engine_is_sent_the_setting_in_its_own_words(driver, imitation, engine, setting):
    found = {
        c.url
        for c in get_engine(engine, engine_options_from_settings()).search(
            driver, "x", wanted=100, rules=SearchRules(safe_search=setting)
        )
    }
    parameter, words = ENGINE_WORDS[engine]
    sent = [q.get(parameter) for path, q in imitation.requests if path == ENGINE_PATHS[engine]]
    assert sent and set(sent) == {words[setting]}
    if setting == "off":
        assert adult_urls(imitation) <= found and len(found) == 24
    else:
        assert not found & adult_urls(imitation) and len(found) == 18


@pytest.mark.browser
@ADULT
@pytest.mark.django_db(databases=["default", "cassandra"])
def test_a_moderate_job_never_receives_adult_results_and_an_off_job_does(cassandra_db, imitation, client):
    default = make_job(requested_count=24, engine="bing")  # moderate, not asked for
    assert job_run(default.id) == "done: 18"  # the 18 results that are not adult
    done = records.job_get(default.id)
    rows = manifest_rows(stored_archive(done))
    assert not {row["source_url"] for row in rows} & adult_urls(imitation)
    assert {row["safe_search"] for row in rows} == {"moderate"}
    page = client.get(f"/jobs/{links.token_make(done.id, 'status')}/").content.decode()
    assert '<dt>Safe search</dt><dd id="safe-search">Moderate</dd>' in page

    off = make_job(requested_count=24, engine="bing", safe_search="off")
    assert job_run(off.id) == "done: 24"
    rows = manifest_rows(stored_archive(records.job_get(off.id)))
    assert adult_urls(imitation) <= {row["source_url"] for row in rows}
    assert {row["safe_search"] for row in rows} == {"off"}


@pytest.mark.browser
@ADULT
def test_fetch_images_takes_safe_search(tmp_path, imitation, capsys):
    out = tmp_path / "strict.zip"
    call_command(
        "fetch_images", "x", "--count", "24", "--out", str(out), "--safe-search", "strict", "--no-progress"
    )
    rows = manifest_rows(out.read_bytes())
    assert len(rows) == 18 and not {row["source_url"] for row in rows} & adult_urls(imitation)
    assert {row["safe_search"] for row in rows} == {"strict"}
    assert {q.get("adlt") for path, q in imitation.requests if path == "/images/search"} == {"strict"}


@pytest.mark.django_db(databases=["default", "cassandra"])
def test_the_form_stores_the_choice_and_defaults_to_moderate(cassandra_db, client):
    from django.core.cache import cache

    from jobs.web.forms import MESSAGES
    from tests.factories import good_post

    cache.clear()  # the rate limits
    for posted, stored in (({"safe_search": "strict"}, "strict"), ({}, "moderate")):
        response = client.post("/", good_post(**posted))
        assert response.status_code == 302
        token = response["Location"].rstrip("/").split("/")[-2]
        assert records.job_get(links.token_read(token, "status")).safe_search == stored
    refused = client.post("/", good_post(safe_search="none"))
    assert refused.status_code == 200 and MESSAGES["choice"] in refused.content.decode()
