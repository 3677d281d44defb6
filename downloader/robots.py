"""robots.txt as RFC 9309 says, read with protego (a maintained parser: wildcards,
``$``, longest-match precedence, which ``urllib.robotparser`` lacks).

What the fetch of a robots.txt decides, before any rule is read (RFC 9309, 2.3.1):
a 2xx is parsed (only its first ``ROBOTS_MAX_BYTES``); 4xx means no robots.txt, so
everything is allowed; a 5xx, a 429 or a robots.txt that cannot be reached at all
(refused, timed out, no such host) means the site is unavailable, so everything is
disallowed for that host (reason ``robots_disallowed``).
"""

from __future__ import annotations

from protego import Protego

ROBOTS_MAX_BYTES = 500 * 1024  # RFC 9309 2.5: crawlers must read at least 500 KiB
ALLOWED_WITHOUT_RULES = ("empty",)  # a 200 with nothing in it: no rules


def fetch_allows(reason: str, status: int) -> bool:
    """What a robots.txt that could not be read as rules says: a 4xx (``status``, or
    its ``http_4xx`` reason) allows everything, anything else (5xx, 429, unreachable,
    refused by the address rules) allows nothing."""
    if reason in ALLOWED_WITHOUT_RULES:
        return True
    code = status or (int(reason[5:]) if reason.startswith("http_") and reason[5:].isdigit() else 0)
    return 400 <= code < 500 and code != 429


def rules_allow(text: str, url: str, agent: str) -> bool:
    """What the rules of a robots.txt say about ``agent`` fetching ``url``."""
    return Protego.parse(text).can_fetch(url, agent)
