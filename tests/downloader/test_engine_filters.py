"""Engine filters: one home for the choices; each engine asks for them
in its own words and says what it cannot apply; the imitations honour them; after the
download the layout and "animated" are checked on the pixels (``filter_mismatch``)."""

from __future__ import annotations

import zipfile

import pytest
from django.core.management import call_command
from PIL import Image

from downloader.choices import FILTER_VALUES, Filters, parse_filters
from downloader.config import engine_options_from_settings, gather_options_from_settings
from downloader.engines import get_engine
from downloader.engines.base import SearchRules, engine_filters
from downloader.engines.bing import FILTER_WORDS as BING_WORDS
from downloader.engines.bing import filter_param as bing_qft
from downloader.engines.duckduckgo import FILTER_WORDS as DDG_WORDS
from downloader.engines.duckduckgo import filter_param as ddg_f
from downloader.engines.google import FILTER_WORDS as GOOGLE_WORDS
from downloader.gather import Request, gather
from downloader.validation import ImageRules, layout_of, validate_file
from tests.factories import manifest_rows
from tests.imagehosts import animated, encoded

SHAPES = {"square": (300, 300), "wide": (400, 200), "tall": (200, 400)}


def shape_of(index: int) -> str:
    return ("square", "wide", "tall")[index % 3]


# --- the choices -------------------------------------------------------------------


def test_filters_parse_in_one_place():
    filters = parse_filters({"layout": "Wide", "colour": "grey", "license": "any", "type": ""})
    assert filters == Filters(layout="wide", colour="gray")
    assert filters.as_text() == "colour=gray;layout=wide"
    assert filters.describe() == "Colour: Gray; Layout: Wide"
    assert not Filters() and Filters().as_text() == ""
    with pytest.raises(ValueError, match="choose from square, wide, tall"):
        parse_filters({"layout": "round"})
    with pytest.raises(ValueError, match="unknown filters: mood"):
        parse_filters({"mood": "happy"})


def test_every_engine_names_every_value_it_has_and_says_what_it_has_not():
    for words in (BING_WORDS, DDG_WORDS):  # Bing and DuckDuckGo have every filter
        for kind, values in FILTER_VALUES.items():
            assert set(words[kind]) == set(values)
    _, unapplied = engine_filters(
        Filters(license="public", size="wallpaper", layout="wide", freshness="week"), GOOGLE_WORDS
    )
    assert unapplied == ["license (public domain)", "size (wallpaper)"]


def test_bing_and_duckduckgo_parameters():
    rules = SearchRules(filters=Filters(license="cc", colour="red", layout="tall", freshness="day"))
    assert bing_qft(rules) == (
        "+filterui:licenseType-Any+filterui:color2-FGcls_RED+filterui:aspect-tall+filterui:age-lt1440"
    )
    # A size filter replaces the custom minimum size; a type filter the gif-only hint.
    both = SearchRules(min_width=800, formats={"gif"}, filters=Filters(size="wallpaper", type="photo"))
    assert bing_qft(both) == "+filterui:imagesize-wallpaper+filterui:photo-photo"
    assert ddg_f(rules) == ("time:Day,size:,type:,layout:Tall,color:Red,license:Any", [])
    assert ddg_f(SearchRules(filters=Filters(type="animated", colour="bw")))[0] == (
        "time:,size:,type:gif,layout:,color:Monochrome,license:"
    )
    assert ddg_f(SearchRules())[0] == "time:,size:,type:,layout:,color:,license:"


# --- the pixels --------------------------------------------------------------------


def test_layout_from_the_pixel_size_with_a_ten_percent_tolerance():
    assert layout_of(1000, 1000) == layout_of(1000, 1090) == layout_of(1100, 1000) == "square"
    assert layout_of(1000, 1110) == "tall" and layout_of(1111, 1000) == "wide"


