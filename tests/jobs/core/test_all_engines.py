"""Engine ``all``: every engine in turn, each in its own window, repeats dropped by the
collector alone."""

from __future__ import annotations

import pytest

from downloader.choices import ALL, ENGINE_OPTIONS
from downloader.config import engine_options_from_settings
from downloader.engines import search
from downloader.engines.base import SearchRules
from downloader.gather import describe_engine_event
from jobs.core.run import job_run
from jobs.store import records
from jobs.store.events import job_events
from tests.factories import make_job

pytestmark = pytest.mark.browser
# The engines overlap in part: Bing has images 1-30, DuckDuckGo 11-40, Google 21-50.
OVERLAPPING = pytest.mark.imitation(total=30, offsets={"duckduckgo": 10, "google": 20})


def test_all_is_a_choice_of_the_form_and_the_command():
    from jobs.web.forms import JobForm

    assert ALL in ENGINE_OPTIONS
    assert ALL in dict(JobForm.base_fields["engine"].choices)


@OVERLAPPING
def test_all_takes_results_from_every_engine_in_turn(driver, imitation):
    events = []
    found = list(
        search(
            ALL,
            driver,
            "red fox",
            90,
            SearchRules(),
            lambda kind, data: events.append((kind, data)),
            engine_options_from_settings(),
        )
    )
    engines = [c.engine for c in found]
    assert engines[:6] == ["bing", "duckduckgo", "google"] * 2
    assert len(found) == 90 and len({c.url for c in found}) == 50  # repeats handed on, once each
    assert {c.url for c in found if c.engine == "google"} == {imitation.image_url(i) for i in range(21, 51)}
    assert [d["engine"] for k, d in events if k == "engine_started"] == ["bing", "duckduckgo", "google"]
    assert len(driver.window_handles) == 1  # the engines' windows are closed again


@pytest.mark.imitation(total=30, modes={"bing": "captcha"})
def test_an_engine_that_fails_leaves_the_round_and_the_others_go_on(driver, imitation):
    events = []
    found = list(
        search(
            ALL,
            driver,
            "owl",
            20,
            SearchRules(),
            lambda kind, data: events.append((kind, data)),
            engine_options_from_settings(),
        )
    )
    assert len(found) == 20 and {c.engine for c in found} == {"duckduckgo", "google"}
    failed = [d for k, d in events if k == "engine_failed"]
    assert failed[0]["engine"] == "bing" and failed[0]["reason"] == "captcha" and failed[0]["together"]


@OVERLAPPING
@pytest.mark.django_db(databases=["default", "cassandra"])
def test_an_all_job_delivers_more_variety_than_one_engine_without_repeats(cassandra_db, imitation):
    job = make_job(requested_count=50, engine=ALL)
    assert job_run(job.id) == "done: 50"
    done = records.job_get(job.id)
    assert done.engine_used == "bing,duckduckgo,google"
    kept = {image.source_url for image in records.job_images(job.id)}
    assert kept == {imitation.image_url(i) for i in range(1, 51)}  # more than any one engine has
    assert done.found_count == 50 and done.rejected_count == 0  # repeats were never fetched
    started = [e.data["engine"] for e in job_events(job.id) if e.kind == "engine_started"]
    assert started == ["bing", "duckduckgo", "google"]


def test_events_of_all_say_the_other_engines_go_on():
    text = describe_engine_event("engine_failed", {"engine": "bing", "reason": "captcha", "together": True})
    assert text == "bing failed (captcha); the other engines go on"
    assert "trying the next engine" in describe_engine_event("engine_exhausted", {"engine": "bing"})
