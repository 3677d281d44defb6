"""Near-duplicate search by bands gives the same answers as measuring every pair."""

from __future__ import annotations

import random

import pytest
from PIL import Image

from downloader.dedupe import DuplicateFilter, NearIndex, difference_hash


def flip(value: int, count: int, rng: random.Random) -> int:
    for bit in rng.sample(range(64), count):
        value ^= 1 << bit
    return value


@pytest.mark.parametrize("bits", [0, 1, 4, 6, 13, 63])
def test_bands_answer_as_a_full_scan_would(bits):
    rng = random.Random(bits)
    index, kept, answers = NearIndex(bits), [], set()
    for _ in range(600):
        if kept and rng.random() < 0.5:  # close to something kept: at, just over or under the limit
            value = flip(rng.choice(kept), min(64, max(0, bits + rng.choice((-1, 0, 1)))), rng)
        else:
            value = rng.getrandbits(64)
        expected = any((value ^ seen).bit_count() <= bits for seen in kept)
        assert index.near(value) == expected, (bits, hex(value))
        answers.add(expected)
        if not expected:
            index.add(value)
            kept.append(value)
    assert answers == {True, False}  # both outcomes were put to the test


def test_limits_outside_a_64_bit_hash_are_refused():
    with pytest.raises(ValueError):
        NearIndex(64)


def test_filter_tells_exact_from_near_and_remembers_only_what_it_keeps():
    base = Image.radial_gradient("L").convert("RGB").resize((300, 200))
    near = base.resize((240, 160))
    other = Image.linear_gradient("L").convert("RGB").resize((300, 200))
    dupes = DuplicateFilter()
    assert dupes.check_and_add("a" * 64, difference_hash(base)) is None
    assert dupes.check_and_add("a" * 64, difference_hash(other)) == "duplicate_exact"
    assert dupes.check_and_add("b" * 64, difference_hash(near)) == "duplicate_near"
    assert not dupes.seen_sha("b" * 64)  # a rejected image is not remembered
    assert dupes.check_and_add("c" * 64, difference_hash(other)) is None
    assert dupes.seen_sha("c" * 64)
