"""A TCP relay that puts a service at a distance: one-way delay, jitter, bandwidth, counts.

Benchmarks and tests place it in front of MariaDB and fake-gcs-server to see what a member
20-100 ms from Cloud SQL and GCS sees, and to count what matters there: round trips.

>>> with LatencyRelay(("127.0.0.1", 3306), delay_ms=50) as relay:   # doctest: +SKIP
...     engine = create_engine(f"mysql+pymysql://root@127.0.0.1:{relay.port}/db")
...     relay.reset()
...     ...                                     # the work to measure
...     print(relay.stats.turns, relay.stats.waves)

What it models, per connection and direction: every chunk is delivered ``delay_ms`` (plus up
to ``jitter_ms``, never reordered) after the relay read it, and no faster than
``bandwidth_mbps`` allows. A new connection also pays ``handshake_rtts`` round trips before
its first byte reaches the server (1 for TCP; 2-3 with TLS), as it would over a real network.

Counts (:class:`RelayStats`):

* ``turns``: per connection, the times the traffic flips from client->server to
  server->client, summed over connections. One request/response exchange is one turn.
* ``waves``: the *sequential* round trips: the turns' in-flight intervals (first request byte
  to first response byte) merged where they overlap. Ten requests sent at once on ten
  connections are ten turns but one wave; this is what the member waits for.
* bytes each way and connections opened.

Loopback only, on both sides, and bounded: at most ``max_connections`` at once and at most
``_QUEUE_CHUNKS`` chunks queued per direction (reading pauses until the delayed ones leave).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
import socket
import threading
import time
from dataclasses import dataclass
from types import TracebackType

_CHUNK = 64 * 1024
_QUEUE_CHUNKS = 256
_CLIENT, _SERVER = "c", "s"


class WaveClock:
    """Counts sequential round trips; share one between relays to merge their overlaps.

    A wave starts when a request leaves with nothing else in flight and lasts until the last
    overlapping response reached its client.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = 0
        self.waves = 0

    def begin(self) -> None:
        with self._lock:
            if self._open == 0:
                self.waves += 1
            self._open += 1

    def end(self) -> None:
        with self._lock:
            self._open = max(0, self._open - 1)

    def reset(self) -> int:
        with self._lock:
            before, self.waves = self.waves, 0
            return before


@dataclass
class RelayStats:
    """What went through the relay since the last :meth:`LatencyRelay.reset`."""

    turns: int = 0
    waves: int = 0
    connections: int = 0
    bytes_up: int = 0  # client -> server
    bytes_down: int = 0  # server -> client

    def copy(self) -> RelayStats:
        return RelayStats(self.turns, self.waves, self.connections, self.bytes_up,
                          self.bytes_down)


def _require_loopback(host: str, what: str) -> None:
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror as exc:
        raise ValueError(f"{what} {host!r} does not resolve: {exc}") from None
    for info in infos:
        if not ipaddress.ip_address(info[4][0]).is_loopback:
            raise ValueError(f"{what} {host!r} is not a loopback address: the relay is for "
                             "tests and benchmarks on this machine only")


