"""A corpus shaped like real search results, for the benchmarks and the dedupe tests.

Photo-like pictures: a soft two-colour gradient, blurred shapes and objects drawn at a
low resolution and scaled up (smooth edges, as a camera sees them), then grain over
every pixel so a JPEG has real entropy. Sizes run from 300x200 to 4000x3000 with a
long tail (log-normal long side around 950 px, a few per cent at 3000-4000 px); mostly
JPEG at quality 72-92, some PNG, WebP and GIF. The whole set averages about 140 KB.

Generated once into a cache folder (``bench/out/``, ignored by git) and reused: the
files are deterministic per seed, so every run and every tool sees the same bytes.

``variant(img, kind, rng)`` makes the near-duplicates the de-duplication must catch:
re-encodes (JPEG quality 50-95), resizes (50-200%), format changes and crops of up to
5% of each side's length.
"""

from __future__ import annotations

import io
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / "out"
VERSION = 1
SAVE = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF"}
EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp", "gif": "gif"}
ASPECTS = [(3, 2), (4, 3), (16, 9), (1, 1), (2, 3), (3, 4), (4, 3), (3, 2)]
VARIANT_KINDS = ("reencode", "resize", "format", "crop")


@dataclass(frozen=True)
class Item:
    name: str
    format: str
    width: int
    height: int
    bytes: int


def _colour(rng: random.Random) -> tuple[int, int, int]:
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))


def photo(seed: int, width: int, height: int, grain: float = 14.0) -> Image.Image:
    """A distinct photo-like RGB picture per seed."""
    rng = random.Random(seed)
    # Composition at a low resolution (at most 480 px a side), scaled up smoothly.
    scale = min(1.0, 480 / max(width, height))
    sw, sh = max(8, round(width * scale)), max(8, round(height * scale))
    mask = Image.linear_gradient("L").rotate(rng.uniform(0, 360), expand=False).resize((sw, sh))
    img = Image.composite(
        Image.new("RGB", (sw, sh), _colour(rng)), Image.new("RGB", (sw, sh), _colour(rng)), mask
    )
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(6, 16)):
        x0, y0 = rng.uniform(-0.1, 1.0) * sw, rng.uniform(-0.1, 1.0) * sh
        x1, y1 = x0 + rng.uniform(0.05, 0.6) * sw, y0 + rng.uniform(0.05, 0.6) * sh
        kind = rng.random()
        colour = _colour(rng)
        if kind < 0.4:
            draw.ellipse([x0, y0, x1, y1], fill=colour)
        elif kind < 0.7:
            draw.rectangle([x0, y0, x1, y1], fill=colour)
        else:
            points = [(rng.uniform(x0, x1), rng.uniform(y0, y1)) for _ in range(rng.randint(3, 6))]
            draw.polygon(points, fill=colour)
    for _ in range(rng.randint(20, 60)):  # small detail: twigs, text, edges
        x, y = rng.uniform(0, sw), rng.uniform(0, sh)
        draw.line(
            [x, y, x + rng.uniform(-40, 40), y + rng.uniform(-40, 40)],
            fill=_colour(rng),
            width=rng.randint(1, 3),
        )
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 2.0)))
    img = img.resize((width, height), Image.Resampling.BICUBIC)
    if grain:
        noise = Image.effect_noise((width, height), grain).convert("RGB")
        img = Image.blend(img, noise, 0.22)
    return img


def encode(img: Image.Image, fmt: str, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    if fmt == "gif":
        img = img.convert("P", palette=Image.Palette.ADAPTIVE)
    options = {"quality": quality} if fmt in ("jpeg", "webp") else {}
    if fmt == "png":
        options = {"compress_level": 6}
    img.save(buf, SAVE[fmt], **options)
    return buf.getvalue()


def plan(seed: int) -> tuple[str, int, int, int, float]:
    """Format, width, height, quality and grain of corpus image ``seed``."""
    rng = random.Random(1_000_003 * VERSION + seed)
    roll = rng.random()
    fmt = "jpeg" if roll < 0.80 else "png" if roll < 0.88 else "webp" if roll < 0.96 else "gif"
    if rng.random() < 0.03:  # the long tail: camera originals
        long_side = rng.randint(3000, 4000)
    else:
        long_side = int(min(4000, max(300, math.exp(rng.gauss(math.log(950), 0.45)))))
    if fmt in ("png", "gif"):  # graphics and screenshots: smaller, less grain
        long_side = min(long_side, rng.randint(300, 900))
    a, b = rng.choice(ASPECTS)
    if a >= b:
        width, height = long_side, max(200, round(long_side * b / a))
    else:
        width, height = max(200, round(long_side * a / b)), long_side
    if width >= height:
        height = min(height, 3000)
    quality = rng.randint(72, 92)
    grain = 14.0 if fmt in ("jpeg", "webp") else 4.0
    return fmt, width, height, quality, grain


def realistic_corpus(
    count: int = 2000, first_seed: int = 500_000, folder: Path | None = None
) -> tuple[Path, list[Item]]:
    """The corpus files (generated when missing) and their descriptions."""
    folder = folder or CACHE / f"realistic-v{VERSION}"
    folder.mkdir(parents=True, exist_ok=True)
    index_path = folder / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    items, changed = [], False
    for seed in range(first_seed, first_seed + count):
        fmt, width, height, quality, grain = plan(seed)
        name = f"{seed}.{EXTENSIONS[fmt]}"
        if name not in index or not (folder / name).exists():
            data = encode(photo(seed, width, height, grain), fmt, quality)
            (folder / name).write_bytes(data)
            index[name] = len(data)
            changed = True
        items.append(Item(name, fmt, width, height, index[name]))
    if changed:
        index_path.write_text(json.dumps(index))
    return folder, items


def variant(img: Image.Image, kind: str, rng: random.Random) -> tuple[bytes, str]:
    """A near-duplicate of ``img``: its encoded bytes and format."""
    if kind == "reencode":
        return encode(img, "jpeg", rng.randint(50, 95)), "jpeg"
    if kind == "resize":
        factor = rng.uniform(0.5, 2.0)
        if img.width * img.height * factor * factor > 12_000_000:
            factor = rng.uniform(0.5, 1.0)  # keep the benchmark's memory and time in check
        size = (max(16, round(img.width * factor)), max(16, round(img.height * factor)))
        return encode(img.resize(size, Image.Resampling.LANCZOS), "jpeg", rng.randint(75, 92)), "jpeg"
    if kind == "format":
        fmt = rng.choice(("png", "webp", "gif"))
        return encode(img, fmt, rng.randint(75, 92)), fmt
    if kind == "crop":
        # Up to 5% of each side's length, split at random between its two ends.
        cut_w, cut_h = rng.uniform(0.0, 0.05) * img.width, rng.uniform(0.0, 0.05) * img.height
        left, top = rng.uniform(0, cut_w), rng.uniform(0, cut_h)
        box = (round(left), round(top), round(img.width - (cut_w - left)), round(img.height - (cut_h - top)))
        return encode(img.crop(box), "jpeg", rng.randint(75, 92)), "jpeg"
    raise ValueError(kind)
