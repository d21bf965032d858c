"""HTTP(S) exchanges under one wall-clock deadline: headers *and* body, whatever the server does.

httpx's time-outs are per read: a server that trickles one header byte every 2 s, or a chunked
body one byte every 2 s, never trips them. Every request a :class:`BoundedClient` sends
therefore runs under :func:`probes.deadline.deadline` for the whole exchange (connection, TLS,
request, headers, and the body streamed with a size cap), so no caller can forget the bound:
the suites' ``api``/``frontend`` fixtures, the monitoring readings, the health check, the
lifecycle and the evidence writer all get their clients from :func:`http_client`.

Outside the main thread (the health check's workers) ``SIGALRM`` cannot reach the request, so
the client's network backend hands every socket it opens to the running deadline, whose
watchdog shuts them down when it passes.

A transport failure (refused, unreachable, DNS, time-out, garbage instead of HTTP, a body over
the cap) becomes :class:`~probes.errors.CouldNotRun` naming the URL and the step
(``GET /health``). A refused *certificate* is a failure of the platform, not "could not run":
httpx's ``ConnectError`` wrapping ``ssl.SSLCertVerificationError`` propagates unchanged.
"""
from __future__ import annotations

import socket
import ssl
import typing
from pathlib import Path
from typing import Any

import httpcore
import httpx

from probes import vantage
from probes.deadline import Deadline, deadline
from probes.errors import CouldNotRun
from probes.tlsctx import client_context

# No check needs more: a front page or an API answer is kilobytes. Past it, the server is
# streaming something that is not the answer we asked for.
MAX_BODY_BYTES = 16 * 1024 * 1024
# The library's "could not measure" exceptions (refused, DNS, time-outs, not HTTP, a broken
# encoding); a refused certificate among them is told apart by its cause (see send).
UNREACHABLE: tuple[type[BaseException], ...] = (httpx.RequestError,)


class _WatchedBackend(httpcore.SyncBackend):
    """httpcore's socket backend, handing each socket it opens to the request's deadline."""

    def __init__(self) -> None:
        self.current: Deadline | None = None
        self.sockets: list[socket.socket] = []

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: typing.Iterable[Any] | None = None) -> httpcore.NetworkStream:
        stream = super().connect_tcp(host, port, timeout, local_address, socket_options)
        sock = stream.get_extra_info("socket")
        self.sockets = [s for s in self.sockets if s.fileno() != -1] + [sock]
        if self.current is not None:
            self.current.watch(sock)
        return stream


def endpoint_of(url: httpx.URL) -> str:
    """The URL a report names: scheme, host, port and path, never the query or credentials."""
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}{url.path}"


class BoundedClient(httpx.Client):
    """An ``httpx.Client`` whose every request is one bounded exchange (see the module doc)."""

    def __init__(self, *, deadline_s: float, max_body_bytes: int = MAX_BODY_BYTES,
                 verify: ssl.SSLContext | bool = True, **kwargs: Any) -> None:
        if deadline_s <= 0:
            raise ValueError(f"an HTTP deadline must be > 0 s, got {deadline_s}")
        self.deadline_s = deadline_s
        self.max_body_bytes = max_body_bytes
        self._backend = _WatchedBackend()
        # The profile's source address, when it sets one (probes/vantage.py).
        transport = httpx.HTTPTransport(verify=verify, local_address=vantage.source_host())
        # httpx has no parameter for httpcore's network backend; the pool reads this attribute
        # for every new connection (httpcore 1.x), which is how the sockets reach the watchdog.
        transport._pool._network_backend = self._backend  # noqa: SLF001 - see above
        super().__init__(transport=transport, timeout=deadline_s, **kwargs)

    def send(self, request: httpx.Request, *, stream: bool = False,
             **kwargs: Any) -> httpx.Response:
        """Send and read the whole answer under one deadline (``stream`` is not offered: an
        unbounded body is exactly what this client exists to refuse)."""
        if stream:
            raise ValueError("BoundedClient reads every body under its deadline: no stream=True")
        endpoint = endpoint_of(request.url)
        step = f"{request.method} {request.url.path}"
        try:
            with deadline(self.deadline_s, endpoint, step) as current:
                self._backend.current = current
                for sock in self._backend.sockets:      # pooled connections from earlier requests
                    current.watch(sock)
                try:
                    response = super().send(request, stream=True, **kwargs)
                    try:
                        self._read_capped(response, endpoint, step)
                    finally:
                        response.close()
                finally:
                    self._backend.current = None
        except UNREACHABLE as exc:
            if _certificate_refused(exc):
                raise
            raise CouldNotRun(endpoint, step, f"{type(exc).__name__}: {exc}") from exc
        return response

    def _read_capped(self, response: httpx.Response, endpoint: str, step: str) -> None:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise CouldNotRun(endpoint, step,
                                  f"answer body over {self.max_body_bytes} bytes")
            chunks.append(chunk)
        # What httpx's own Response.read() stores: the body is then there for .text/.json().
        response._content = b"".join(chunks)  # noqa: SLF001 - see above


def _certificate_refused(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def http_client(section: Any, deadline_s: float) -> BoundedClient:
    """A bounded client for a profile section with ``url`` (and optional ``ca_file``).

    HTTPS verifies against the section's ``ca_file`` when it names one, else the system store.
    """
    url = section["url"]
    ca_file: Path | None = section.path("ca_file") if section.get("ca_file") else None
    verify: ssl.SSLContext | bool = True
    if url.startswith("https://") and ca_file is not None:
        verify = client_context(ca_file)
    return BoundedClient(base_url=url, verify=verify, deadline_s=deadline_s,
                         follow_redirects=False)


def request(section: Any, deadline_s: float, method: str, path: str,
            **kwargs: Any) -> httpx.Response:
    """One bounded exchange with a fresh client (commands that ask a service once)."""
    with http_client(section, deadline_s) as client:
        return client.request(method, path, **kwargs)


def get(section: Any, deadline_s: float, path: str, **kwargs: Any) -> httpx.Response:
    """``GET path`` as one bounded exchange."""
    return request(section, deadline_s, "GET", path, **kwargs)


def post(section: Any, deadline_s: float, path: str, **kwargs: Any) -> httpx.Response:
    """``POST path`` as one bounded exchange."""
    return request(section, deadline_s, "POST", path, **kwargs)