def write(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "gif"])
def test_validation_rejects_the_wrong_layout_as_filter_mismatch(tmp_path, fmt):
    wide = write(tmp_path, f"w.{fmt}", encoded(1, fmt, *SHAPES["wide"]))
    square = write(tmp_path, f"s.{fmt}", encoded(2, fmt, *SHAPES["square"]))
    assert validate_file(wide, ImageRules(layout="wide")).ok
    check = validate_file(square, ImageRules(layout="wide"))
    assert (check.ok, check.reason, check.width, check.height) == (False, "filter_mismatch", 300, 300)
    assert validate_file(square, ImageRules()).ok  # no filter: no check


@pytest.mark.parametrize("fmt", ["gif", "png", "webp"])
def test_animated_keeps_only_images_of_several_frames(tmp_path, fmt):
    moving = write(tmp_path, f"a.{fmt}", animated(3, fmt, 120, 90, 3))
    still = write(tmp_path, f"s.{fmt}", encoded(4, fmt, 120, 90))
    assert validate_file(moving, ImageRules(animated=True)).ok
    assert validate_file(still, ImageRules(animated=True)).reason == "filter_mismatch"
    # "Not animated" cannot be asked: a photo filter rejects nothing for its frames.
    assert validate_file(moving, Request(wanted=1, filters=Filters(type="photo")).image_rules).ok


# --- the engines, imitated -----------------------------------------------------------

HONEST = pytest.mark.imitation(
    total=30, traits=lambda i: {"layout": shape_of(i), **({"license": "cc"} if i % 2 else {})}
)


@pytest.mark.browser
@HONEST
@pytest.mark.parametrize("engine", ["bing", "duckduckgo", "google"])
def test_each_engine_gets_the_filters_and_the_results_change(driver, imitation, engine):
    events = []
    rules = SearchRules(filters=Filters(layout="wide", license="cc"))
    found = list(
        get_engine(engine, engine_options_from_settings()).search(
            driver, "x", wanted=100, rules=rules, on_event=lambda *e: events.append(e)
        )
    )
    expected = {imitation.image_url(i) for i in range(1, 31) if shape_of(i) == "wide" and i % 2}
    assert {c.url for c in found} == expected and len(expected) == 5
    assert (engine, {"layout": "wide", "license": "cc"}) in imitation.asked
    assert not [e for e in events if e[0] == "filters_unapplied"]
    assert {c.license for c in found} == {""}  # a filter is no license: nothing states one


@pytest.mark.browser
@HONEST
def test_an_engine_reports_the_filters_it_cannot_apply(driver, imitation):
    events = []
    rules = SearchRules(filters=Filters(layout="tall", license="public"))
    found = list(
        get_engine("google", engine_options_from_settings()).search(
            driver, "x", wanted=100, rules=rules, on_event=lambda *e: events.append(e)
        )
    )
    assert ("filters_unapplied", {"engine": "google", "filters": ["license (public domain)"]}) in events
    assert ("google", {"layout": "tall"}) in imitation.asked  # the rest still applied
    assert {c.url for c in found} == {imitation.image_url(i) for i in range(1, 31) if shape_of(i) == "tall"}


# The engine believes every result is wide (or animated); the pixels say otherwise for half.
LYING_WIDE = pytest.mark.imitation(total=20, traits=lambda i: {"layout": "wide"})


@pytest.mark.browser
@LYING_WIDE
def test_a_wide_search_keeps_only_wide_images_and_rejects_the_rest(tmp_path, image_hosts, imitation):
    host = image_hosts[0]
    imitation.image_url = lambda i: host.url(f"/img/{500 + i}.jpeg?w={400 if i % 2 else 300}&h=300")
    events = []
    result = gather(
        Request(wanted=20, query="x", engine="bing", filters=Filters(layout="wide")),
        tmp_path,
        on_event=lambda *e: events.append(e),
        options=gather_options_from_settings(),
    )
    assert len(result.kept) == 10 and all(image.width > image.height for image in result.kept)
    assert result.rejected == {"filter_mismatch": 10}
    assert result.found == len(result.kept) + sum(result.rejected.values()) + result.unused


