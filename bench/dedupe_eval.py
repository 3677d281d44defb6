"""The near-duplicate rule on a generated set: false merges and catch rate.

Takes ``sample`` originals of a corpus and makes one re-encode (JPEG quality 50-95),
one resize (50-200%), one format change (PNG, WebP or GIF) and one crop (up to 5% of
each side) of each (bench/corpus.py ``variant``; cached in bench/out/). Every file goes
through ``validate_file`` for its signature, then:

- pairs: each variant offered after its own original to a fresh filter (catch rate
  per kind);
- streams: originals and variants together, in three shuffled orders, through one
  filter as the collector uses it (ranked by pixels, then bytes). A group left with
  no copy is a distinct picture lost to a false merge; a group left with two or more
  is a missed near duplicate; the survivor should be the same copy in every order.

    .venv/bin/python -m bench.dedupe_eval [--corpus realistic] [--sample 200]
"""

from __future__ import annotations

import argparse
import io
import os
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from bench.corpus import CACHE, VARIANT_KINDS, realistic_corpus, variant


@dataclass
class Copy:
    group: int
    kind: str  # "original" or a variant kind
    path: Path
    sha256: str = ""
    phash: str = ""
    rank: tuple = ()


@dataclass
class Evaluation:
    label: str
    groups: int = 0
    variants: int = 0
    pair_caught: Counter = field(default_factory=Counter)
    pair_total: Counter = field(default_factory=Counter)
    pair_false: int = 0  # an original judged a near duplicate of another group's original
    lost: list[int] = field(default_factory=list)  # per order
    extra: list[int] = field(default_factory=list)  # per order
    same_survivor: int = 0

    def line(self) -> str:
        kinds = ", ".join(f"{k} {self.pair_caught[k]}/{self.pair_total[k]}" for k in VARIANT_KINDS)
        caught = sum(self.pair_caught.values()) / max(sum(self.pair_total.values()), 1)
        streams = ", ".join(
            f"{lost} lost/{extra} missed" for lost, extra in zip(self.lost, self.extra, strict=True)
        )
        stream_rate = 1 - sum(self.extra) / max(len(self.extra) * self.variants, 1)
        return (
            f"near-duplicate rule, {self.label}: {self.groups} originals x {len(VARIANT_KINDS)} variants; "
            f"pairs caught {caught:.1%} ({kinds}); false merges among originals {self.pair_false}; "
            f"3 shuffled streams: {streams} (caught {stream_rate:.1%}); "
            f"same copy kept in every order for {self.same_survivor} of {self.groups} pictures"
        )


def _originals(label: str, sample: int) -> list[tuple[Image.Image, bytes]]:
    if label == "realistic":
        folder, items = realistic_corpus(2000)
        step = max(1, len(items) // sample)
        chosen = items[::step][:sample]
        out = []
        for item in chosen:
            data = (folder / item.name).read_bytes()
            with Image.open(io.BytesIO(data)) as img:
                out.append((img.convert("RGB"), data))
        return out
    from tests.imagehosts import encoded

    out = []
    for n in range(0, 2000, max(1, 2000 // sample))[:sample]:
        width, height = 560 + (n % 7) * 20, 420 + (n % 5) * 20
        data = encoded(10_000 + n, "jpeg", width, height, 85, True, False)
        with Image.open(io.BytesIO(data)) as img:
            out.append((img.convert("RGB"), data))
    return out


def _copies(label: str, sample: int) -> list[Copy]:
    folder = CACHE / f"dedupe-{label}-{sample}"
    marker = folder / "complete"
    copies = []
    if marker.exists():
        for path in sorted(folder.glob("*-*.*")):
            group, kind = path.stem.split("-", 1)
            copies.append(Copy(int(group), kind, path))
        return copies
    folder.mkdir(parents=True, exist_ok=True)
    for group, (img, data) in enumerate(_originals(label, sample)):
        rng = random.Random(group)
        path = folder / f"{group:05d}-original.bin"
        path.write_bytes(data)
        copies.append(Copy(group, "original", path))
        for kind in VARIANT_KINDS:
            body, _ = variant(img, kind, rng)
            path = folder / f"{group:05d}-{kind}.bin"
            path.write_bytes(body)
            copies.append(Copy(group, kind, path))
    marker.touch()
    return copies


def evaluate(label: str, sample: int = 200) -> Evaluation:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imagedl_site.settings")
    import hashlib

    import django

    django.setup()
    from downloader.dedupe import DuplicateFilter
    from downloader.validation import ImageRules, validate_file

    fields = ImageRules.__dataclass_fields__
    rules = ImageRules(**{k: v for k, v in {"min_side": 0, "max_pixels": 80_000_000}.items() if k in fields})
    copies = _copies(label, sample)
    for copy in copies:
        data = copy.path.read_bytes()
        check = validate_file(copy.path, rules)
        copy.sha256, copy.phash = hashlib.sha256(data).hexdigest(), check.phash
        copy.rank = (check.width * check.height, len(data))
    result = Evaluation(label, groups=len({c.group for c in copies}))
    result.variants = sum(1 for c in copies if c.kind != "original")
    originals = {c.group: c for c in copies if c.kind == "original"}
    for copy in copies:
        if copy.kind == "original":
            continue
        dupes = DuplicateFilter()
        dupes.check_and_add(originals[copy.group].sha256, originals[copy.group].phash)
        result.pair_total[copy.kind] += 1
        result.pair_caught[copy.kind] += dupes.check_and_add(copy.sha256, copy.phash) is not None
    dupes = DuplicateFilter()
    for copy in originals.values():
        result.pair_false += dupes.check_and_add(copy.sha256, copy.phash) is not None
    survivors: list[dict[int, set[str]]] = []
    for order in range(3):
        shuffled = copies[:]
        random.Random(order).shuffle(shuffled)
        dupes = DuplicateFilter()
        kept: dict[int, Copy] = {}
        for copy in shuffled:
            if hasattr(dupes, "offer"):
                verdict = dupes.offer(copy.sha256, copy.phash, rank=copy.rank, item=copy)
                if verdict.reason:
                    continue
                if verdict.replaces is not None:
                    del kept[id(verdict.replaces)]
            elif dupes.check_and_add(copy.sha256, copy.phash):
                continue
            kept[id(copy)] = copy
        per_group: dict[int, set[str]] = defaultdict(set)
        for copy in kept.values():
            per_group[copy.group].add(copy.kind)
        result.lost.append(result.groups - len(per_group))
        result.extra.append(sum(len(kinds) - 1 for kinds in per_group.values()))
        survivors.append(per_group)
    result.same_survivor = sum(
        1 for group in originals if all(s.get(group) == survivors[0].get(group) for s in survivors[1:])
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", choices=("both", "simple", "realistic"), default="both")
    parser.add_argument("--sample", type=int, default=200)
    args = parser.parse_args()
    for label in ("simple", "realistic") if args.corpus == "both" else (args.corpus,):
        print(evaluate(label, args.sample).line(), flush=True)


if __name__ == "__main__":
    main()
