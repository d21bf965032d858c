"""probes.http: every request one bounded exchange, headers and body, in any thread.

Against the hostile bench (tests/support/hostile.py): closed port, tarpit, garbage, header
trickle and chunked-body trickle (also behind a verified TLS handshake) end as CouldNotRun
naming the URL and the step within the deadline + 1 s; a self-signed certificate is a refused
certificate (a failure), never "could not run"; the good lab's API answers.
"""
from __future__ import annotations

import ssl
import threading
import time

import httpx
import pytest

from plugins import profile as profiles
from plugins.reporting import could_not_run
from probes.errors import CouldNotRun
from probes.http import BoundedClient, http_client
from probes.tlsctx import client_context
from tests.support.hostile import bench_ca

DEADLINE_S = 2.0
SILENT_OR_BROKEN = ["closed", "tarpit", "garbage", "http-header-trickle", "http-body-trickle"]


def _get(client: BoundedClient) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        client.get("/health")
    except BaseException as exc:  # noqa: BLE001 - the test inspects whatever came out
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


def _client(target, **kwargs) -> BoundedClient:
    verify = client_context(bench_ca().ca) if target.tls else True
    return BoundedClient(base_url=target.url, deadline_s=DEADLINE_S, verify=verify, **kwargs)


def _assert_could_not_run(target, elapsed: float, exc: BaseException | None) -> None:
    assert isinstance(exc, CouldNotRun), f"{target.kind}: {type(exc).__name__}: {exc}"
    assert elapsed < DEADLINE_S + 1, f"{target.kind}: {elapsed:.1f}s"
    assert exc.endpoint == f"{target.url}/health" and exc.step == "GET /health", exc
    assert str(exc).startswith(f"could not run: {target.url}/health: GET /health: ")


@pytest.mark.parametrize("kind", SILENT_OR_BROKEN)
def test_hostile_server_is_could_not_run_within_deadline(hostile, kind):
    target = hostile(kind)
    with _client(target) as client:
        _assert_could_not_run(target, *_get(client))


@pytest.mark.parametrize("kind", ["tarpit", "http-header-trickle", "http-body-trickle"])
def test_trickle_behind_verified_tls_is_cut(hostile, kind):
    target = hostile(kind, tls=True)
    with _client(target) as client:
        _assert_could_not_run(target, *_get(client))


@pytest.mark.parametrize("kind", ["tarpit", "http-header-trickle", "http-body-trickle"])
def test_bounded_outside_the_main_thread(hostile, kind):
    """No SIGALRM in a worker thread: the watchdog shuts the client's sockets down."""
    target = hostile(kind)
    outcome: list[tuple[float, BaseException | None]] = []
    with _client(target) as client:
        worker = threading.Thread(target=lambda: outcome.append(_get(client)), daemon=True)
        worker.start()
        worker.join(DEADLINE_S + 5)
    assert outcome, "the request was still running in its thread"
    _assert_could_not_run(target, *outcome[0])


def test_self_signed_certificate_is_a_failure_not_could_not_run(hostile):
    target = hostile("tls-self-signed")
    with BoundedClient(base_url=target.url, deadline_s=DEADLINE_S,
                       verify=client_context(bench_ca().ca)) as client:
        elapsed, exc = _get(client)
    assert isinstance(exc, httpx.ConnectError), exc
    assert isinstance(exc.__cause__ or exc.__context__, ssl.SSLCertVerificationError) or \
        "CERTIFICATE_VERIFY_FAILED" in str(exc), exc
    assert not could_not_run(exc), "a refused certificate must be reported failed"
    assert elapsed < DEADLINE_S + 1


def test_body_over_the_cap_is_could_not_run(hostile):
    target = hostile("tls-self-signed")      # answers 200 with a small JSON body
    with BoundedClient(base_url=target.url, deadline_s=DEADLINE_S, verify=False,
                       max_body_bytes=16) as client:
        _, exc = _get(client)
    assert isinstance(exc, CouldNotRun) and "answer body over 16 bytes" in str(exc), exc


def test_stream_is_refused():
    with BoundedClient(base_url="http://127.0.0.1:9", deadline_s=1) as client:
        with pytest.raises(ValueError, match="no stream=True"):
            client.send(client.build_request("GET", "/"), stream=True)


def test_good_lab_api_answers_under_its_deadline(good_lab):
    section = profiles.load("lab").section("api")
    with http_client(section, 5) as client:
        first = client.get("/health")
        second = client.get("/health")           # a pooled connection, bounded as well
    assert first.status_code == second.status_code == 200, first.text
    assert first.json()["status"] == "ok"
    assert first.elapsed.total_seconds() < 5
