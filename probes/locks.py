"""A bounded file lock, shared by the TLS scan cache and the test lab's machine-wide lock.

It lives in the product (``probes/``) because the scan cache needs it and the product never
imports the lab; the lab and the test helpers import it from here.
"""
from __future__ import annotations

import fcntl
import time
from typing import IO


def acquire_flock(handle: IO[str], wait_s: float, what: str, poll_s: float = 0.1) -> None:
    """Take an exclusive flock on an open file, waiting at most ``wait_s``: a lock held by a
    stuck holder becomes a TimeoutError naming ``what``, never a hang."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{what}: still held by another process after {wait_s:.0f}s") from None
            time.sleep(poll_s)
