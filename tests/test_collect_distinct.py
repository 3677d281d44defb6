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
