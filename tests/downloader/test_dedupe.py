"""Near duplicates: every distinct picture kept, re-encodes, resizes, format changes
and small crops caught, and the better copy kept whatever order they arrive in."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
from PIL import Image

from bench.corpus import VARIANT_KINDS, encode, photo, variant
from downloader.collect import Candidate, collect_images
from downloader.dedupe import DuplicateFilter, signature, thumbnail
from downloader.http import Fetcher, FetchPolicy
from downloader.validation import ImageRules, validate_file
from tests.imagehosts import picture

ORIGINALS = 60


def test_filter_tells_exact_from_near_and_remembers_only_what_it_keeps():
    base = Image.radial_gradient("L").convert("RGB").resize((300, 200))
    near = base.resize((240, 160))
    other = Image.linear_gradient("L").convert("RGB").resize((300, 200))
    dupes = DuplicateFilter()
    assert dupes.check_and_add("a" * 64, signature(base)) is None
    assert dupes.check_and_add("a" * 64, signature(other)) == "duplicate_exact"
    assert dupes.check_and_add("b" * 64, signature(near)) == "duplicate_near"
    assert not dupes.seen_sha("b" * 64)  # a rejected image is not remembered
    assert dupes.check_and_add("c" * 64, signature(other)) is None
    assert dupes.seen_sha("c" * 64)


def test_signatures_from_before_are_tolerated():
    assert thumbnail("") is None and thumbnail("0123456789abcdef") is None
    dupes = DuplicateFilter()
    assert dupes.check_and_add("a" * 64, "0123456789abcdef") is None  # exact check only
    assert dupes.check_and_add("a" * 64, "0123456789abcdef") == "duplicate_exact"


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> list[tuple[int, str, str, str, tuple]]:
    """(group, kind, sha256, signature, rank) for ORIGINALS photo-like pictures and
    the simple corpus's kind, each with a re-encode, a resize, a format change and a
    crop, all through validate_file."""
    import hashlib

    folder = tmp_path_factory.mktemp("generated")
    rules = ImageRules(min_side=0)
    copies = []
    for group in range(ORIGINALS):
        rng = random.Random(group)
        width, height = rng.choice([(480, 360), (400, 300), (360, 480), (512, 288)])
        img = (
            photo(9_000 + group, width, height) if group % 3 else picture(9_000 + group, width, height, True)
        )
        fmt = rng.choice(["jpeg", "jpeg", "png", "webp"])
        bodies = [("original", encode(img, fmt, rng.randint(75, 92)))]
        bodies += [(kind, variant(img, kind, rng)[0]) for kind in VARIANT_KINDS]
        for kind, body in bodies:
            path = folder / f"{group}-{kind}"
            path.write_bytes(body)
            check = validate_file(path, rules)
            assert check.ok, (group, kind, check.reason)
            copies.append(
                (
                    group,
                    kind,
                    hashlib.sha256(body).hexdigest(),
                    check.phash,
                    (check.width * check.height, len(body)),
                )
            )
    return copies


def test_no_distinct_picture_is_merged_and_near_duplicates_are_caught(generated):
    originals = {group: (sha, sig) for group, kind, sha, sig, _ in generated if kind == "original"}
    dupes = DuplicateFilter()
    false_merges = sum(dupes.check_and_add(sha, sig) is not None for sha, sig in originals.values())
    caught = total = 0
    for group, kind, sha, sig, _ in generated:
        if kind == "original":
            continue
        pair = DuplicateFilter()
        pair.check_and_add(*originals[group])
        caught += pair.check_and_add(sha, sig) is not None  # a variant may repeat the bytes
        total += 1
    assert false_merges == 0
    assert caught / total >= 0.98, f"caught {caught} of {total}"


def test_the_better_copy_survives_whatever_the_order(generated):
    best = {}
    for group, _, sha, _, rank in generated:
        best[group] = max(best.get(group, (0, 0, "")), (*rank, sha))
    for order in range(3):
        shuffled = generated[:]
        random.Random(order).shuffle(shuffled)
        dupes, kept = DuplicateFilter(), set()
        for _, _, sha, sig, rank in shuffled:
            verdict = dupes.offer(sha, sig, rank=rank, item=sha)
            if verdict.reason:
                continue
            kept.discard(verdict.replaces)
            kept.add(sha)
        assert kept == {sha for *_, sha in best.values()}, order


def _collect(urls: list[str], workdir: Path):
    policy = FetchPolicy(allow_private=False, extra_allowed=("127.0.0.0/8",), total_timeout=10.0)
    fetcher = Fetcher(policy, concurrency=1, per_host=1)  # fetched one at a time, in the list's order
    events = []
    try:
        result = collect_images(
            [Candidate(url) for url in urls],
            wanted=len(urls),
            workdir=workdir,
            rules=ImageRules(),
            fetcher=fetcher,
            progress=lambda kind, **info: events.append(kind),
        )
    finally:
        fetcher.close()
    return result, events


@pytest.mark.parametrize("larger_first", [True, False])
def test_the_collector_keeps_the_larger_copy_in_either_order(tmp_path, larger_first, image_host):
    small = image_host.url("/same/77.jpeg?w=320&h=240&q=80")  # the 640x480 picture, resized
    large = image_host.url("/img/77.jpeg?w=640&h=480")
    other = image_host.url("/img/78.jpeg?w=400&h=300")
    urls = [large, other, small] if larger_first else [small, other, large]
    result, events = _collect(urls, tmp_path)
    # Files are fetched in the list's order but checked by several threads, so which
    # copy is settled first depends on timing: whichever it is, the larger one stays
    # (replacing the smaller when that came first) and the smaller is the near duplicate.
    assert sorted((k.source_url, k.width) for k in result.kept) == sorted([(large, 640), (other, 400)])
    assert result.rejected == {"duplicate_near": 1}
    assert result.found == 3 and result.unused == 0
    assert events.count("replaced") <= 1
    files = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    assert files == sorted(k.path.name for k in result.kept)  # the replaced copy's file is gone


def test_a_tiny_thumbnail_round_trips():
    img = Image.open(io.BytesIO(encode(photo(5, 300, 200), "png")))
    thumb = thumbnail(signature(img))
    assert thumb is not None and thumb.size == (16, 16)
