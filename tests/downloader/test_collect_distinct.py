"""The collector is the one place candidate URLs are de-duplicated and counted as found:
repeats from one engine, from the next engine in the fallback, from a URL list, or of
an image an earlier attempt kept are never fetched twice nor counted twice."""

from __future__ import annotations

from downloader.collect import Candidate, KeptImage, collect_images
from downloader.http import Fetcher, FetchPolicy

POLICY = FetchPolicy(allow_private=False, extra_allowed=("127.0.0.0/8",), total_timeout=5.0)


def test_repeated_urls_are_fetched_and_counted_once(image_host, tmp_path):
    urls = [image_host.url(f"/img/{700 + n}.jpeg?w=200&h=150") for n in range(6)]
    # One engine shows a result twice; the next engine offers the first four again.
    stream = [*urls[:3], urls[1], *urls[3:], *urls[:4]]
    earlier = tmp_path / "earlier.jpeg"
    earlier.write_bytes(b"kept by an earlier attempt")
    resumed = KeptImage(
        earlier, image_host.url("/img/699.jpeg?w=200&h=150"), "", 200, 150, "jpeg", 26, "0" * 64
    )
    fetcher = Fetcher(POLICY, concurrency=4, per_host=4)
    try:
        result = collect_images(
            (Candidate(url) for url in [*stream, resumed.source_url]),
            wanted=20,
            workdir=tmp_path / "work",
            fetcher=fetcher,
            already_kept=[resumed],
        )
    finally:
        fetcher.close()
    assert result.found == 6  # the distinct new URLs, nothing else
    assert len(result.kept) == 7 and result.resumed == 1
    assert sorted(image.source_url for image in result.kept[1:]) == sorted(urls)
    assert result.found == len(result.kept) - result.resumed + sum(result.rejected.values()) + result.unused
    assert all(image_host.hits[f"/img/{700 + n}.jpeg"] == 1 for n in range(6)), image_host.hits
    assert image_host.hits["/img/699.jpeg"] == 0  # the resumed image is not fetched again


def test_images_delivered_before_are_skipped_exact_or_near_and_more_are_drawn(image_host, tmp_path, settings):
    """A recurring series' run: copies of what it delivered before (the same bytes, or
    the same picture at another size and format) are rejected as already_delivered,
    and the collector goes on to new ones until it has enough."""
    import hashlib
    import io

    from PIL import Image

    from downloader.dedupe import SIGNATURE_METHOD, signature
    from downloader.gather import delivered_filter
    from tests.imagehosts import encoded

    before = encoded(800, "jpeg", 640, 480, resized=True)  # picture 800 as delivered last time
    with Image.open(io.BytesIO(before)) as img:
        delivered = delivered_filter([(hashlib.sha256(before).hexdigest(), signature(img), SIGNATURE_METHOD)])
    stream = [
        image_host.url("/same/800.jpeg?w=640&h=480"),  # the very same file
        image_host.url("/same/800.png?w=480&h=360"),  # the same picture, smaller, as PNG
        *(image_host.url(f"/img/{801 + n}.jpeg?w=320&h=240") for n in range(5)),
    ]
    fetcher = Fetcher(POLICY, concurrency=1, per_host=1)
    try:
        result = collect_images(
            (Candidate(url) for url in stream),
            wanted=3,
            workdir=tmp_path / "work",
            fetcher=fetcher,
            delivered=delivered,
        )
    finally:
        fetcher.close()
    assert result.rejected == {"already_delivered": 2}
    kept = [image.source_url for image in result.kept]
    # Three new pictures (downloads may finish out of list order), none of the copies.
    assert len(kept) == 3 and set(kept) <= set(stream[2:])
