"""A page's script cannot make the extractor's browser reach a refused address by a
channel that skips the egress guard: WebRTC (STUN/TURN over UDP or TCP), WebSocket,
fetch, EventSource, images, DNS prefetch and preconnect. UDP and TCP listeners on the
refused address receive nothing, while the page's own images are extracted."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from downloader.browser import open_browser
from downloader.config import (
    browser_options_from_settings,
    fetch_policy_from_settings,
    page_options_from_settings,
)
from downloader.egress import EgressGuard
from downloader.engines.page import extract_page_images
from tests.imitations import SearchImitation
from tests.network import addresses_only

SITE, INSIDE = "127.0.0.33", "127.0.0.34"


class Listeners:
    """A TCP and a UDP socket on one port of ``address``, noting whatever arrives."""

    def __init__(self, address: str) -> None:
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((address, 0))
        self.port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((address, self.port))
        self.tcp.listen(16)
        self.tcp.settimeout(0.2)
        self.udp.settimeout(0.2)
        self.connections: list[tuple] = []
        self.datagrams: list[bytes] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept), threading.Thread(target=self._receive)]
        for thread in self._threads:
            thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self.tcp.accept()
            except TimeoutError:
                continue
            self.connections.append(peer)
            conn.close()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                self.datagrams.append(self.udp.recv(2048))
            except TimeoutError:
                continue

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self.tcp.close()
        self.udp.close()


def probe_page(target: str, port: int) -> str:
    http = f"http://{target}:{port}"
    return f"""<!doctype html><html><head>
<link rel="dns-prefetch" href="//intranet.corp.example">
<link rel="preconnect" href="{http}">
<link rel="dns-prefetch" href="{http}">
</head><body>
<img src="/img/own-1.jpg"><img src="/img/own-2.jpg">
<img src="{http}/img.jpg">
<script>
window.probeDone = false;
const ice = [
  {{urls: "stun:{target}:{port}"}},
  {{urls: "stun:stun.intranet.corp.example:{port}"}},
  {{urls: ["turn:{target}:{port}?transport=udp", "turn:{target}:{port}?transport=tcp"],
    username: "u", credential: "p"}},
];
try {{
  const pc = new RTCPeerConnection({{iceServers: ice, iceCandidatePoolSize: 2}});
  pc.createDataChannel("leak");
  pc.onicegatheringstatechange = () => {{ if (pc.iceGatheringState === "complete") window.probeDone = true; }};
  pc.createOffer().then((offer) => pc.setLocalDescription(offer));
}} catch (e) {{ window.probeDone = true; }}
try {{ new WebSocket("ws://{target}:{port}/socket"); }} catch (e) {{}}
fetch("{http}/fetch", {{mode: "no-cors"}}).catch(() => 0);
try {{ new EventSource("{http}/events"); }} catch (e) {{}}
setTimeout(() => {{ window.probeDone = true; }}, 8000);
</script>
</body></html>"""


@pytest.mark.browser
def test_a_page_script_reaches_a_refused_address_by_no_channel(settings):
    settings.IMAGEDL_ALLOW_PRIVATE_NETWORKS = False
    settings.IMAGEDL_EXTRA_ALLOWED_NETWORKS = [f"{SITE}/32"]  # stands in for a public site
    site = SearchImitation(SITE, image_url=lambda i: "").start()
    inside = Listeners(INSIDE)
    site.pages["/gallery"] = probe_page(INSIDE, inside.port)
    try:
        guard = EgressGuard(fetch_policy_from_settings(), addresses_only, loopback_only=False)
        with guard, open_browser(browser_options_from_settings(), egress=guard) as driver:
            options = page_options_from_settings(scroll_wait=0.5)
            found = [
                c.url for c in extract_page_images(driver, site.base + "/gallery", wanted=10, options=options)
            ]
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not driver.execute_script("return window.probeDone"):
                time.sleep(0.2)
            time.sleep(1.0)  # late STUN retransmissions and TURN allocations
            refused = guard.refused
    finally:
        site.stop()
        inside.close()
    assert site.base + "/img/own-1.jpg" in found and site.base + "/img/own-2.jpg" in found
    assert inside.datagrams == []  # no STUN or TURN over UDP
    assert inside.connections == []  # no TCP: not TURN, WebSocket, fetch, EventSource, img, preconnect
    # The script did try: what goes through the proxy was refused there.
    to_inside = {
        url.removeprefix(f"http://{INSIDE}:{inside.port}"): why for url, why in refused if INSIDE in url
    }
    assert {"/img.jpg", "/fetch", "/events", f"https://{INSIDE}:{inside.port}/"} <= set(to_inside), refused
    assert set(to_inside.values()) == {"private_address"}


# Chromium's own calls home (network time, the account check, the component updater)
# are made within a second or two of its start; this long after the page, they would
# have been refused.
QUIET_WINDOW = 5.0


@pytest.mark.browser
def test_the_browser_itself_calls_no_one(settings):
    """Through the guard, which resolves no name here, a browser that opened one page
    asked for nothing else: none of Chromium's services called Google on its own."""
    settings.IMAGEDL_ALLOW_PRIVATE_NETWORKS = False
    settings.IMAGEDL_EXTRA_ALLOWED_NETWORKS = [f"{SITE}/32"]
    site = SearchImitation(SITE, image_url=lambda i: "").start()
    site.pages["/plain"] = "<!doctype html><html><body><p>Nothing else here.</p></body></html>"
    try:
        guard = EgressGuard(fetch_policy_from_settings(), addresses_only, loopback_only=False)
        with guard, open_browser(browser_options_from_settings(), egress=guard) as driver:
            driver.get(site.base + "/plain")
            assert "Nothing else here." in driver.page_source
            time.sleep(QUIET_WINDOW)
            refused = guard.refused
    finally:
        site.stop()
    assert refused == []