class LatencyRelay:
    """Relay ``127.0.0.1:<port>`` to ``upstream`` with a delay; a context manager.

    The relay runs its own event loop in a daemon thread, so blocking clients (pymysql,
    requests) in the calling thread work unchanged. ``delay_ms`` may be changed while it runs
    (:meth:`set_delay`); connections opened afterwards and chunks read afterwards use it.
    """

    def __init__(self, upstream: tuple[str, int], *, delay_ms: float = 0.0,
                 jitter_ms: float = 0.0, bandwidth_mbps: float | None = None,
                 handshake_rtts: int = 1, listen_host: str = "127.0.0.1", listen_port: int = 0,
                 max_connections: int = 256, seed: int | None = None,
                 clock: WaveClock | None = None) -> None:
        _require_loopback(upstream[0], "upstream")
        _require_loopback(listen_host, "listen address")
        if delay_ms < 0 or jitter_ms < 0 or handshake_rtts < 0:
            raise ValueError("delay, jitter and handshake round trips cannot be negative")
        if bandwidth_mbps is not None and bandwidth_mbps <= 0:
            raise ValueError("bandwidth_mbps must be positive (or None for no cap)")
        self.upstream = upstream
        self.delay_ms = delay_ms
        self.jitter_ms = jitter_ms
        self.bandwidth_mbps = bandwidth_mbps
        self.handshake_rtts = handshake_rtts
        self.max_connections = max_connections
        self._listen = (listen_host, listen_port)
        self._random = random.Random(seed)
        self._stats = RelayStats()
        self._lock = threading.Lock()
        self.clock = clock  # shared sequential-wave count across relays, if given
        self._wave_open = 0  # requests in flight now (for merging overlapping turns)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._slots: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    # -- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> LatencyRelay:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        return self._listen[0], self.port

    def start(self) -> None:
        if self._thread is not None:
            return
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._open())
            except BaseException as exc:  # reported to start()'s caller below
                failure.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._close())
            self._loop.close()

        self._thread = threading.Thread(target=serve, name="latency-relay", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            self._thread.join(5)
            self._thread = None
            raise failure[0]

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = None

    async def _open(self) -> None:
        self._slots = asyncio.Semaphore(self.max_connections)
        self._server = await asyncio.start_server(self._accept, self._listen[0], self._listen[1])
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- settings and counts ----------------------------------------------------------------
    def set_delay(self, delay_ms: float, jitter_ms: float | None = None) -> None:
        if delay_ms < 0:
            raise ValueError("delay cannot be negative")
        self.delay_ms = delay_ms
        if jitter_ms is not None:
            self.jitter_ms = jitter_ms

    @property
    def stats(self) -> RelayStats:
        with self._lock:
            return self._stats.copy()

    def reset(self) -> RelayStats:
        """Zero the counts; returns the counts before."""
        with self._lock:
            before, self._stats = self._stats.copy(), RelayStats()
            return before

    def _on_data(self, conn: _ConnState, side: str, size: int) -> None:
        with self._lock:
            if side == _CLIENT:
                self._stats.bytes_up += size
                if conn.last != _CLIENT:
                    conn.last = _CLIENT
                    conn.awaiting = True
                    if self._wave_open == 0:
                        self._stats.waves += 1  # nothing else in flight: a new sequential wave
                    self._wave_open += 1
                    if self.clock is not None:
                        self.clock.begin()
            else:
                self._stats.bytes_down += size
                if conn.last == _CLIENT:
                    self._stats.turns += 1
                    # The client sees the answer one delay later: until then it is waiting.
                    if self._loop is not None and conn.awaiting:
                        conn.awaiting = False
                        self._loop.call_later(self._delay_s(), self._close_request)
                conn.last = _SERVER

    def _end_request(self, conn: _ConnState) -> None:
        if conn.awaiting:
            conn.awaiting = False
            self._close_request()

    def _close_request(self) -> None:
        with self._lock:
            self._wave_open -= 1
        if self.clock is not None:
            self.clock.end()

    # -- relaying ---------------------------------------------------------------------------
    def _delay_s(self) -> float:
        extra = self._random.uniform(0, self.jitter_ms) if self.jitter_ms else 0.0
        return (self.delay_ms + extra) / 1000.0

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Swallow the cancellation of stop(): asyncio (3.11) would log a cancelled
        # connection handler as an error.
        with contextlib.suppress(asyncio.CancelledError):
            await self._relay(reader, writer)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None and self._slots is not None
        self._tasks.add(task)
        conn = _ConnState()
        try:
            async with self._slots:
                with self._lock:
                    self._stats.connections += 1
                try:
                    up_reader, up_writer = await asyncio.open_connection(*self.upstream)
                except OSError:
                    return
                try:
                    # A real connection costs handshake round trips before its first byte lands.
                    opened = time.monotonic() + self.handshake_rtts * 2 * self.delay_ms / 1000.0
                    await asyncio.gather(
                        self._pump(reader, up_writer, conn, _CLIENT, opened),
                        self._pump(up_reader, writer, conn, _SERVER, 0.0),
                        return_exceptions=True)
                finally:
                    await _close(up_writer)
        finally:
            self._end_request(conn)
            self._tasks.discard(task)
            await _close(writer)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                    conn: _ConnState, side: str, not_before: float) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(_QUEUE_CHUNKS)
        deliver = asyncio.ensure_future(self._deliver(queue, dst))
        last_due = 0.0
        try:
            while True:
                data = await src.read(_CHUNK)
                now = time.monotonic()
                if not data:
                    await queue.put((max(now, last_due), b""))
                    break
                self._on_data(conn, side, len(data))
                due = max(max(now, not_before) + self._delay_s(), last_due)  # never reordered
                if self.bandwidth_mbps:
                    due += len(data) * 8 / (self.bandwidth_mbps * 1e6)
                last_due = due
                await queue.put((due, data))  # waits when the queue is full: bounded memory
            await deliver
        finally:
            if not deliver.done():
                deliver.cancel()

    @staticmethod
    async def _deliver(queue: asyncio.Queue[tuple[float, bytes]],
                       dst: asyncio.StreamWriter) -> None:
        try:
            while True:
                due, data = await queue.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    if dst.can_write_eof():
                        dst.write_eof()
                    return
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            return


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
        await writer.wait_closed()


@dataclass
class _ConnState:
    last: str = ""  # the side that sent last
    awaiting: bool = False  # a request is in flight (counted in the open wave)
