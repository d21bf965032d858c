"""One wall-clock deadline for a whole protocol exchange, whatever the library does inside.

Socket time-outs are per read: a server that trickles one byte a second, or sends an endless
``220-`` banner, never trips them, and a check then lives until pytest-timeout kills it minutes
later. Every probe step therefore runs inside :func:`deadline`, which bounds the *whole*
exchange:

- in the main thread (pytest and xdist workers run tests there, the commands too) with
  ``SIGALRM``: the handler raises :class:`DeadlineExceeded` out of whatever blocking call the
  library is in (smtplib, imaplib, httpx, redis-py, psycopg all let a non-``OSError`` exception
  through). If the library swallows it, the alarm fires again every 0.2 s until the block ends.
  An outer timer (pytest-timeout's own ``SIGALRM``, or an enclosing deadline) is kept: whichever
  expires first fires, and the outer one is re-armed on exit;
- in other threads (signals reach only the main thread) with a watchdog that shuts down the
  sockets the probe registered with :meth:`Deadline.watch`; the resulting ``OSError`` is turned
  into :class:`DeadlineExceeded` on the way out.

Callers that hand a time-out to a library or a subprocess use :meth:`Deadline.remaining`.
"""
from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from probes.errors import CouldNotRun

_REFIRE_S = 0.2


class DeadlineExceeded(CouldNotRun):
    """No complete answer within the deadline: the check could not run (an *error*)."""

    def __init__(self, endpoint: str, step: str, seconds: float) -> None:
        super().__init__(endpoint, step, f"no complete answer within {seconds:g} s")
        self.seconds = seconds


class Deadline:
    """The running deadline of one exchange (what :func:`deadline` yields)."""

    def __init__(self, seconds: float, endpoint: str, step: str) -> None:
        if seconds <= 0:
            raise ValueError(f"a deadline must be > 0 s, got {seconds}")
        self.seconds = seconds
        self.endpoint = endpoint
        self.step = step
        self.expires = time.monotonic() + seconds
        self._sockets: list[socket.socket] = []
        self.fired = False

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.expires

    def remaining(self, floor: float = 0.05) -> float:
        """Seconds left (at least ``floor``, so a library never reads 0 as "no time-out");
        raises :class:`DeadlineExceeded` once the deadline has passed."""
        left = self.expires - time.monotonic()
        if left <= 0:
            raise self.exceeded()
        return max(left, floor)

    def exceeded(self) -> DeadlineExceeded:
        return DeadlineExceeded(self.endpoint, self.step, self.seconds)

    def watch(self, sock: socket.socket | None) -> None:
        """Register a socket to shut down when the deadline passes (the watchdog's way to
        interrupt a blocking read outside the main thread)."""
        if sock is not None:
            self._sockets.append(sock)

    def _shutdown_sockets(self) -> None:
        for sock in self._sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@contextmanager
def deadline(seconds: float, endpoint: str, step: str = "exchange") -> Iterator[Deadline]:
    """Run the block under one wall-clock deadline of ``seconds`` for ``endpoint``/``step``.

    Raises :class:`DeadlineExceeded` (a :class:`~probes.errors.CouldNotRun`) when the block
    has not finished in time, within about 0.2 s of the deadline.
    """
    current = Deadline(seconds, endpoint, step)
    guard = _alarm if threading.current_thread() is threading.main_thread() else _watchdog
    try:
        with guard(current):
            yield current
    except DeadlineExceeded:
        raise
    except Exception as exc:
        # what a cut exchange raises (an OSError of a shut-down socket, a library's wrapper of
        # the alarm) is the deadline, not an answer
        if current.fired or current.expired:
            raise current.exceeded() from exc
        raise


@contextmanager
def _alarm(current: Deadline) -> Iterator[None]:
    previous_handler = signal.getsignal(signal.SIGALRM)
    outer_delay, outer_interval = signal.getitimer(signal.ITIMER_REAL)
    started = time.monotonic()
    outer_expires = started + outer_delay if outer_delay > 0 else None

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        if outer_expires is not None and now >= outer_expires and callable(previous_handler):
            previous_handler(signum, frame)       # the outer timer's turn (pytest-timeout)
            return
        if now >= current.expires:
            current.fired = True
            signal.setitimer(signal.ITIMER_REAL, _REFIRE_S)   # again, if this one is swallowed
            raise current.exceeded()
        signal.setitimer(signal.ITIMER_REAL, max(_first_expiry(current, outer_expires) - now,
                                                 1e-3))

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, max(_first_expiry(current, outer_expires) - started,
                                             1e-3))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if outer_expires is not None:
            signal.setitimer(signal.ITIMER_REAL, max(outer_expires - time.monotonic(), 1e-3),
                             outer_interval)


def _first_expiry(current: Deadline, outer_expires: float | None) -> float:
    return current.expires if outer_expires is None else min(current.expires, outer_expires)


@contextmanager
def _watchdog(current: Deadline) -> Iterator[None]:
    def expire() -> None:
        current.fired = True
        current._shutdown_sockets()  # noqa: SLF001 - the deadline's own helper

    timer = threading.Timer(current.seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
    if current.fired:       # a shut-down socket reads as EOF: what the block saw is not an answer
        raise current.exceeded()

