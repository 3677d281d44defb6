"""Submission limits cannot be dodged: an IPv6 client is limited per /64, every
spelling of a mailbox is one mailbox, and a busy cache never forgets a live counter."""

from __future__ import annotations

import pytest

from jobs.lib.mailboxes import mailbox_key
from jobs.lib.ratelimit import allow, client_key
from tests.factories import good_post

pytestmark = pytest.mark.django_db(databases=["default", "cassandra"])


def post_from(client, address: str, data: dict | None = None) -> int:
    """An (invalid) post from ``address``: it counts against the address all the same."""
    return client.post("/", data or {}, REMOTE_ADDR=address).status_code


def test_clients_at_their_limit_stay_refused_while_400_others_post(client, settings):
    settings.IMAGEDL_SUBMIT_RATE_PER_IP = "1/h"
    limited = [f"203.0.113.{n}" for n in range(1, 11)]
    assert [post_from(client, a) for a in limited] == [200] * 10
    assert [post_from(client, a) for a in limited] == [429] * 10
    for n in range(400):  # fresh clients, half of them IPv6 (each in its own /64)
        other = f"198.51.{100 + n // 250}.{n % 250}" if n % 2 else f"2001:db8:{n:x}::1"
        assert post_from(client, other) == 200
    assert [post_from(client, a) for a in limited] == [429] * 10


def test_an_ipv6_client_is_limited_per_64(client, settings):
    settings.IMAGEDL_SUBMIT_RATE_PER_IP = "2/h"
    same_64 = ["2001:db8:1:2::1", "2001:db8:1:2::abcd", "2001:db8:1:2:ffff:ffff:ffff:9", "2001:DB8:1:2::7"]
    assert [post_from(client, a) for a in same_64] == [200, 200, 429, 429]
    assert post_from(client, "2001:db8:1:3::1") == 200  # the next /64 is someone else
    assert client_key("::ffff:198.51.100.7") == client_key("198.51.100.7") == "198.51.100.7"
    assert client_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"


@pytest.mark.parametrize(
    "spelling",
    [
        "ada@example.org",
        "ADA@Example.ORG",
        '"ada"@example.org',
        '"a\\da"@example.org',
        '"ada+news"@example.org',
        "ada+news@example.org",
        "ada@example.org.",
        " ada@example.org ",
    ],
)
def test_every_spelling_of_a_mailbox_is_one_key(spelling):
    assert mailbox_key(spelling) == "ada@example.org"


def test_international_and_dotless_spellings():
    assert mailbox_key("ada@bücher.example") == mailbox_key("ada@xn--bcher-kva.example")
    assert mailbox_key("A.Da+x@googlemail.com") == mailbox_key("ada@gmail.com") == "ada@gmail.com"
    assert mailbox_key("a.da@example.org") != mailbox_key("ada@example.org")  # dots count elsewhere


def test_a_quoted_local_part_buys_no_new_allowance(client, cassandra_db, settings):
    settings.IMAGEDL_SUBMIT_RATE_PER_EMAIL = "1/h"
    first = client.post("/", good_post(email="busy@example.org"))
    assert first.status_code == 302
    for spelling in ('"busy"@example.org', '"busy+2"@example.org', "BUSY@example.org"):
        assert client.post("/", good_post(email=spelling)).status_code == 429, spelling


def test_counts_are_exact_with_a_cache_that_increments(settings):
    # The path Redis takes (add, then an atomic incr), here on the local-memory cache.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    }
    answers = [allow("ip", "198.51.100.1", (3, 3600)) for _ in range(5)]
    assert answers == [True, True, True, False, False]