@pytest.mark.browser
@pytest.mark.imitation(total=12, traits=lambda i: {"type": "animated"})
def test_an_animated_search_keeps_only_images_of_several_frames(tmp_path, image_hosts, imitation):
    host = image_hosts[0]
    imitation.image_url = lambda i: host.url(f"/{'anim' if i % 3 == 0 else 'img'}/{700 + i}.gif?w=120&h=90")
    result = gather(
        Request(wanted=12, query="x", engine="duckduckgo", filters=Filters(type="animated")),
        tmp_path,
        on_event=lambda *e: None,
        options=gather_options_from_settings(),
    )
    assert len(result.kept) == 4 and result.rejected == {"filter_mismatch": 8}
    for image in result.kept:
        with Image.open(image.path) as img:
            assert img.n_frames == 3
    assert ("duckduckgo", {"type": "animated"}) in imitation.asked


@pytest.mark.browser
@HONEST
def test_fetch_images_takes_the_filters(tmp_path, imitation):
    out = tmp_path / "wide.zip"
    call_command(
        "fetch_images", "x", "--count", "5", "--out", str(out), "--layout", "wide", "--license", "cc",
        "--engine", "bing", "--no-progress",
    )  # fmt: skip
    rows = manifest_rows(out.read_bytes())
    assert len(rows) == 5 and {row["filters"] for row in rows} == {"license=cc;layout=wide"}
    assert {row["license"] for row in rows} == {""}  # the filter is recorded as the filter, not a license
    assert ("bing", {"license": "cc", "layout": "wide"}) in imitation.asked
    with zipfile.ZipFile(out) as zf:
        credits = zf.read("CREDITS.html").decode()
    assert credits.count("filtered: Creative Commons") == 5 and "license:" not in credits


def test_fetch_images_refuses_an_unknown_filter(tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--colour 'mauve'"):
        call_command("fetch_images", "x", "--out", str(tmp_path / "a.zip"), "--colour", "mauve")


@pytest.mark.browser
@HONEST
def test_engine_all_passes_the_filters_to_every_engine(driver, imitation):
    from downloader.choices import ALL
    from downloader.engines import search
    from downloader.gather import describe_engine_event

    events = []
    rules = SearchRules(filters=Filters(layout="square", license="public"))
    found = list(
        search(
            ALL,
            driver,
            "x",
            100,
            rules,
            lambda kind, data: events.append((kind, data)),
            engine_options_from_settings(),
        )
    )
    assert {engine for engine, _ in imitation.asked} == {"bing", "duckduckgo", "google"}
    for engine, asked in imitation.asked:
        assert asked == (
            {"layout": "square"} if engine == "google" else {"layout": "square", "license": "public"}
        )
    squares = {imitation.image_url(i) for i in range(1, 31) if shape_of(i) == "square"}
    assert {c.url for c in found} == squares
    unapplied = [data for kind, data in events if kind == "filters_unapplied"]
    assert [describe_engine_event("filters_unapplied", data) for data in unapplied] == [
        "Google could not apply: license (public domain)"
    ]


@pytest.mark.browser
@LYING_WIDE
@pytest.mark.django_db(databases=["default", "cassandra"])
def test_a_job_whose_images_all_mismatch_fails_and_its_mail_says_what_was_not_applied(
    cassandra_db, image_hosts, imitation
):
    from jobs.core.run import job_run
    from jobs.mail.emails import email_build
    from jobs.store import records
    from tests.factories import make_job

    host = image_hosts[0]
    imitation.image_url = lambda i: host.url(f"/img/{900 + i}.jpeg?w=300&h=300")  # all square
    job = make_job(requested_count=5, engine="google", filters=Filters(layout="wide", license="public"))
    assert job_run(job.id) == "failed: nothing found"
    failed = records.job_get(job.id)
    assert "20 filter mismatch" in failed.error
    mail = email_build(failed, "failed")
    assert "- Google could not apply: license (public domain)" in mail.body
    assert "Filters asked for: License: Public domain; Layout: Wide." in mail.body
