"""The HTTP layer: stdlib ``ThreadingHTTPServer`` behind nginx, JSON in and out.

A framework would add a dependency for six routes; the standard library's server is enough
behind nginx, which terminates TLS and buffers slow clients. The request log records method,
path (without query string), status and duration; never a body, a password or a token.
"""
from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import CONTENT_TYPE_LATEST

from lab.api import migrations, version
from lab.api.config import Settings
from lab.api.metrics import Metrics
from lab.api.store import Database, Tokens, Unavailable

log = logging.getLogger("mssante.api")
access = logging.getLogger("mssante.api.access")

MAX_BODY = 64 * 1024
# Publication points the PKI writes and certificates name (CRL distribution point, AIA).
PUBLISHED = {"crl": (re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*\.crl$"), "application/pkix-crl"),
             "aia": (re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*\.cer$"), "application/pkix-cert")}
# Still answered in maintenance: monitoring, the version and schema a deployment checks
# during its maintenance window, the switch that ends maintenance, and the PKI publication
# points that other services' certificate checks depend on.
MAINTENANCE_EXEMPT = ("/health", "/metrics", "/version", "/api/v1/admin/maintenance", "/crl/",
                      "/aia/")


class Reply:
    """What a route returns: status, body bytes, content type and extra headers."""

    def __init__(self, status: int, body: Any, content_type: str = "application/json",
                 headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.content_type = content_type
        self.headers = headers or {}


def error(status: int, message: str, **headers: str) -> Reply:
    return Reply(status, {"error": message}, headers=headers)


class Api:
    """The routes, independent of the socket plumbing."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.version = version(settings.release_dir)
        self.db = Database(settings)
        self.tokens = Tokens(settings)
        certificates = {"https-api": settings.cert_file} if settings.cert_file else {}
        self.metrics = Metrics(self.version, certificates)
        self.routes: dict[tuple[str, str], Callable[[Request], Reply]] = {
            ("GET", "/health"): self.health,
            ("GET", "/version"): self.version_info,
            ("GET", "/metrics"): self.render_metrics,
            ("POST", "/api/v1/auth/login"): self.login,
            ("GET", "/api/v1/mailboxes"): self.list_mailboxes,
            ("POST", "/api/v1/admin/maintenance"): self.set_maintenance,
        }

    def route_of(self, method: str, path: str) -> tuple[str, Callable[[Request], Reply] | None]:
        """(route template for metrics, handler or None)."""
        if (method, path) in self.routes:
            return path, self.routes[(method, path)]
        folder, _, name = path.lstrip("/").partition("/")
        if method == "GET" and folder in PUBLISHED:
            return f"/{folder}/{{name}}", lambda request: self.published(folder, name)
        if any(route == path for _, route in self.routes):
            return path, lambda request: error(405, "method not allowed")
        return "other", None

    def handle(self, request: Request) -> tuple[str, Reply]:
        template, handler = self.route_of(request.method, request.path)
        if handler is None:
            return template, error(404, "not found")
        if self.in_maintenance() and not request.path.startswith(MAINTENANCE_EXEMPT):
            return template, error(503, "maintenance in progress", **{"Retry-After": "60"})
        try:
            return template, handler(request)
        except BadRequest as exc:
            return template, error(400, str(exc))
        except Unavailable as exc:
            log.warning("%s %s: %s", request.method, request.path, exc)
            return template, error(503, str(exc).partition(":")[0] + " unavailable")
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            return template, error(500, "internal error")

    # --- routes -------------------------------------------------------------------------
    def health(self, request: Request) -> Reply:
        """The true status of each dependency, each measured now with short time-outs."""
        if "health-lies" in self.settings.faults:
            # Lab fault: the shortcut a hurried developer takes, asking nothing of anyone.
            checks = {"database": {"status": "ok", "latency_ms": 0.0},
                      "redis": {"status": "ok", "latency_ms": 0.0}}
        else:
            checks = {"database": _timed(self.db.check), "redis": _timed(self.tokens.ping)}
        healthy = all(check["status"] == "ok" for check in checks.values())
        if "api-health-shape" in self.settings.faults:
            # Lab fault: the same truth in another platform's readiness shape (bare strings).
            body: dict[str, Any] = {
                "status": "ready" if healthy else "not-ready",
                "checks": {"db" if name == "database" else name: check["status"]
                           for name, check in checks.items()}}
        else:
            body = {"status": "ok" if healthy else "degraded", "version": self.version,
                    "checks": checks}
        return Reply(200 if healthy else 503, body, headers={"Cache-Control": "no-store"})

    def version_info(self, request: Request) -> Reply:
        return Reply(200, {"version": self.version, "schema": self.db.schema(),
                           "schema_expected": migrations.expected(self.settings.migrations_dir)})

    def render_metrics(self, request: Request) -> Reply:
        return Reply(200, self.metrics.render(), CONTENT_TYPE_LATEST)

    def login(self, request: Request) -> Reply:
        body = request.json()
        email, password = body.get("email"), body.get("password")
        if not isinstance(email, str) or not isinstance(password, str) or not email:
            return error(400, "email and password are required")
        user = self.db.authenticate(email, password)
        if user is None or "auth-broken" in self.settings.faults:
            log.info("login refused for %s", email.strip().lower())
            return error(401, "invalid credentials")
        log.info("login ok for %s", user["email"])
        return Reply(200, {"data": {"token": self.tokens.issue(user),
                                    "expires_in": self.settings.token_ttl}},
                     headers={"Cache-Control": "no-store"})

    def list_mailboxes(self, request: Request) -> Reply:
        user = self.authenticated(request)
        if user is None:
            return error(401, "authentication required", **{"WWW-Authenticate": "Bearer"})
        return Reply(200, {"data": self.db.mailboxes(user)})

    def set_maintenance(self, request: Request) -> Reply:
        user = self.authenticated(request)
        if user is None:
            return error(401, "authentication required", **{"WWW-Authenticate": "Bearer"})
        if user["role"] != "admin":
            return error(403, "administrator only")
        enabled = request.json().get("enabled")
        if not isinstance(enabled, bool):
            return error(400, "enabled must be true or false")
        flag = self.settings.maintenance_flag
        if enabled:
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            flag.write_text(f"enabled by {user['email']} at {when}\n")
        else:
            flag.unlink(missing_ok=True)
        log.info("maintenance %s by %s", "on" if enabled else "off", user["email"])
        return Reply(200, {"data": {"maintenance": enabled}})

    def published(self, folder: str, name: str) -> Reply:
        pattern, content_type = PUBLISHED[folder]
        if self.settings.pki_dir is None or not pattern.match(name):
            return error(404, "not found")
        try:
            return Reply(200, (self.settings.pki_dir / folder / name).read_bytes(), content_type)
        except OSError:
            return error(404, "not found")

    # --- helpers ------------------------------------------------------------------------
    def in_maintenance(self) -> bool:
        return self.settings.maintenance_flag.exists()

    def authenticated(self, request: Request) -> dict[str, Any] | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.tokens.lookup(token.strip())


def _timed(check: Callable[[], None]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        check()
    except Unavailable as exc:
        return {"status": "error", "latency_ms": _ms(started), "error": str(exc)[:200]}
    return {"status": "ok", "latency_ms": _ms(started)}


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


class BadRequest(Exception):
    pass


class Request:
    def __init__(self, method: str, path: str, headers: Any, body: bytes) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body

    def json(self) -> dict[str, Any]:
        try:
            value = json.loads(self.body or b"{}")
        except ValueError as exc:
            raise BadRequest("body is not JSON") from exc
        if not isinstance(value, dict):
            raise BadRequest("body must be a JSON object")
        return value


class Handler(BaseHTTPRequestHandler):
    server_version = "mssante-api"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in two writes: no delayed-ACK stall
    timeout = 15            # a client that stops sending is dropped, not waited for forever
    api: Api                # set on the subclass built by make_server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        started = time.perf_counter()
        path = urlsplit(self.path).path
        template = "other"
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                reply = error(413, "body too large")
                self.close_connection = True
            else:
                request = Request(self.command, path, self.headers, self.rfile.read(length))
                template, reply = self.api.handle(request)
        except ValueError:
            reply = error(400, "bad Content-Length")
            self.close_connection = True
        self._send(reply)
        elapsed = time.perf_counter() - started
        self.api.metrics.observe(self.command, template, reply.status, elapsed)
        client = self.headers.get("X-Forwarded-For", self.client_address[0])
        access.info('%s "%s %s" %d %.1fms', client, self.command, path, reply.status,
                    elapsed * 1000)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default log: it prints the raw request line, query string included."""


def make_server(api: Api) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"api": api})
    server = ThreadingHTTPServer((api.settings.listen_host, api.settings.listen_port), handler)
    server.daemon_threads = True
    return server


__all__ = ["Api", "make_server"]
