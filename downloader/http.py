"""The one HTTP chokepoint for every outgoing image request.

Everything that makes fetching a stranger's URL safe and polite lives here:
http/https only; the host is resolved here and every address checked (loopback,
private, link-local, reserved ... are refused unless the FetchPolicy allows them),
and the connection goes to the address that was checked, so DNS cannot change its
answer in between; every redirect hop is checked again; connect, read and total
timeouts; a byte cap; retries with backoff on connection errors, 5xx and 429
(honouring Retry-After); pooled keep-alive connections; a global and a per-host
limit on requests in flight. Bodies stream to a file, hashed on the way. A publisher
that opts out (``X-Robots-Tag: noai`` or ``noimageai``, for every robot or for imagedl)
is refused as ``publisher_opt_out`` before its body is read.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import urllib3

# The address rule lives in downloader.addresses; re-exported for callers of the chokepoint.
from downloader.addresses import address_allowed as address_allowed
from downloader.addresses import is_loopback as is_loopback
from downloader.deadlines import WatchedHTTPConnection, WatchedHTTPSConnection, watchdog

Resolver = Callable[[str, int], list[str]]
# A body is read this much at a time at most (one receive: what the socket holds): most
# images come in one or two reads, each hashed and written at once.
CHUNK = 256 * 1024
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
IMAGE_ACCEPT = "image/avif,image/webp,image/png,image/jpeg,image/gif,image/*;q=0.8,*/*;q=0.1"
DEFAULT_USER_AGENT = "Mozilla/5.0 (compatible; imagedl/0.1)"
DEFAULT_CONCURRENCY = 32  # requests in flight for one Fetcher
DEFAULT_PER_HOST = 4  # ... and to one host
ROBOT_NAME = "imagedl"  # how X-Robots-Tag, meta robots and robots.txt address this service
OPT_OUT_DIRECTIVES = frozenset({"noai", "noimageai"})
# urllib3 retries nothing, follows no redirect (both are done here): one shared value,
# not a Retry made by urllib3 for every request.
NO_RETRIES = urllib3.Retry(total=False, redirect=False)
# X-Robots-Tag directives that carry a value after a colon (not a robot's name).
_VALUED_DIRECTIVES = frozenset({"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"})


def robots_tag_opts_out(values: Iterable[str]) -> bool:
    """True when X-Robots-Tag header values ask every robot, or imagedl, for no AI use
    (``noai``, ``noimageai``); ``otherbot: noai`` is for another robot."""
    for value in values:
        robot = None  # directives before any "name:" are for every robot
        for token in value.lower().split(","):
            token = token.strip()
            head, colon, rest = token.partition(":")
            if colon and head.strip() not in _VALUED_DIRECTIVES:
                robot, token = head.strip(), rest.strip()
            if token in OPT_OUT_DIRECTIVES and robot in (None, ROBOT_NAME):
                return True
    return False


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


@dataclass(frozen=True)
class FetchPolicy:
    """How each request goes: address rules, timeouts, caps, retries, who we say we are.
    ``downloader.config.fetch_policy_from_settings`` makes one from IMAGEDL_* settings."""

    allow_private: bool = False
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    total_timeout: float = 30.0
    max_bytes: int = 25 * 1024 * 1024
    max_redirects: int = 5
    max_retries: int = 2
    backoff_base: float = 0.5
    max_retry_after: float = 10.0
    user_agent: str = DEFAULT_USER_AGENT
    # Networks allowed even when private addresses are not (e.g. an internal mirror).
    extra_allowed: tuple[str, ...] = ()
    respect_noai: bool = True  # refuse responses whose X-Robots-Tag opts out of AI use
    accept: str = IMAGE_ACCEPT
    # Keep the first max_bytes of a longer body instead of refusing it (robots.txt:
    # a parser reads a prefix).
    keep_prefix: bool = False


@dataclass
class FetchResult:
    ok: bool
    url: str
    reason: str = ""  # a short stable code when not ok
    final_url: str = ""
    status: int = 0
    bytes: int = 0
    sha256: str = ""
    content_type: str = ""
    attempts: int = 0


class Refused(Exception):
    """The request is refused before any connection (scheme, address, redirect)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Retryable(Exception):
    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


def host_key(url: str) -> str:
    """The politeness key of a URL: its host name, lower case."""
    return (urlsplit(url).hostname or "").lower()


def _retry_after(value: str | None, cap: float) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), cap)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, min(when.timestamp() - time.time(), cap))


