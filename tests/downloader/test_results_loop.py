"""The results loop every engine shares, driven by plain functions (no browser)."""

from __future__ import annotations

import pytest

from downloader.engines.base import Candidate, EngineError, Tally, no_events, results_loop
from downloader.engines.duckduckgo import DuckDuckGoEngine


def fake_page(batches: list[list[str]]):
    """A results page that shows one more batch each time more is asked for."""
    shown = [list(batches[0])]
    asked = []

    def read_batch(start: int) -> list[str]:
        flat = [raw for batch in shown for raw in batch]
        return flat[start:]

    def load_more(count: int) -> bool:
        asked.append(count)
        if len(shown) == len(batches):
            return False
        shown.append(list(batches[len(shown)]))
        return True

    return read_batch, load_more, asked


def to_candidate(raw: object) -> Candidate | None:
    raw = str(raw)
    return None if raw.startswith("thumb") else Candidate(url=f"http://127.0.0.9/{raw}.jpg")


def search(batches: list[list[str]], wanted: int, *, emit=no_events, check=None) -> tuple[list, list[int]]:
    """Run the loop over a fake page: the candidates found and each count asked for more."""
    read_batch, load_more, asked = fake_page(batches)
    found = list(
        results_loop(
            engine="fake",
            wanted=wanted,
            emit=emit,
            read_batch=read_batch,
            to_candidate=to_candidate,
            load_more=load_more,
            check=check,
        )
    )
    return found, asked


def test_hands_on_each_result_once_and_skips_unusable_ones():
    events = []
    found, asked = search(
        [["a", "thumb1", "b"], ["b", "c", "thumb2"], ["d"]],
        10,
        emit=lambda kind, data: events.append((kind, data)),
    )
    # Each result read once; a URL shown twice is handed on twice (the collector, the
    # one place URLs are de-duplicated, drops the repeat).
    assert [c.url.rsplit("/", 1)[1] for c in found] == ["a.jpg", "b.jpg", "b.jpg", "c.jpg", "d.jpg"]
    assert asked == [3, 6, 7]  # each ask says how many results were already read
    assert events[-1] == ("results_end", {"engine": "fake", "found": 5})
    assert [data["pages"] for kind, data in events if kind == "scrolled"] == [1, 2]


def test_stops_as_soon_as_enough_without_loading_more():
    found, asked = search([["a", "b", "c"], ["d"]], 2)
    assert len(found) == 2
    assert asked == []


def test_check_sees_the_tally_and_may_stop_the_search():
    tallies: list[Tally] = []

    def check(tally: Tally) -> None:
        tallies.append(Tally(**vars(tally)))
        if not tally.yielded and tally.unusable >= tally.read:
            raise EngineError("thumbnails_only")

    with pytest.raises(EngineError) as caught:
        search([["thumb1", "thumb2"], ["a"]], 5, check=check)
    assert caught.value.reason == "thumbnails_only"
    assert tallies == [Tally(read=2, unusable=2, yielded=0, pages=0)]


@pytest.mark.parametrize(
    "width,expected",
    [(640, 640), ("480", 480), ("wide", None), (-1, None), (True, None), ([1], None), (10**9, None)],
)
def test_duckduckgo_dimensions_claimed_by_the_engine_are_checked(width, expected):
    item = {"image": "http://127.0.0.9/x.jpg", "url": "javascript:alert(1)", "width": width, "height": 10}
    candidate = DuckDuckGoEngine()._candidate(item)
    assert candidate is not None
    assert candidate.width == expected
    assert candidate.page_url == ""  # only http(s) page links are kept
