"""The latency relay: delays each direction, counts turns and sequential waves, stays local."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from zenml_collab.testing.latency import LatencyRelay, WaveClock


@pytest.fixture
def echo_server() -> Iterator[tuple[str, int]]:
    """A line echo server on loopback: answers every line with the same line."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn, conn.makefile("rwb") as stream:
            for line in stream:
                stream.write(line)
                stream.flush()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[:2]
    stop.set()
    thread.join()
    listener.close()


def exchange(stream: io.BufferedRWPair[Any, Any], payload: bytes = b"ping\n") -> bytes:
    stream.write(payload)
    stream.flush()
    return stream.readline()


def test_each_request_response_costs_one_turn_and_two_one_way_delays(
        echo_server: tuple[str, int]) -> None:
    with LatencyRelay(echo_server, delay_ms=20, handshake_rtts=0) as relay:
        with socket.create_connection(relay.address) as conn, conn.makefile("rwb") as stream:
            t0 = time.perf_counter()
            for _ in range(3):
                assert exchange(stream) == b"ping\n"
            elapsed = time.perf_counter() - t0
        stats = relay.stats
    assert elapsed >= 3 * 2 * 0.020
    assert stats.turns == 3
    assert stats.waves == 3
    assert stats.connections == 1
    assert stats.bytes_up == stats.bytes_down == 15


def test_parallel_requests_are_many_turns_but_one_wave(echo_server: tuple[str, int]) -> None:
    with LatencyRelay(echo_server, delay_ms=30, handshake_rtts=0) as relay:
        conns = [socket.create_connection(relay.address) for _ in range(6)]
        streams = [c.makefile("rwb") for c in conns]
        try:
            relay.reset()
            with ThreadPoolExecutor(6) as pool:
                answers = list(pool.map(exchange, streams))
            stats = relay.stats
        finally:
            for s, c in zip(streams, conns, strict=True):
                s.close()
                c.close()
    assert answers == [b"ping\n"] * 6
    assert stats.turns == 6
    assert stats.waves == 1


def test_a_new_connection_pays_its_handshake_round_trips(echo_server: tuple[str, int]) -> None:
    with LatencyRelay(echo_server, delay_ms=15, handshake_rtts=2) as relay:
        t0 = time.perf_counter()
        with socket.create_connection(relay.address) as conn, conn.makefile("rwb") as stream:
            exchange(stream)
            first = time.perf_counter() - t0
    assert first >= (2 + 1) * 2 * 0.015


def test_the_bandwidth_cap_spaces_out_large_transfers(echo_server: tuple[str, int]) -> None:
    payload = b"x" * 99_999 + b"\n"  # 100 kB each way at 8 Mbit/s: >= 0.1 s each way
    with (LatencyRelay(echo_server, bandwidth_mbps=8, handshake_rtts=0) as relay,
          socket.create_connection(relay.address) as conn, conn.makefile("rwb") as stream):
        t0 = time.perf_counter()
        assert exchange(stream, payload) == payload
        elapsed = time.perf_counter() - t0
    assert elapsed >= 0.19


def test_delay_can_change_while_running_and_reset_zeroes_the_counts(
        echo_server: tuple[str, int]) -> None:
    with LatencyRelay(echo_server, handshake_rtts=0) as relay:
        with socket.create_connection(relay.address) as conn, conn.makefile("rwb") as stream:
            exchange(stream)
            assert relay.reset().turns == 1
            relay.set_delay(25)
            t0 = time.perf_counter()
            exchange(stream)
            assert time.perf_counter() - t0 >= 0.05
        assert relay.stats.turns == 1


def test_the_relay_refuses_a_non_loopback_upstream() -> None:
    with pytest.raises(ValueError, match="not a loopback address"):
        LatencyRelay(("8.8.8.8", 53))
    with pytest.raises(ValueError, match="not a loopback address"):
        LatencyRelay(("127.0.0.1", 1), listen_host="0.0.0.0")


def test_a_closed_upstream_closes_the_client_side() -> None:
    free = socket.create_server(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()  # nothing listens there now
    with (LatencyRelay(("127.0.0.1", port)) as relay,
          socket.create_connection(relay.address) as conn):
        conn.settimeout(5)
        assert conn.recv(10) == b""


def test_a_shared_clock_merges_overlapping_round_trips_of_two_relays(
        echo_server: tuple[str, int]) -> None:
    clock = WaveClock()
    with (LatencyRelay(echo_server, delay_ms=30, handshake_rtts=0, clock=clock) as a,
          LatencyRelay(echo_server, delay_ms=30, handshake_rtts=0, clock=clock) as b):
        conns = [socket.create_connection(r.address) for r in (a, b)]
        streams = [c.makefile("rwb") for c in conns]
        try:
            with ThreadPoolExecutor(2) as pool:
                list(pool.map(exchange, streams))
            for stream in streams:  # then one after the other: two more waves
                exchange(stream)
        finally:
            for s, c in zip(streams, conns, strict=True):
                s.close()
                c.close()
        assert (a.stats.waves, b.stats.waves) == (2, 2)
    assert clock.waves == 3