def resolve_checked(
    url: str, policy: FetchPolicy, resolver: Resolver = system_resolver
) -> tuple[str, str, int, str, str]:
    """Scheme, host, port, the checked address to connect to, and the request path of
    ``url``; raises Refused (before any connection) when it must not be fetched."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise Refused("bad_scheme")
    host = (parts.hostname or "").lower()
    if not host:
        raise Refused("bad_url")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise Refused("bad_url") from None
    try:
        addresses = resolver(host, port)
    except (OSError, UnicodeError):
        raise Refused("dns_error") from None
    if not addresses:
        raise Refused("dns_error")
    for address in addresses:
        if not address_allowed(address, policy.allow_private, policy.extra_allowed):
            raise Refused("private_address")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return scheme, host, port, addresses[0], path


class Fetcher:
    """Fetches URLs to files under the policy; thread-safe; one per download request or command."""

    def __init__(
        self,
        policy: FetchPolicy | None = None,
        *,
        concurrency: int | None = None,
        per_host: int | None = None,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.policy = policy or FetchPolicy()
        self.concurrency = concurrency or DEFAULT_CONCURRENCY
        self.per_host = per_host or DEFAULT_PER_HOST
        self.resolver = resolver
        self._global = threading.BoundedSemaphore(self.concurrency)
        self._hosts: dict[str, threading.BoundedSemaphore] = {}
        self._pools: dict[tuple, urllib3.HTTPConnectionPool] = {}
        self._lock = threading.Lock()
        self.connections_opened = 0  # counted by tests of the address guard

    # -- limits ---------------------------------------------------------------------

    def _host_slot(self, host: str) -> threading.BoundedSemaphore:
        with self._lock:
            slot = self._hosts.get(host)
            if slot is None:
                slot = self._hosts[host] = threading.BoundedSemaphore(self.per_host)
            return slot

    # -- connections ----------------------------------------------------------------

    def _pool(self, scheme: str, host: str, port: int, address: str) -> urllib3.HTTPConnectionPool:
        key = (scheme, host, port, address)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                timeout = urllib3.Timeout(connect=self.policy.connect_timeout, read=self.policy.read_timeout)
                common = dict(maxsize=self.per_host, block=False, timeout=timeout, retries=NO_RETRIES)
                if scheme == "https":
                    pool = urllib3.HTTPSConnectionPool(
                        address, port, server_hostname=host, assert_hostname=host, **common
                    )
                    pool.ConnectionCls = WatchedHTTPSConnection
                else:
                    pool = urllib3.HTTPConnectionPool(address, port, **common)
                    pool.ConnectionCls = WatchedHTTPConnection
                self._pools[key] = pool
            return pool

    # -- the request ----------------------------------------------------------------

    def fetch(self, url: str, dest: Path, *, stop: threading.Event | None = None) -> FetchResult:
        """Download ``url`` into ``dest``; never raises for network trouble."""
        slot = _HeldSlot(self, host_key(url))
        with self._global:
            slot.take()
            # The total timeout runs from here, not from the wait for a slot; the
            # watchdog cuts the connection when it is over, whatever the server does.
            deadline = time.monotonic() + self.policy.total_timeout
            watch = watchdog().watch(deadline)
            try:
                return self._attempts(url, dest, deadline, stop, slot)
            finally:
                watchdog().release(watch)
                slot.give_back()

    def _attempts(
        self, url: str, dest: Path, deadline: float, stop: threading.Event | None, slot: _HeldSlot
    ) -> FetchResult:
        """Try, and try again after connection errors, 5xx and 429, within the deadline."""
        attempts = 0
        while True:
            attempts += 1
            try:
                result = self._fetch_once(url, dest, deadline, stop, slot)
                result.attempts = attempts
                return result
            except Refused as exc:
                dest.unlink(missing_ok=True)
                return FetchResult(False, url, exc.reason, attempts=attempts)
            except _Retryable as exc:
                dest.unlink(missing_ok=True)
                wait = exc.wait if exc.wait is not None else self.policy.backoff_base * 2 ** (attempts - 1)
                if attempts > self.policy.max_retries or time.monotonic() + wait >= deadline:
                    return FetchResult(False, url, exc.reason, attempts=attempts)
                if stop is not None and stop.wait(wait):
                    return FetchResult(False, url, "stopped", attempts=attempts)
                if stop is None:
                    time.sleep(wait)

    def _fetch_once(
        self, url: str, dest: Path, deadline: float, stop: threading.Event | None, slot: _HeldSlot
    ) -> FetchResult:
        """One try: follow up to max_redirects hops (each checked), then stream the body."""
        current = url
        for _hop in range(self.policy.max_redirects + 1):
            response = self._request(current, deadline, slot)
            if response is None:
                return FetchResult(False, url, "timeout")
            streamed = False
            try:
                status = response.status
                if status in REDIRECT_STATUSES:
                    location = response.headers.get("Location")
                    if not location:
                        return FetchResult(False, url, "bad_redirect", status=status)
                    current = urljoin(current, location)
                    continue
                if status == 429 or status >= 500:
                    wait = _retry_after(response.headers.get("Retry-After"), self.policy.max_retry_after)
                    raise _Retryable("http_429" if status == 429 else "http_5xx", wait)
                if status != 200:
                    return FetchResult(False, url, f"http_{status}", status=status)
                if self.policy.respect_noai and robots_tag_opts_out(response.headers.getlist("X-Robots-Tag")):
                    return FetchResult(False, url, "publisher_opt_out", status=status)
                streamed = True
                return self._stream(response, url, current, dest, deadline, stop)
            finally:
                if not streamed:
                    self._finish_small(response)
                response.release_conn()
        return FetchResult(False, url, "too_many_redirects")

    def _request(self, url: str, deadline: float, slot: _HeldSlot) -> urllib3.BaseHTTPResponse | None:
        """Check ``url``'s address and send the GET (headers only are read); None when the
        deadline passed first. Raises Refused before any connection, _Retryable after."""
        scheme, host, port, address, path = resolve_checked(url, self.policy, self.resolver)
        if not slot.move_to(host, deadline):  # a redirect to another host waits for its slot
            return None
        pool = self._pool(scheme, host, port, address)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        headers = {
            "Host": host if port in (80, 443) else f"{host}:{port}",
            "User-Agent": self.policy.user_agent,
            "Accept": self.policy.accept,
            "Accept-Encoding": "identity",
        }
        self.connections_opened += 1
        try:
            return pool.urlopen(
                "GET",
                path,
                headers=headers,
                retries=NO_RETRIES,
                redirect=False,
                preload_content=False,
                assert_same_host=False,
                timeout=urllib3.Timeout(
                    connect=min(self.policy.connect_timeout, remaining),
                    read=min(self.policy.read_timeout, remaining),
                ),
            )
        except (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.ReadTimeoutError):
            raise _Retryable("timeout") from None
        except (urllib3.exceptions.HTTPError, OSError):
            late = time.monotonic() >= deadline  # the watchdog cut it
            raise _Retryable("timeout" if late else "connection_error") from None

    def _stream(self, response, url: str, final_url: str, dest: Path, deadline: float, stop) -> FetchResult:
        declared = response.headers.get("Content-Length")
        too_long = declared and declared.isdigit() and int(declared) > self.policy.max_bytes
        if too_long and not self.policy.keep_prefix:
            return FetchResult(False, url, "too_large", status=200)
        digest = hashlib.sha256()
        size = 0
        try:
            with open(dest, "wb") as out:
                while True:
                    if time.monotonic() > deadline:
                        raise _Abort("timeout")
                    if stop is not None and stop.is_set():
                        raise _Abort("stopped")
                    chunk = response.read1(CHUNK)
                    if not chunk:
                        break
                    room = self.policy.max_bytes - size
                    if len(chunk) > room and not self.policy.keep_prefix:
                        raise _Abort("too_large")
                    chunk = chunk[:room]
                    size += len(chunk)
                    digest.update(chunk)
                    out.write(chunk)
                    if self.policy.keep_prefix and size >= self.policy.max_bytes:
                        self._drop_connection(response)  # the rest stays unread
                        break
        except _Abort as exc:
            return self._discard(response, dest, url, exc.reason)
        except (urllib3.exceptions.ReadTimeoutError, TimeoutError):
            return self._discard(response, dest, url, "timeout")
        except (urllib3.exceptions.ProtocolError, urllib3.exceptions.HTTPError, OSError):
            late = time.monotonic() >= deadline  # the watchdog cut it
            return self._discard(response, dest, url, "timeout" if late else "truncated")
        if size == 0:
            dest.unlink(missing_ok=True)
            return FetchResult(False, url, "empty", status=200)
        return FetchResult(
            True,
            url,
            final_url=final_url,
            status=200,
            bytes=size,
            sha256=digest.hexdigest(),
            content_type=response.headers.get("Content-Type", ""),
        )

    @staticmethod
    def _finish_small(response) -> None:
        """Read a short unwanted body (redirects, errors) so the connection can be
        reused; close the connection instead when the body is large or slow."""
        length = response.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) <= 65536:
            try:
                response.read(int(length))
                response.read()  # lets http.client mark the response complete
                return
            except (urllib3.exceptions.HTTPError, OSError):
                pass
        connection = getattr(response, "connection", None)
        if connection is not None:
            connection.close()

    @staticmethod
    def _drop_connection(response) -> None:
        """The body was not read to its end: the connection must not go back to the
        pool with unread bytes on it."""
        connection = getattr(response, "connection", None)
        if connection is not None:
            connection.close()

    @classmethod
    def _discard(cls, response, dest: Path, url: str, reason: str) -> FetchResult:
        cls._drop_connection(response)
        dest.unlink(missing_ok=True)
        return FetchResult(False, url, reason, status=200)

    def close(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()


class _HeldSlot:
    """The per-host slot a download holds, for the host it is talking to now: a
    redirect to another host waits for a slot there. One slot is held at a time, so
    redirects that cross between hosts cannot deadlock."""

    def __init__(self, fetcher: Fetcher, host: str) -> None:
        self._fetcher = fetcher
        self.host = host
        self._held: threading.BoundedSemaphore | None = None

    def take(self, timeout: float | None = None) -> bool:
        semaphore = self._fetcher._host_slot(self.host)
        if not semaphore.acquire(timeout=timeout):
            return False
        self._held = semaphore
        return True

    def move_to(self, host: str, deadline: float) -> bool:
        if host == self.host and self._held is not None:
            return True
        self.give_back()
        self.host = host
        return self.take(max(0.0, deadline - time.monotonic()))

    def give_back(self) -> None:
        if self._held is not None:
            self._held.release()
            self._held = None


class _Abort(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- one POST to an address a stranger gave (webhooks) ----------------------------------

REPLY_CHARS = 200  # what is kept of a receiver's answer


@dataclass(frozen=True)
class PostResult:
    """The answer to ``post_checked``: a status (0 when none came), at most
    ``REPLY_CHARS`` of the body, the receiver's ``Retry-After`` in seconds, and a short
    reason code when no answer came (``private_address``, ``timeout``, ...)."""

    status: int = 0
    reply: str = ""
    retry_after: float | None = None
    reason: str = ""


def post_checked(
    url: str, body: bytes, headers: dict[str, str], policy: FetchPolicy, resolver: Resolver = system_resolver
) -> PostResult:
    """POST ``body`` once, under the same address rule as every download: resolved and
    checked here, connected to the checked address, no redirect followed, the total
    timeout enforced by the watchdog. Never raises for network trouble."""
    try:
        target = resolve_checked(url, policy, resolver)
    except Refused as exc:
        return PostResult(reason=exc.reason)
    deadline = time.monotonic() + policy.total_timeout
    watch = watchdog().watch(deadline)
    try:
        return _post_once(target, body, headers, policy)
    except (urllib3.exceptions.HTTPError, OSError):
        return PostResult(reason="timeout" if time.monotonic() >= deadline else "connection_error")
    finally:
        watchdog().release(watch)


def _post_once(
    target: tuple[str, str, int, str, str], body: bytes, headers: dict[str, str], policy: FetchPolicy
) -> PostResult:
    scheme, host, port, address, path = target
    timeout = urllib3.Timeout(connect=policy.connect_timeout, read=policy.read_timeout)
    if scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            address, port, server_hostname=host, assert_hostname=host, timeout=timeout, retries=False
        )
        pool.ConnectionCls = WatchedHTTPSConnection
    else:
        pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False)
        pool.ConnectionCls = WatchedHTTPConnection
    sent = {
        "Host": host if port in (80, 443) else f"{host}:{port}",
        "User-Agent": policy.user_agent,
        "Content-Type": "application/json",
        **headers,
    }
    try:
        response = pool.urlopen("POST", path, body=body, headers=sent, redirect=False, preload_content=False)
        try:
            reply = response.read(REPLY_CHARS * 4, decode_content=False).decode("utf-8", "replace")
        finally:
            response.release_conn()
        wait = _retry_after(response.headers.get("Retry-After"), 86400.0)
        return PostResult(status=response.status, reply=reply[:REPLY_CHARS], retry_after=wait)
    finally:
        pool.close()
