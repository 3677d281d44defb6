"""Credits from what really states them: the image's own EXIF (Artist, Copyright) and XMP
(dc:creator, dc:rights, xmpRights:WebStatement, plus:Licensor), read with Pillow while it
is validated, and a fetched page's rel=license link and schema.org license and creator.
The images are made here with Pillow, carrying real EXIF and XMP fields."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command
from PIL import Image, PngImagePlugin

from downloader.browser import open_browser
from downloader.config import browser_options_from_settings, page_options_from_settings
from downloader.engines.page import extract_page_images
from downloader.rights import Rights, xmp_rights
from downloader.validation import ImageRules, validate_file
from tests.imagehosts import picture

WEB_STATEMENT = "https://creativecommons.org/licenses/by/4.0/"
XMP = f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"
  xmlns:xmpRights="http://ns.adobe.com/xap/1.0/rights/" xmlns:plus="http://ns.useplus.org/ldf/xmp/1.0/"
  xmpRights:WebStatement="{WEB_STATEMENT}">
 <dc:creator><rdf:Seq><rdf:li>Ada Lovelace</rdf:li><rdf:li>Charles Babbage</rdf:li></rdf:Seq></dc:creator>
 <dc:rights><rdf:Alt><rdf:li xml:lang="fr">© Ada (fr)</rdf:li><rdf:li xml:lang="x-default">© 2026 Ada Lovelace</rdf:li></rdf:Alt></dc:rights>
 <plus:Licensor><rdf:Seq><rdf:li rdf:parseType="Resource">
  <plus:LicensorName>Analytical Images Ltd</plus:LicensorName><plus:LicensorURL>https://licensor.example/</plus:LicensorURL>
 </rdf:li></rdf:Seq></plus:Licensor>
</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>"""
FULL = Rights(
    creator="Ada Lovelace; Charles Babbage",
    copyright="© 2026 Ada Lovelace",
    license=WEB_STATEMENT,
    licensor="Analytical Images Ltd",
)


def exif(artist: str = "EXIF Artist", notice: str = "EXIF Copyright") -> bytes:
    data = Image.Exif()
    data[315], data[33432] = artist, notice
    return data.tobytes()


def image_with_rights(path: Path, fmt: str, *, xmp: bool = True, seed: int = 1) -> Path:
    """A real image carrying EXIF Artist and Copyright, and (``xmp``) the XMP packet."""
    img = picture(seed, 320, 240)
    options: dict[str, object] = {"exif": exif()}
    if fmt == "PNG" and xmp:
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", XMP)
        options["pnginfo"] = info
    elif xmp:
        options["xmp"] = XMP.encode()
    img.save(path, fmt, **options)
    return path


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])  # a still WebP is decoded by libwebp itself
def test_validation_reads_the_files_exif_and_xmp_rights(tmp_path, fmt):
    checked = validate_file(image_with_rights(tmp_path / "a", fmt), ImageRules())
    assert checked.ok and checked.rights == FULL  # XMP first: the richer, newer record
    only_exif = validate_file(image_with_rights(tmp_path / "b", fmt, xmp=False), ImageRules())
    assert only_exif.ok and only_exif.rights == Rights(creator="EXIF Artist", copyright="EXIF Copyright")


def iim(*datasets: tuple[int, int, bytes]) -> bytes:
    """An IPTC IIM record: a tag marker, record and dataset numbers, a length, the value."""
    return b"".join(bytes((0x1C, r, d)) + len(v).to_bytes(2, "big") + v for r, d, v in datasets)


def jpeg_with_iim(path: Path, record: bytes, *, xmp: bool = False) -> Path:
    """A JPEG whose APP13 segment holds ``record`` as Photoshop's IPTC-NAA resource
    (0x0404), the way Photoshop and exiftool write it."""
    picture(3, 320, 240).save(path, "JPEG", **({"xmp": XMP.encode()} if xmp else {}))
    data = record + b"\0" * (len(record) % 2)
    resource = b"8BIM" + (0x0404).to_bytes(2, "big") + b"\0\0" + len(record).to_bytes(4, "big") + data
    payload = b"Photoshop 3.0\0" + resource
    segment = b"\xff\xed" + (len(payload) + 2).to_bytes(2, "big") + payload
    original = path.read_bytes()
    path.write_bytes(original[:2] + segment + original[2:])  # right after SOI
    return path


