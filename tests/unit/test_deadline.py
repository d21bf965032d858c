"""probes.deadline bounds a whole exchange, not each read (real sockets on loopback)."""
from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from probes.deadline import DeadlineExceeded, deadline
from probes.errors import CouldNotRun


@pytest.fixture
def trickler() -> Iterator[tuple[str, int]]:
    """A server that sends one byte every 0.1 s forever: no read ever times out."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                while not stop.is_set():
                    try:
                        conn.sendall(b"2")
                    except OSError:
                        break
                    time.sleep(0.1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[:2]
    stop.set()
    thread.join(2)
    server.close()


def _read_forever(address: tuple[str, int], register=None) -> None:
    with socket.create_connection(address, timeout=5) as sock:
        if register:
            register(sock)
        while sock.recv(1):
            pass


def test_trickle_is_cut_at_the_deadline(trickler):
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as info:
        with deadline(0.5, f"127.0.0.1:{trickler[1]}", "banner"):
            _read_forever(trickler)
    elapsed = time.monotonic() - started
    assert elapsed < 1.5, elapsed
    assert isinstance(info.value, CouldNotRun)
    assert str(info.value) == (f"could not run: 127.0.0.1:{trickler[1]}: banner: "
                               "no complete answer within 0.5 s")


def test_swallowed_deadline_fires_again(trickler):
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded), deadline(0.3, "x", "y"):
        try:
            _read_forever(trickler)
        except Exception:  # noqa: BLE001 - a library that swallows everything
            pass
        _read_forever(trickler)
    assert time.monotonic() - started < 1.5


def test_outer_timer_is_kept_and_rearmed():
    fired: list[float] = []
    previous = signal.signal(signal.SIGALRM, lambda *_: fired.append(time.monotonic()))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.6)
        with deadline(5, "x", "y"):
            pass
        delay, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 0 < delay <= 0.6
        time.sleep(0.8)
        assert fired, "the outer timer must still fire after the deadline block"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_outer_timer_expiring_first_runs_its_own_handler(trickler):
    class Outer(Exception):
        pass

    def outer(*_):
        raise Outer()

    previous = signal.signal(signal.SIGALRM, outer)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(Outer), deadline(5, "x", "y"):
            _read_forever(trickler)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_worker_thread_uses_the_watchdog(trickler):
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            with deadline(0.4, "x", "y") as current:
                _read_forever(trickler, register=current.watch)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            outcome.append(exc)

    started = time.monotonic()
    thread = threading.Thread(target=run)
    thread.start()
    thread.join(3)
    assert time.monotonic() - started < 1.5
    assert outcome and isinstance(outcome[0], DeadlineExceeded)


def test_fast_block_is_untouched():
    before = signal.getitimer(signal.ITIMER_REAL)[0]    # pytest-timeout's own timer, if any
    with deadline(1, "x", "y") as current:
        value = 42
    assert value == 42 and not current.fired
    after = signal.getitimer(signal.ITIMER_REAL)[0]
    assert (after == 0.0) if before == 0.0 else (0 < after <= before)


def test_remaining_raises_after_expiry():
    with pytest.raises(DeadlineExceeded), deadline(0.1, "x", "y") as current:
        time.sleep(0.05)
        assert 0 < current.remaining() <= 0.1
        try:
            time.sleep(0.3)
        except DeadlineExceeded:
            pass
        current.remaining()


def test_non_positive_deadline_is_a_programming_error():
    with pytest.raises(ValueError), deadline(0, "x", "y"):
        pass
