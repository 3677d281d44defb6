"""An open-loop HTTP load generator: requests offered at a fixed rate, whatever the
server's answers, each one's latency counted from the moment it was due.

A closed loop (wrk, or clients that send their next request when the last one is
answered) slows down with the server, so the requests a stall held back are never
sent and the stall shows in a handful of latencies instead of in every request that
should have gone out meanwhile ("coordinated omission"). Here request ``i`` is due at
``start + i / rate``; it goes out on an idle keep-alive connection (or a new one, up to
``max_connections``) and its latency runs from its due time to the end of its answer,
so a late send (the server's stall, all connections busy, or this client falling
behind) is counted against the request. Standard library only (asyncio), HTTP/1.1
over loopback: Content-Length and chunked bodies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

Request = Callable[[int], bytes]  # request number -> the whole HTTP request


@dataclass
class OpenLoopResult:
    rate: float  # offered, requests/s
    seconds: float
    latencies: list[float] = field(default_factory=list)  # seconds, answered requests
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0  # no answer (connection closed, timeout)
    error_kinds: dict[str, int] = field(default_factory=dict)
    connections: int = 0  # opened in all
    late_sends: int = 0  # sent more than 5 ms after their due time
    elapsed: float = 0.0  # from the first due time to the last answer

    def count(self, status: int) -> int:
        return self.statuses.get(status, 0)

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]

    def text(self) -> str:
        answered = len(self.latencies)
        achieved = answered / self.elapsed if self.elapsed else 0.0
        ms = [self.percentile(f) * 1000 for f in (0.5, 0.99, 0.999)]
        return (
            f"offered {self.rate:7.1f}/s achieved {achieved:7.1f}/s  p50 {ms[0]:6.1f}ms  p99 {ms[1]:6.1f}ms  "
            f"p99.9 {ms[2]:6.1f}ms  max {max(self.latencies, default=0) * 1000:6.1f}ms  "
            f"errors {self.errors}{self.error_kinds or ''}  connections {self.connections}  late sends {self.late_sends}"
        )


async def _response_read(reader: asyncio.StreamReader) -> int:
    """One response off ``reader``: its status (the body is read and dropped)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    if headers.get("connection", "").lower() == "close":
        raise ConnectionResetError("the server closed the connection")
    return status


async def open_loop_run(
    host: str,
    port: int,
    rate: float,
    seconds: float,
    request: Request,
    max_connections: int = 512,
    timeout: float = 30.0,
) -> OpenLoopResult:
    """Offer ``rate`` requests a second for ``seconds``; ``request(i)`` is the i-th."""
    result = OpenLoopResult(rate=rate, seconds=seconds)
    loop = asyncio.get_running_loop()
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    slots = asyncio.Semaphore(max_connections)
    tasks: set[asyncio.Task] = set()
    last_answer = [0.0]

    async def answer(number: int) -> int:
        """The status of request ``number``'s answer. A kept connection the server has
        closed meanwhile (its keep-alive timeout) fails before any answer: the request is
        sent again on a new connection, as HTTP clients do."""
        while idle:
            reader, writer = idle.pop()
            writer.write(request(number))
            try:
                status = await asyncio.wait_for(_response_read(reader), timeout)
            except (ConnectionError, asyncio.IncompleteReadError) as error:
                writer.close()
                if isinstance(error, asyncio.IncompleteReadError) and error.partial:
                    raise
                continue
            idle.append((reader, writer))
            return status
        result.connections += 1
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(request(number))
        try:
            status = await asyncio.wait_for(_response_read(reader), timeout)
        except BaseException:
            writer.close()
            raise
        idle.append((reader, writer))
        return status

    async def one(number: int, due: float) -> None:
        async with slots:
            if loop.time() - due > 0.005:
                result.late_sends += 1
            try:
                status = await answer(number)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as error:
                result.errors += 1
                kind = type(error).__name__
                result.error_kinds[kind] = result.error_kinds.get(kind, 0) + 1
                return
            now = loop.time()
            result.latencies.append(now - due)
            result.statuses[status] = result.statuses.get(status, 0) + 1
            last_answer[0] = max(last_answer[0], now)

    total = int(rate * seconds)
    start = loop.time() + 0.05
    sent = 0
    while sent < total:
        now = loop.time()
        while sent < total and start + sent / rate <= now:  # every request due by now
            task = asyncio.create_task(one(sent, start + sent / rate))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += 1
        if sent < total:
            await asyncio.sleep(max(0.0, start + sent / rate - loop.time()))
    if tasks:
        await asyncio.wait(tasks)
    result.elapsed = max(last_answer[0] - start, 1e-9)
    for _reader, writer in idle:
        writer.close()
    return result


def open_loop(
    host: str, port: int, rate: float, seconds: float, request: Request, **options
) -> OpenLoopResult:
    """``open_loop_run`` in an event loop of its own."""
    return asyncio.run(open_loop_run(host, port, rate, seconds, request, **options))


def request_get(host: str, path: str, headers: dict[str, str] | None = None) -> bytes:
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()


def request_post(host: str, path: str, body: str, headers: dict[str, str]) -> bytes:
    data = body.encode()
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Content-Length: {len(data)}\r\n\r\n".encode() + data
    )


if __name__ == "__main__":  # a quick look: python -m bench.open_loop PORT RATE SECONDS [PATH]
    import sys

    port, rate, seconds = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    path = sys.argv[4] if len(sys.argv) > 4 else "/"
    print(open_loop("127.0.0.1", port, rate, seconds, lambda n: request_get("127.0.0.1", path)).text())