def test_validation_reads_the_iptc_iim_by_line_and_copyright_notice(tmp_path):
    utf8 = iim((1, 90, b"\x1b%G"), (2, 80, b"Grace Hopper"), (2, 80, "Zoë Ng".encode()),
               (2, 116, "© 2026 Grace Hopper".encode()))  # fmt: skip
    checked = validate_file(jpeg_with_iim(tmp_path / "a.jpg", utf8), ImageRules())
    assert checked.ok and checked.rights == Rights(
        creator="Grace Hopper; Zoë Ng", copyright="© 2026 Grace Hopper"
    )
    latin1 = iim((2, 80, "Zoë Ng".encode("latin-1")))  # no character set named, not UTF-8
    assert validate_file(jpeg_with_iim(tmp_path / "b.jpg", latin1), ImageRules()).rights.creator == "Zoë Ng"
    # XMP, the newer record, comes first where both state a field.
    both = validate_file(jpeg_with_iim(tmp_path / "c.jpg", utf8, xmp=True), ImageRules())
    assert both.rights == FULL
    # A record cut short or of junk states nothing and rejects nothing.
    for junk in (utf8[:9], b"\x1c\x02\x50\xff\xff", b"not iim at all"):
        broken = validate_file(jpeg_with_iim(tmp_path / "d.jpg", junk), ImageRules())
        assert broken.ok and broken.rights == Rights()


def test_an_image_without_metadata_states_nothing(tmp_path):
    path = tmp_path / "plain.jpg"
    picture(2, 200, 100).save(path, "JPEG")
    assert validate_file(path, ImageRules()).rights == Rights()


def test_hostile_xmp_states_nothing_and_breaks_nothing():
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>&b;</dc:creator>'
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    assert xmp_rights(laughs) == Rights()
    assert xmp_rights(laughs.replace('"1.0"', '"1.0" encoding="utf-16"').encode("utf-16")) == Rights()
    assert xmp_rights(b"<x:xmpmeta><unclosed") == Rights()
    assert xmp_rights(
        XMP.replace("Ada Lovelace</rdf:li>", "<b>Ada</b> &amp;lt;script&amp;gt;</rdf:li>", 1)
    ).creator == ("Ada; Charles Babbage")  # markup inside a value is not XMP: only its own text counts


def test_download_urls_credits_what_the_files_state(start_image_host, tmp_path):
    folder = tmp_path / "files"
    folder.mkdir()
    image_with_rights(folder / "a.jpg", "JPEG", seed=3)
    picture(4, 320, 240).save(folder / "b.png", "PNG")
    host = start_image_host(files=folder)
    listing = tmp_path / "urls.txt"
    listing.write_text(f"{host.url('/file/a.jpg')}\n{host.url('/file/b.png')}\n")
    call_command("download_urls", str(listing), "--out", str(tmp_path / "out.zip"), "--no-progress")
    with zipfile.ZipFile(tmp_path / "out.zip") as zf:
        rows = {
            row["source_url"].rsplit("/", 1)[1]: row
            for row in csv.DictReader(io.StringIO(zf.read("manifest.csv").decode()))
        }
        credits = zf.read("CREDITS.html").decode()
    stated = rows["a.jpg"]
    assert (stated["license"], stated["license_from"], stated["creator"]) == (
        WEB_STATEMENT,
        "image",
        FULL.creator,
    )
    assert (stated["copyright"], stated["licensor"]) == (FULL.copyright, FULL.licensor)
    plain = rows["b.png"]
    assert [plain[k] for k in ("license", "license_from", "creator", "copyright", "licensor")] == [""] * 5
    assert f"license: {WEB_STATEMENT} (stated by the image)" in credits and "creator: Ada Lovelace" in credits


PAGE = """<html><head><title>Gallery</title>
<link rel="license" href="/terms/cc-by-sa">
<script type="application/ld+json">{json_ld}</script></head><body>
<img src="/a.jpg" alt="a"><img src="/b.jpg" alt="b"></body></html>"""


@pytest.mark.browser
def test_a_fetched_pages_rel_license_and_schema_org_rights_go_with_its_images(start_imitation):
    site = start_imitation(scroll_wait=0.5)
    json_ld = {
        "@context": "https://schema.org",
        "@graph": [
            {"@type": "WebPage", "creator": {"@type": "Person", "name": "Page Author"}},
            {
                "@type": "ImageObject",
                "contentUrl": "/b.jpg",
                "license": "https://creativecommons.org/publicdomain/zero/1.0/",
                "creator": {"@type": "Person", "name": "Bea Photographer"},
            },
        ],
    }
    site.pages["/gallery"] = PAGE.format(json_ld=json.dumps(json_ld))
    with open_browser(browser_options_from_settings()) as driver:
        found = list(
            extract_page_images(
                driver, site.base + "/gallery", wanted=5, options=page_options_from_settings()
            )
        )
    assert [(c.license, c.creator) for c in found] == [
        (site.base + "/terms/cc-by-sa", "Page Author"),  # the page's rel=license and creator
        ("https://creativecommons.org/publicdomain/zero/1.0/", "Bea Photographer"),  # the image's own
    ]
