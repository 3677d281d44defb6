"""Captions: the text that goes with an image in every manifest, as plain text.

Titles come from strangers (an engine's result data, a page's markup): entities are
decoded, markup and control characters dropped, whitespace collapsed and the length
bounded, so a caption is never HTML and never more than MAX_CAPTION characters.
"""

from __future__ import annotations

import html
import re
import unicodedata

MAX_CAPTION = 500  # characters
_TAG = re.compile(r"<[^<>]*>")
# Control, format (zero-width, bidi overrides), private-use (Bing's highlight marks
# U+E000/U+E001), unassigned and surrogate characters: none belongs in a caption.
_DROPPED = frozenset({"Cc", "Cf", "Co", "Cn", "Cs"})


def caption_clean(text: object) -> str:
    """``text`` as a caption: entities decoded (twice at most: titles are often escaped
    once more than needed), tags dropped, whitespace collapsed, at most MAX_CAPTION
    characters (cut at a word when one ends near the limit)."""
    value = str(text or "")[: MAX_CAPTION * 8]  # bound the work on a hostile title
    for _ in range(2):
        decoded = html.unescape(value)
        if decoded == value:
            break
        value = decoded
    value = _TAG.sub(" ", value)
    value = "".join(
        " " if ch.isspace() else ch
        for ch in value
        if ch.isspace() or unicodedata.category(ch) not in _DROPPED
    )
    value = " ".join(value.replace("<", " ").replace(">", " ").split())
    if len(value) <= MAX_CAPTION:
        return value
    cut = value[: MAX_CAPTION + 1].rsplit(" ", 1)[0][:MAX_CAPTION]
    return (cut if len(cut) >= MAX_CAPTION - 50 else value[:MAX_CAPTION]).rstrip()


def caption_first(*texts: object) -> str:
    """The first of ``texts`` that makes a caption that is not empty."""
    for text in texts:
        caption = caption_clean(text)
        if caption:
            return caption
    return ""
