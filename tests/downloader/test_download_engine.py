"""The download engine against loopback image hosts: good files kept, every bad one
rejected with its reason, nothing hanging past its timeout, no private address reached."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import time
import zipfile
from pathlib import Path

import pytest
from django.core.files.storage import FileSystemStorage
from PIL import Image

from downloader import validation
from downloader.archive import write_archive
from downloader.collect import Candidate, collect_images
from downloader.http import Fetcher, FetchPolicy
from downloader.validation import ImageRules, validate_file

FAST = dict(connect_timeout=1.0, read_timeout=1.5, total_timeout=3.0, max_bytes=2_000_000, backoff_base=0.1)
LOOPBACK_ONLY = FetchPolicy(allow_private=False, extra_allowed=("127.0.0.0/8",), **FAST)
pytestmark = pytest.mark.image_hosts(latency=0.05)


@pytest.fixture
def fetcher():
    fetcher = Fetcher(LOOPBACK_ONLY, concurrency=8, per_host=4)
    yield fetcher
    fetcher.close()


def _collect(urls, tmp_path, fetcher, wanted=None, rules=None, **kw):
    events = []
    result = collect_images(
        (Candidate(u, page_url="http://example.org/page") for u in urls),
        wanted=wanted or len(urls),
        workdir=tmp_path,
        rules=rules or ImageRules(),
        fetcher=fetcher,
        progress=lambda kind, **info: events.append((kind, info)),
        **kw,
    )
    return result, events


def test_good_images_from_several_hosts_are_kept_and_valid(image_hosts, tmp_path, fetcher):
    urls = [
        image_hosts[n % 3].url(f"/img/{n}.{fmt}?w=400&h=300")
        for n, fmt in enumerate(["jpeg", "png", "webp", "gif"] * 3)
    ]
    result, events = _collect(urls, tmp_path, fetcher)
    assert len(result.kept) == 12 and result.rejected == {}
    assert sum(1 for kind, _ in events if kind == "kept") == 12
    assert {k.format for k in result.kept} == {"jpeg", "png", "webp", "gif"}
    for image in result.kept:
        data = image.path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == image.sha256
        assert (image.width, image.height) == (400, 300)
        assert len(data) == image.bytes


@pytest.mark.parametrize(
    "path,reason",
    [
        ("/html.jpg", "html"),
        ("/svg.png", "svg"),
        ("/truncated.jpg", "truncated"),
        ("/bomb.png", "too_many_pixels"),  # past Pillow's own hard limit
        ("/bomb.png?w=9000&h=9000", "too_many_pixels"),  # 81 MP: under Pillow's limit, over the job's 50 MP
        ("/garbage.jpg", "not_an_image"),
        ("/endless.jpg", "too_large"),
        ("/trickle.jpg", "timeout"),
        ("/slow-headers.jpg", "timeout"),
        ("/slow-404", "http_404"),
        ("/slow-redirect", "timeout"),
        ("/loop.jpg", "too_many_redirects"),
        ("/to-private.jpg", "private_address"),
        ("/status/404", "http_404"),
        ("/status/500", "http_5xx"),
        ("/status/429", "http_429"),
        ("/img/5.jpeg?w=100&h=80", "too_small"),
        ("/img/6.gif?w=500&h=500", "format_not_allowed"),
    ],
)
def test_each_bad_response_is_rejected_with_its_reason_in_bounded_time(
    image_hosts, tmp_path, fetcher, path, reason
):
    rules = ImageRules(formats={"jpeg", "png"}, min_width=200, min_height=200, max_pixels=50_000_000)
    started = time.monotonic()
    result, events = _collect([image_hosts[0].url(path)], tmp_path, fetcher, rules=rules)
    elapsed = time.monotonic() - started
    assert result.kept == []
    assert result.rejected == {reason: 1}
    assert ("rejected", {"reason": reason, "url": image_hosts[0].url(path)}) in events
    # Nothing hangs past its timeout: the slow responses would last 1,000 s; the slack
    # is for a loaded machine, where the check itself can wait seconds for a core.
    assert elapsed < FAST["total_timeout"] + 12
    assert list(tmp_path.glob("dl-*")) == []  # no partial file left behind


def test_5xx_is_retried_then_given_up(image_hosts, tmp_path, fetcher):
    _collect([image_hosts[1].url("/status/503")], tmp_path, fetcher)
    assert image_hosts[1].hits["/status/503"] == 1 + LOOPBACK_ONLY.max_retries


def test_429_retry_after_is_honoured_and_then_succeeds(image_hosts, tmp_path, fetcher):
    url = image_hosts[2].url("/flaky/429/1/img/31.jpeg?w=300&h=300")
    started = time.monotonic()
    result, _ = _collect([url], tmp_path, fetcher)
    assert len(result.kept) == 1
    assert image_hosts[2].hits["/flaky/429/1/img/31.jpeg"] == 2
    assert time.monotonic() - started >= 0.9  # waited the 1 s the server asked for


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5/a.jpg",
        "http://192.168.1.1/a.jpg",
        "http://169.254.169.254/latest/meta-data",
        "http://172.16.0.1/a.jpg",
        "http://[fd00::1]/a.jpg",
        "http://0.0.0.0/a.jpg",
        "http://127.0.0.1/a.jpg",
    ],
)
def test_private_addresses_are_refused_before_any_connection(url, tmp_path):
    fetcher = Fetcher(FetchPolicy(allow_private=False, **FAST), concurrency=2, per_host=1)
    result = fetcher.fetch(url, tmp_path / "x")
    assert (result.ok, result.reason) == (False, "private_address")
    assert fetcher.connections_opened == 0


def test_a_name_resolving_to_a_private_address_is_refused_before_connecting(tmp_path):
    resolved = []

    def resolver(host, port):
        resolved.append(host)
        return ["10.1.2.3"]

    fetcher = Fetcher(FetchPolicy(allow_private=False, **FAST), resolver=resolver)
    result = fetcher.fetch("https://images.example.com/cat.jpg", tmp_path / "x")
    assert result.reason == "private_address"
    assert resolved == ["images.example.com"]
    assert fetcher.connections_opened == 0


def test_a_redirect_to_a_private_address_is_refused_at_that_hop(image_hosts, tmp_path, fetcher):
    result = fetcher.fetch(image_hosts[0].url("/to-private.jpg"), tmp_path / "x")
    assert result.reason == "private_address"
    assert fetcher.connections_opened == 1  # only the loopback host was contacted


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/a.jpg", "file:///etc/passwd", "javascript:alert(1)"])
def test_only_http_and_https(url, tmp_path, fetcher):
    assert fetcher.fetch(url, tmp_path / "x").reason == "bad_scheme"


def test_exact_and_near_duplicates_are_dropped(image_hosts, tmp_path, fetcher):
    urls = [
        image_hosts[0].url("/img/40.jpeg?w=640&h=480"),
        image_hosts[1].url("/img/40.jpeg?w=640&h=480"),  # the same bytes from another host
        image_hosts[0].url("/same/40.jpeg?w=320&h=240&q=60"),  # resized and re-encoded
        image_hosts[0].url("/same/40.png?w=500&h=375"),  # another format
        image_hosts[2].url("/img/41.jpeg?w=640&h=480"),  # a different picture
    ]
    # One at a time, so which copy counts as the original is fixed.
    result, _ = _collect(urls, tmp_path, Fetcher(LOOPBACK_ONLY, concurrency=1, per_host=1), wanted=5)
    assert len(result.kept) == 2
    assert result.rejected == {"duplicate_exact": 1, "duplicate_near": 2}


def test_over_fetch_stops_as_soon_as_enough_are_kept(image_hosts, tmp_path, fetcher):
    bad = [image_hosts[n % 3].url(f"/status/404?n={n}") for n in range(6)]
    good = [image_hosts[n % 3].url(f"/img/{100 + n}.jpeg?w=300&h=300") for n in range(60)]
    drawn = []

    def lazy():
        for url in bad + good:
            drawn.append(url)
            yield Candidate(url)

    result = collect_images(lazy(), wanted=10, workdir=tmp_path, fetcher=fetcher)
    assert len(result.kept) == 10
    assert result.rejected == {"http_404": 6}
    assert result.found <= len(drawn)  # some may still sit in the read-ahead buffer
    assert result.found == len(result.kept) + 6 + result.unused  # every candidate accounted for
    # Never far beyond what is needed: the in-flight window, the queue of candidates
    # waiting for a host slot and the read-ahead buffer on top.
    lookahead = max(8, fetcher.per_host * 2)
    assert len(drawn) <= 6 + 10 + fetcher.per_host + lookahead + max(lookahead, fetcher.concurrency) + 1
    fetched = sum(sum(v for k, v in h.hits.items() if k.startswith("/img/1")) for h in image_hosts)
    assert fetched < 60


def test_requested_count_is_kept_exactly_even_when_candidates_abound(image_hosts, tmp_path, fetcher):
    urls = [image_hosts[n % 3].url(f"/img/{200 + n}.png?w=200&h=200") for n in range(40)]
    result, _ = _collect(urls, tmp_path, fetcher, wanted=25)
    assert len(result.kept) == 25
    assert result.found == 25 + sum(result.rejected.values()) + result.unused
    assert len({k.sha256 for k in result.kept}) == 25
    assert sorted(p.name for p in tmp_path.glob("dl-*")) == sorted(k.path.name for k in result.kept)


def test_should_stop_ends_the_run(image_hosts, tmp_path, fetcher):
    urls = [image_hosts[0].url(f"/img/{300 + n}.jpeg?w=200&h=200") for n in range(30)]
    calls = []

    def stop_after_three():
        calls.append(1)
        return len(calls) > 3

    result, _ = _collect(urls, tmp_path, fetcher, wanted=30, should_stop=stop_after_three)
    assert result.stopped is True
    assert len(result.kept) < 30


def test_already_kept_images_count_and_are_not_fetched_again(image_hosts, tmp_path, fetcher):
    first, _ = _collect(
        [image_hosts[1].url(f"/img/{400 + n}.jpeg?w=200&h=200") for n in range(3)], tmp_path, fetcher
    )
    before = dict(image_hosts[1].hits)
    urls = [image_hosts[1].url(f"/img/{400 + n}.jpeg?w=200&h=200") for n in range(6)]
    result, _ = _collect(urls, tmp_path, fetcher, wanted=6, already_kept=first.kept)
    assert len(result.kept) == 6
    assert (result.resumed, result.found, result.unused) == (3, 3, 0)  # the three new URLs only
    for n in range(3):
        assert image_hosts[1].hits[f"/img/{400 + n}.jpeg"] == before[f"/img/{400 + n}.jpeg"]


def test_conversion_to_one_output_format(image_hosts, tmp_path, fetcher):
    rules = ImageRules(output_format="jpeg")
    result, _ = _collect([image_hosts[0].url("/img/500.png?w=300&h=200")], tmp_path, fetcher, rules=rules)
    (image,) = result.kept
    assert image.format == "jpeg" and image.path.suffix == ".jpg"
    with Image.open(image.path) as img:
        assert img.format == "JPEG"
    assert validate_file(image.path, ImageRules()).ok
    data = image.path.read_bytes()
    assert (image.bytes, image.sha256) == (len(data), hashlib.sha256(data).hexdigest())  # of the new file


@pytest.mark.parametrize(
    "mode,target", [("CMYK", "png"), ("CMYK", "gif"), ("RGBA", "jpeg"), ("I;16", "webp")]
)
def test_conversion_handles_every_colour_mode(tmp_path, mode, target):
    from downloader.validation import convert_file

    source = tmp_path / "in.tif"
    picture = Image.new("RGBA", (40, 30), (200, 30, 30, 0)) if mode == "RGBA" else Image.new(mode, (40, 30))
    picture.save(source, "TIFF" if mode != "RGBA" else "PNG")
    out = convert_file(source, target)
    with Image.open(out) as img:
        img.load()
        assert img.format == {"png": "PNG", "gif": "GIF", "jpeg": "JPEG", "webp": "WEBP"}[target]
        if mode == "RGBA":  # transparent pixels become white, not the colour they hid
            assert img.convert("RGB").getpixel((5, 5)) == (255, 255, 255)


def test_a_file_that_cannot_be_converted_is_rejected_not_fatal(image_hosts, tmp_path, fetcher):
    # WebP stores at most 16383 pixels a side: this valid PNG cannot become a WebP.
    urls = [image_hosts[0].url("/img/501.png?w=17000&h=20"), image_hosts[1].url("/img/502.jpeg?w=300&h=200")]
    # 20 px is under the junk floor: this run lowers it, as --min-size would.
    result, _ = _collect(urls, tmp_path, fetcher, rules=ImageRules(output_format="webp", min_side=0))
    assert [k.format for k in result.kept] == ["webp"]
    assert result.rejected == {"conversion_failed": 1}
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [result.kept[0].path.name]


def test_archive_names_entries_after_the_query_and_stores_bytes_untouched(image_hosts, tmp_path, fetcher):
    urls = [
        image_hosts[0].url(f"/img/{600 + n}.{fmt}?w=300&h=200")
        for n, fmt in enumerate(["jpeg", "png", "webp"])
    ]
    serial = Fetcher(LOOPBACK_ONLY, concurrency=1, per_host=1)  # kept in arrival order
    result, _ = _collect(urls, tmp_path / "work", serial)
    storage = FileSystemStorage(location=str(tmp_path / "media"))
    archive = write_archive(result.kept, name_stem="Red Fox!", path="archives/x.zip", storage=storage)
    assert archive.count == 3
    zip_path = Path(storage.path(archive.path))
    assert zip_path.stat().st_size == archive.bytes
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
        assert names[:3] == ["red-fox_0001.jpg", "red-fox_0002.png", "red-fox_0003.webp"]
        assert names[3] == "manifest.csv"
        assert all(info.compress_type == zipfile.ZIP_STORED for info in zf.infolist())
        rows = list(csv.DictReader(io.StringIO(zf.read("manifest.csv").decode())))
        for name, row, image in zip(names, rows, result.kept, strict=False):
            assert row["file"] == name
            assert row["source_url"] == image.source_url
            assert zf.read(name) == image.path.read_bytes()
            assert row["sha256"] == hashlib.sha256(zf.read(name)).hexdigest()
            assert (row["width"], row["height"]) == ("300", "200")


@pytest.mark.parametrize("per_host,concurrency,expected_peak", [(3, 8, 3), (10, 2, 2)])
def test_requests_in_flight_stay_within_the_per_host_and_global_limits(
    tmp_path, start_image_host, per_host, concurrency, expected_peak
):
    host = start_image_host(latency=0.15)
    fetcher = Fetcher(LOOPBACK_ONLY, concurrency=concurrency, per_host=per_host)
    try:
        urls = [host.url(f"/img/{900 + n}.jpeg?w=200&h=200") for n in range(24)]
        result, _ = _collect(urls, tmp_path, fetcher)
    finally:
        fetcher.close()
    assert len(result.kept) == 24
    assert host.peak_active == expected_peak  # the whole allowance is used, never more


def test_redirects_to_another_host_count_against_that_hosts_limit(tmp_path, start_image_host):
    origins = [start_image_host() for _ in range(3)]
    target = start_image_host(latency=0.15)
    fetcher = Fetcher(LOOPBACK_ONLY, concurrency=12, per_host=2)
    try:
        urls = [
            origins[n % 3].url(f"/goto?u={target.url(f'/img/{950 + n}.jpeg%3Fw%3D200%26h%3D200')}")
            for n in range(18)
        ]
        result, _ = _collect(urls, tmp_path, fetcher)
    finally:
        fetcher.close()
    assert len(result.kept) == 18
    assert target.peak_active == 2  # three origins, yet never more than 2 at the target


def test_decodes_at_once_stay_within_the_cores_while_every_fetch_slot_is_used(
    tmp_path, start_image_host, monkeypatch
):
    # A budget of this test's own: its peak is the most pixels being decoded at once.
    monkeypatch.setattr(validation, "_budget", None)
    host = start_image_host(latency=0.05)
    fetcher = Fetcher(LOOPBACK_ONLY, concurrency=8, per_host=8)
    try:
        urls = [host.url(f"/img/{700 + n}.png?w=1200&h=900") for n in range(24)]
        result, _ = _collect(urls, tmp_path, fetcher)
    finally:
        fetcher.close()
    assert len(result.kept) == 24
    assert host.peak_active == 8  # files waiting for a decoder do not hold a fetch slot
    decoders = max(2, os.cpu_count() or 2)
    assert 0 < validation.decode_budget().peak <= decoders * 1200 * 900


def test_previews_are_made_only_when_asked(image_hosts, tmp_path, fetcher):
    urls = [
        image_hosts[n % 3].url(f"/img/{n}.{fmt}?w=400&h=300") for n, fmt in enumerate(["jpeg", "png", "webp"])
    ]
    with_previews, _ = _collect(urls, tmp_path / "a", fetcher)
    assert all(Image.open(io.BytesIO(image.preview)).size == (160, 120) for image in with_previews.kept)
    without, _ = _collect(urls, tmp_path / "b", fetcher, previews=False)
    assert len(without.kept) == 3 and all(image.preview == b"" for image in without.kept)
