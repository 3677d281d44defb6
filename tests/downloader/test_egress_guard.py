"""The egress guard as a proxy: tunnels and plain requests to allowed hosts pass,
anything else is refused before a connection is made."""

from __future__ import annotations

from downloader.egress import EgressGuard
from downloader.http import FetchPolicy
from tests.network import ask

POLICY = FetchPolicy(allow_private=False, extra_allowed=("127.0.0.27/32",))


def test_a_tunnel_to_an_allowed_host_carries_bytes_and_others_are_refused(start_imitation):
    allowed = start_imitation(address="127.0.0.27")
    private = start_imitation(address="127.0.0.28")
    allowed.pages["/hello"] = private.pages["/hello"] = "hello through the tunnel"
    with EgressGuard(POLICY, loopback_only=False) as guard:
        tunnel = ask(
            guard,
            f"CONNECT 127.0.0.27:{allowed.port} HTTP/1.1\r\n\r\n".encode(),
            then=b"GET /hello HTTP/1.1\r\nHost: 127.0.0.27\r\nConnection: close\r\n\r\n",
        )
        assert tunnel.startswith(b"HTTP/1.1 200") and b"hello through the tunnel" in tunnel

        refused = ask(guard, f"CONNECT 127.0.0.28:{private.port} HTTP/1.1\r\n\r\n".encode())
        assert refused.startswith(b"HTTP/1.1 403")

        plain = ask(guard, f"GET {allowed.base}/hello HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert plain.startswith(b"HTTP/1.1 200") and b"hello through the tunnel" in plain
        assert ask(guard, f"GET {private.base}/hello HTTP/1.1\r\n\r\n".encode()).startswith(b"HTTP/1.1 403")
        assert ask(guard, b"GET ftp://127.0.0.27/x HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 400")
        assert [reason for _, reason in guard.refused] == ["private_address", "private_address"]
    assert private.requests == []  # nothing reached it
    assert [path for path, _ in allowed.requests] == ["/hello", "/hello"]


def test_in_tests_the_browser_resolves_no_name_but_localhost():
    from downloader.browser import open_browser
    from downloader.config import browser_options_from_settings, egress_guard_from_settings

    with open_browser(browser_options_from_settings()) as driver:
        driver.get("chrome://version")
        command_line = driver.find_element("id", "command_line").text
    assert "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.*" in command_line

    with egress_guard_from_settings() as guard:  # in tests: nothing but loopback, no name looked up
        looked_up = []
        guard._server.resolver = lambda host, port: looked_up.append(host) or ["127.0.0.1"]
        assert ask(guard, b"CONNECT accounts.google.com:443 HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 403")
        assert guard.refused == [("https://accounts.google.com:443/", "not_loopback")] and looked_up == []
