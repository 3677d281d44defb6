"""Small previews of kept images, made from the pixels validation already decoded.

The web shows these and never decodes a full image itself: a JPEG at most
``PREVIEW_SIDE`` pixels a side, transparency laid on white, a few KB each.
"""

from __future__ import annotations

import io

from PIL import Image

PREVIEW_SIDE = 160


def preview_jpeg(img: Image.Image, side: int = PREVIEW_SIDE) -> bytes:
    """A JPEG of ``img`` (any mode, first frame) fitting ``side`` x ``side``."""
    small = img.copy() if img.size[0] <= side and img.size[1] <= side else None
    if small is None:
        width, height = img.size
        scale = side / max(width, height)
        target = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = img.resize(target, Image.Resampling.BICUBIC, reducing_gap=2.0)
    if small.mode in ("RGBA", "LA", "PA", "P") or "transparency" in small.info:
        rgba = small.convert("RGBA")
        small = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    out = io.BytesIO()
    small.convert("RGB").save(out, "JPEG", quality=80)
    return out.getvalue()
