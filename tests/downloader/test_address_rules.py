"""IPv6 addresses that carry an IPv4 address are judged by the IPv4 address inside, and
site-local IPv6 is refused: in the download chokepoint, the job form and the browser's
egress guard, each time before any connection is made."""

from __future__ import annotations

import pytest

from downloader.egress import EgressGuard
from downloader.http import Fetcher, FetchPolicy
from tests.network import ask

# Each IPv6 form with a loopback, private or link-local IPv4 address inside.
HIDDEN = {
    "nat64 loopback": "64:ff9b::7f00:1",
    "nat64 private": "64:ff9b::10.1.2.3",
    "nat64 local-use": "64:ff9b:1::a9fe:a9fe",
    "6to4 loopback": "2002:7f00:1::1",
    "6to4 private": "2002:c0a8:101::1",
    "compatible loopback": "::127.0.0.1",
    "compatible link-local": "::169.254.169.254",
    "siit loopback": "::ffff:0:127.0.0.1",
    "siit private": "::ffff:0:172.16.0.1",
    "site-local": "fec0::1",
}
# The same forms carrying a public IPv4 address stay allowed.
PUBLIC = ["64:ff9b::93.184.216.34", "2002:5db8:d822::1", "::ffff:0:93.184.216.34", "2606:2800:220:1::1"]

STRICT = FetchPolicy(allow_private=False, connect_timeout=1.0, read_timeout=1.0, total_timeout=2.0)


def literal_only(host: str, port: int) -> list[str]:
    """Resolve nothing: every test address is a literal."""
    return [host]


@pytest.mark.parametrize("address", HIDDEN.values(), ids=HIDDEN.keys())
def test_the_chokepoint_refuses_it_before_any_connection(address, tmp_path):
    fetcher = Fetcher(STRICT, concurrency=1, per_host=1, resolver=literal_only)
    result = fetcher.fetch(f"http://[{address}]/a.jpg", tmp_path / "a")
    assert (result.ok, result.reason) == (False, "private_address")
    assert fetcher.connections_opened == 0
    # ...and when a host name resolves to it.
    named = Fetcher(STRICT, concurrency=1, per_host=1, resolver=lambda host, port: [address])
    assert named.fetch("https://images.example.com/a.jpg", tmp_path / "b").reason == "private_address"
    assert named.connections_opened == 0


@pytest.mark.parametrize("address", PUBLIC)
def test_the_same_forms_with_a_public_ipv4_inside_are_allowed(address):
    from downloader.http import address_allowed

    assert address_allowed(address, allow_private=False)


@pytest.mark.django_db(databases=["default"])
@pytest.mark.parametrize("address", HIDDEN.values(), ids=HIDDEN.keys())
def test_the_form_shows_its_message(address, client, settings):
    from django.core.cache import cache

    cache.clear()
    settings.IMAGEDL_ALLOW_PRIVATE_NETWORKS = False
    response = client.post("/", {"page_url": f"http://[{address}]/gallery", "email": "a@example.org"})
    assert response.status_code == 200
    assert "private or local network" in " ".join(response.context["form"].errors["page_url"])
    assert "private or local network" in response.content.decode()


@pytest.mark.parametrize("address", HIDDEN.values(), ids=HIDDEN.keys())
def test_the_egress_guard_answers_403_before_connecting(address, monkeypatch):
    from downloader import egress

    connected = []
    monkeypatch.setattr(egress._Handler, "_connect", lambda self, *target: connected.append(target))
    with EgressGuard(STRICT, literal_only, loopback_only=False) as guard:
        assert ask(guard, f"CONNECT [{address}]:443 HTTP/1.1\r\n\r\n".encode()).startswith(b"HTTP/1.1 403")
        plain = ask(guard, f"GET http://[{address}]/x.png HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert plain.startswith(b"HTTP/1.1 403")
        assert [reason for _, reason in guard.refused] == ["private_address", "private_address"]
    assert connected == []
