"""Who made an image and on what terms, from what really states it:

- the image's own metadata, read while it is validated: EXIF Artist (315) and
  Copyright (33432); XMP (IPTC Core and PLUS) ``dc:creator``, ``dc:rights``,
  ``xmpRights:WebStatement`` (a URL of the license or rights statement) and
  ``plus:Licensor`` (its name, else its URL); the older IPTC IIM record of JPEG and
  TIFF files (Photoshop's APP13): By-line (2:80) and Copyright Notice (2:116);
- a page the extractor read: its ``rel="license"`` link, and schema.org ``license`` and
  ``creator`` (JSON-LD, for the image by its URL or for the page).

Search engines' result data states no per-image license (their license filter is a
filter, recorded as such). Every value is untrusted text: bounded, made plain.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET  # the element type; parsing goes through defusedxml
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import urljoin

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as xml_parse
from PIL import Image, IptcImagePlugin

from downloader.captions import caption_clean

MAX_FIELD = 300  # characters of any one value
MAX_XMP = 256 * 1024  # bytes of XMP read
MAX_JSON_LD = 200 * 1024  # characters of one JSON-LD script
EXIF_ARTIST, EXIF_COPYRIGHT = 315, 33432
IIM_BYLINE, IIM_COPYRIGHT, IIM_CHARSET = (2, 80), (2, 116), (1, 90)
IIM_UTF8 = b"\x1b%G"  # the IIM's coded character set: UTF-8
RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
DC = "{http://purl.org/dc/elements/1.1/}"
XMP_RIGHTS = "{http://ns.adobe.com/xap/1.0/rights/}"
PLUS = "{http://ns.useplus.org/ldf/xmp/1.0/}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


@dataclass(frozen=True)
class Rights:
    """What a source states: a creator, a copyright notice, a license (a URL or a
    name) and a licensor; "" when it states nothing."""

    creator: str = ""
    copyright: str = ""
    license: str = ""
    licensor: str = ""

    def __bool__(self) -> bool:
        return any((self.creator, self.copyright, self.license, self.licensor))


def _plain(value: object) -> str:
    return caption_clean(value)[:MAX_FIELD]


# --- the image's own metadata ---------------------------------------------------------


def image_rights(img: Image.Image) -> Rights:
    """The rights an opened image states in its XMP, IPTC IIM and EXIF, each field from
    the first that states it (XMP is the richer, newer record). Never raises:
    unreadable metadata states nothing."""
    try:
        exif = img.getexif()
        artist, notice = exif.get(EXIF_ARTIST), exif.get(EXIF_COPYRIGHT)
    except Exception:  # a corrupt EXIF block: no rights from it
        artist = notice = None
    xmp = img.info.get("xmp") or img.info.get("XML:com.adobe.xmp") or b""
    older = _merge(iim_rights(img), Rights(creator=_plain(artist), copyright=_plain(notice)))
    return _merge(xmp_rights(xmp), older)


def iim_rights(img: Image.Image) -> Rights:
    """By-line and Copyright Notice of the image's IPTC IIM record (JPEG, TIFF)."""
    if "photoshop" not in img.info and not hasattr(img, "tag_v2"):
        return Rights()  # no APP13 block, not a TIFF: nothing to parse
    try:
        record = IptcImagePlugin.getiptcinfo(img) or {}
    except Exception:  # a malformed block states nothing
        return Rights()
    utf8 = record.get(IIM_CHARSET) == IIM_UTF8
    creators = _iim_values(record, IIM_BYLINE, utf8)
    notices = _iim_values(record, IIM_COPYRIGHT, utf8)
    return Rights(creator=_plain("; ".join(creators)), copyright=_plain(" ".join(notices)))


def _iim_values(record: Mapping, key: tuple[int, int], utf8: bool) -> list[str]:
    """A dataset's values as text: UTF-8 (when the record says so, or when the bytes
    are), else Latin-1."""
    raw = record.get(key) or []
    values = raw if isinstance(raw, list) else [raw]
    texts = []
    for value in values[:20]:
        data = bytes(value)[: MAX_FIELD * 4]
        try:  # files that do not say are Latin-1 by the standard, UTF-8 in practice
            text = data.decode("utf-8", "replace" if utf8 else "strict")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
        if text.strip():
            texts.append(text.strip())
    return texts


def webp_chunk_rights(data: bytes) -> Rights:
    """The rights of a WebP file's EXIF and XMP chunks (for WebPs decoded without
    Pillow's reader)."""
    exif_data, xmp = b"", b""
    for fourcc, chunk in _riff_chunks(data):
        if fourcc == b"EXIF":
            exif_data = chunk
        elif fourcc == b"XMP ":
            xmp = chunk
    artist, notice = _exif_names(exif_data) if exif_data else (None, None)
    return _merge(xmp_rights(xmp), Rights(creator=_plain(artist), copyright=_plain(notice)))


def _exif_names(data: bytes) -> tuple[object, object]:
    """EXIF Artist and Copyright of a raw EXIF block; (None, None) when it is corrupt."""
    try:
        exif = Image.Exif()
        exif.load(data.removeprefix(b"Exif\x00\x00"))
        return exif.get(EXIF_ARTIST), exif.get(EXIF_COPYRIGHT)
    except Exception:  # a corrupt EXIF block: no rights from it
        return None, None


