"""A job keeps the filters it was asked with: the form stores them (the resubmit link
keeps them), the run passes them to the engine, and the status page, the mail and the
manifest say which an engine could not apply."""

from __future__ import annotations

import pytest

from downloader.choices import Filters
from tests.factories import manifest_rows


def shape_of(index: int) -> str:
    return ("square", "wide", "tall")[index % 3]


# The imitation's results: a third of each shape, every other one on a licence filter.
HONEST = pytest.mark.imitation(
    total=30, traits=lambda i: {"layout": shape_of(i), **({"license": "cc"} if i % 2 else {})}
)


@pytest.mark.browser
@HONEST
@pytest.mark.django_db(databases=["default", "cassandra"])
def test_a_job_keeps_its_filters_and_says_what_an_engine_could_not_apply(cassandra_db, imitation, client):
    from jobs.core.run import job_run
    from jobs.lib import links
    from jobs.mail.emails import email_build
    from jobs.store import records
    from jobs.store.events import job_events
    from tests.factories import make_job, stored_archive

    job = make_job(requested_count=5, engine="google", filters=Filters(layout="wide", license="public"))
    assert records.job_get(job.id).filters == Filters(layout="wide", license="public")
    assert job_run(job.id) == "done: 5"
    done = records.job_get(job.id)
    said = "Google could not apply: license (public domain)"
    assert done.filters_unapplied == said
    assert said in [event.message for event in job_events(done.id, limit=100)]  # the job log
    page = client.get(f"/jobs/{links.token_make(done.id, 'status')}/").content.decode()
    assert '<dd id="filters">License: Public domain; Layout: Wide</dd>' in page
    assert f'<dd id="filters-unapplied">{said}</dd>' in page
    mail = email_build(done, "ready")
    assert f"- {said}" in mail.body and f"<li>{said}</li>" in mail.alternatives[0][0]
    rows = manifest_rows(stored_archive(done))
    assert {row["filters"] for row in rows} == {"license=public;layout=wide"}
    assert all(int(row["width"]) > int(row["height"]) for row in rows)


@pytest.mark.django_db(databases=["default", "cassandra"])
def test_the_form_stores_the_filters_and_the_resubmit_link_keeps_them(cassandra_db, client):
    from django.core.cache import cache

    from jobs.lib import links
    from jobs.store import records
    from tests.factories import good_post

    cache.clear()  # the rate limits
    response = client.post("/", good_post(filter_layout="wide", filter_colour="red", filter_freshness="week"))
    assert response.status_code == 302
    job = records.job_get(links.token_read(response["Location"].rstrip("/").split("/")[-2], "status"))
    assert job.filters == Filters(colour="red", layout="wide", freshness="week")
    again = client.get(f"/jobs/{links.token_make(job.id, 'resubmit')}/resubmit").content.decode()
    assert '<option value="wide" selected>' in again and '<option value="red" selected>' in again
    plain = client.post("/", good_post())  # none asked: none stored
    assert (
        records.job_get(links.token_read(plain["Location"].rstrip("/").split("/")[-2], "status")).filters
        == Filters()
    )
    from jobs.web.forms import MESSAGES

    bad = client.post("/", good_post(filter_layout="round")).content.decode()
    assert MESSAGES["choice"] in bad