def _riff_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    offset = 12
    while offset + 8 <= len(data):
        fourcc, size = data[offset : offset + 4], int.from_bytes(data[offset + 4 : offset + 8], "little")
        yield fourcc, data[offset + 8 : offset + 8 + size]
        offset += 8 + size + (size & 1)


def xmp_rights(xmp: bytes | str) -> Rights:
    """dc:creator, dc:rights, xmpRights:WebStatement and plus:Licensor of an XMP packet."""
    tree = _xmp_tree(xmp)
    if tree is None:
        return Rights()
    creators, notices, statements, licensors = [], [], [], []
    for description in tree.iter(f"{RDF}Description"):
        statements.append(description.get(f"{XMP_RIGHTS}WebStatement", ""))
        for element in description:
            if element.tag == f"{DC}creator":
                creators += _items(element)
            elif element.tag == f"{DC}rights":
                notices += _items(element, prefer_default=True)
            elif element.tag == f"{XMP_RIGHTS}WebStatement":
                statements.append(element.get(f"{RDF}resource") or element.text or "")
            elif element.tag == f"{PLUS}Licensor":
                licensors += _licensors(element)
    return Rights(
        creator=_plain("; ".join(filter(None, map(_plain, creators)))),
        copyright=_plain(next(filter(None, notices), "")),
        license=_plain(next(filter(None, statements), "")),
        licensor=_plain(next(filter(None, licensors), "")),
    )


def _xmp_tree(xmp: bytes | str) -> ET.Element | None:
    data = xmp.encode() if isinstance(xmp, str) else bytes(xmp)
    data = data[:MAX_XMP]
    if not data:
        return None
    start = data.find(b"<x:xmpmeta")
    end = data.find(b"</x:xmpmeta>")
    if start >= 0 and end > start:
        data = data[start : end + len(b"</x:xmpmeta>")]
    try:  # no DTD, so no entities to expand and nothing fetched
        return xml_parse(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ET.ParseError, DefusedXmlException):
        return None


def _items(element: ET.Element, prefer_default: bool = False) -> list[str]:
    """The values of an rdf:Seq/Bag/Alt (or the element's own text); for an Alt, the
    x-default first."""
    items = list(element.iter(f"{RDF}li"))
    if prefer_default:
        items.sort(key=lambda li: li.get(XML_LANG) != "x-default")
    values = ["".join(li.itertext()).strip() for li in items] or [(element.text or "").strip()]
    return [value for value in values if value]


def _licensors(element: ET.Element) -> list[str]:
    names = [(e.text or "").strip() for e in element.iter(f"{PLUS}LicensorName")]
    urls = [(e.text or "").strip() for e in element.iter(f"{PLUS}LicensorURL")]
    return [value for value in names + urls if value]


def _merge(first: Rights, second: Rights) -> Rights:
    """Each field from ``first``, else from ``second``."""
    return Rights(
        creator=first.creator or second.creator,
        copyright=first.copyright or second.copyright,
        license=first.license or second.license,
        licensor=first.licensor or second.licensor,
    )


# --- a page the extractor read -----------------------------------------------------


@dataclass(frozen=True)
class PageRights:
    """What a page states: for the whole page, and for some of its images by URL."""

    page: Rights = field(default_factory=Rights)
    images: Mapping[str, Rights] = field(default_factory=dict)

    def of(self, url: str) -> Rights:
        """The rights stated for the image at ``url``, else for the page."""
        return _merge(self.images.get(url, Rights()), self.page)


def page_rights(collected: Mapping[str, object], base: str) -> PageRights:
    """Rights from what the page extractor collected: ``license_links`` (hrefs of
    rel=license), ``json_ld`` (texts of JSON-LD scripts), ``microdata`` (itemprop
    license/creator values)."""
    links = [str(href) for href in _list(collected.get("license_links")) if href]
    microdata = collected.get("microdata")
    microdata = microdata if isinstance(microdata, dict) else {}
    page = Rights(
        license=_plain(urljoin(base, links[0]) if links else microdata.get("license", "")),
        creator=_plain(microdata.get("creator", "")),
    )
    images: dict[str, Rights] = {}
    for text in _list(collected.get("json_ld"))[:20]:
        for node in _json_ld_nodes(str(text)[:MAX_JSON_LD]):
            stated = Rights(license=_name_of(node.get("license")), creator=_name_of(node.get("creator")))
            if not stated:
                continue
            url = node.get("contentUrl") or (node.get("url") if node.get("@type") == "ImageObject" else None)
            if isinstance(url, str) and url:
                images.setdefault(urljoin(base, url), stated)
            else:
                page = _merge(page, stated)
    return PageRights(page=page, images=images)


def _list(value: object) -> list:
    return value if isinstance(value, list) else []


def _json_ld_nodes(text: str) -> Iterator[dict]:
    """Every object of a JSON-LD document (its @graph and nested objects included), at
    most 500."""
    try:
        stack: list[object] = [json.loads(text)]
    except ValueError:
        return
    seen = 0
    while stack and seen < 500:
        value = stack.pop()
        if isinstance(value, dict):
            seen += 1
            yield value
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def _name_of(value: object) -> str:
    """A schema.org license or creator as text: a URL or name, or a Person's or
    CreativeWork's name or URL, or several joined."""
    if isinstance(value, str):
        return _plain(value)
    if isinstance(value, dict):
        return _plain(value.get("name") or value.get("url") or value.get("@id") or "")
    if isinstance(value, list):
        return _plain("; ".join(filter(None, (_name_of(item) for item in value[:10]))))
    return ""
