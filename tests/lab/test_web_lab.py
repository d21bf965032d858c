"""The lab's data, web and monitoring services, proven over real sockets.

The good lab must behave (TLS, login, tokens, health, maintenance, metrics, monitoring), and
each fault must change exactly the behaviour it names. Faults are switched with
``lab.control.up`` restricted to these services, so only the affected daemons restart.
"""
from __future__ import annotations

import os
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
from cryptography import x509
from redis.backoff import NoBackoff
from redis.retry import Retry

from lab import control, identity, paths, pki, ports, secrets, tls
from lab.api import migrations
from lab.api import version as api_version
from lab.process import pid_alive, port_open, read_pid
from lab.services.postgres import Postgres
from tests import labctl

SERVICES = ["postgres", "redis", "api", "nginx", "prometheus", "alertmanager"]
API = f"https://localhost:{ports.HTTPS_API}"
FRONT = f"https://localhost:{ports.HTTPS_FRONT}"
BACKEND = f"http://{ports.HOST}:{ports.API_BACKEND}"
PROMETHEUS = f"http://{ports.HOST}:{ports.PROMETHEUS}"
ALERTMANAGER = f"http://{ports.HOST}:{ports.ALERTMANAGER}"
TIMEOUT = 5.0

# The tests switch faults on shared daemons: under xdist the module must stay on one worker
# (`--dist loadfile`; xdist 3.8's loadgroup does not group on pytest 9.2).
pytestmark = [pytest.mark.lab, pytest.mark.timeout(120)]
# The TLS 1.0/1.1 probes are deliberate: they prove the servers refuse those versions.
legacy_probe = pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")


def wait_until(condition: Callable[[], Any], timeout: float, interval: float = 0.25) -> Any:
    """Poll ``condition`` until it returns something truthy; fail with the last value."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout}s (last value: {value!r})")


@pytest.fixture(scope="module")
def web_lab() -> Iterator[dict[str, str]]:
    """These services up with no fault; yields the lab's secrets. Holds the machine's lab
    lock (tests/labctl.py) so that another test session never switches faults under us."""
    labctl.hold_lab()
    control.up([], only=SERVICES)
    yield secrets.load()
    control.up([], only=SERVICES)


@contextmanager
def fault(name: str) -> Iterator[None]:
    """The lab broken in one way for the duration of the block, then good again."""
    control.up([name], only=SERVICES)
    try:
        yield
    finally:
        control.up([], only=SERVICES)


@pytest.fixture(scope="module")
def https(web_lab: dict[str, str]) -> Iterator[httpx.Client]:
    """A client trusting only the lab's IGC-like TEST root (the chain served ends there)."""
    context = ssl.create_default_context(cafile=str(pki.path("anchors-test.pem")))
    with httpx.Client(verify=context, timeout=TIMEOUT) as client:
        yield client


@pytest.fixture(scope="module")
def plain(web_lab: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(timeout=TIMEOUT) as client:
        yield client


def login(client: httpx.Client, email: str, password: str) -> httpx.Response:
    return client.post(f"{API}/api/v1/auth/login", json={"email": email, "password": password})


@pytest.fixture(scope="module")
def admin_token(https: httpx.Client, web_lab: dict[str, str]) -> str:
    response = login(https, identity.ADMIN_EMAIL, web_lab[identity.ADMIN_PASSWORD_ENV])
    assert response.status_code == 200, response.text
    return response.json()["data"]["token"]


def redis_client(password: str | None) -> redis.Redis:
    """No retry: redis-py retries an AuthenticationError (a ConnectionError) with back-off."""
    return redis.Redis(host=ports.HOST, port=ports.REDIS, password=password, socket_timeout=2,
                       socket_connect_timeout=2, retry=Retry(NoBackoff(), 0))


def served_not_after() -> float:
    cert = x509.load_pem_x509_certificate(pki.path("server", "good", "cert.pem").read_bytes())
    return cert.not_valid_after_utc.timestamp()


# --- the good lab -------------------------------------------------------------------------
def test_up_twice_restarts_nothing(web_lab: dict[str, str]) -> None:
    assert control.up([], only=SERVICES) == [f"{name}: up" for name in SERVICES]


def test_health_reports_both_checks_ok(https: httpx.Client) -> None:
    response = https.get(f"{API}/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["version"] == api_version()
    for check in ("database", "redis"):
        assert body["checks"][check]["status"] == "ok"
        assert body["checks"][check]["latency_ms"] > 0


def test_login_token_lists_mailboxes(https: httpx.Client, admin_token: str) -> None:
    response = https.get(f"{API}/api/v1/mailboxes",
                         headers={"Authorization": f"Bearer {admin_token}"})
    assert response.status_code == 200
    addresses = {mailbox["address"] for mailbox in response.json()["data"]}
    assert addresses == set(identity.MAILBOXES)
    assert all(mailbox["display_name"] for mailbox in response.json()["data"])


def test_mailbox_user_sees_only_own_mailbox(https: httpx.Client,
                                            web_lab: dict[str, str]) -> None:
    address, variable = next(iter(identity.MAILBOXES.items()))
    token = login(https, address, web_lab[variable]).json()["data"]["token"]
    response = https.get(f"{API}/api/v1/mailboxes", headers={"Authorization": f"Bearer {token}"})
    assert [m["address"] for m in response.json()["data"]] == [address]


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Basic YWRtaW46eA=="])
def test_mailboxes_refused_without_valid_token(https: httpx.Client,
                                               authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = https.get(f"{API}/api/v1/mailboxes", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]


@pytest.mark.parametrize("email", [identity.ADMIN_EMAIL, "nobody@lab.mssante.fr"])
def test_bad_credentials_refused(https: httpx.Client, email: str) -> None:
    response = login(https, email, "wrong-password")
    assert response.status_code == 401
    assert "token" not in response.text


def test_api_log_holds_no_secret(https: httpx.Client, web_lab: dict[str, str],
                                 admin_token: str) -> None:
    https.get(f"{API}/api/v1/mailboxes", headers={"Authorization": f"Bearer {admin_token}"})
    log = (paths.service_dir("api") / "api.log").read_text()
    assert '"POST /api/v1/auth/login" 200' in log
    assert admin_token not in log
    assert all(web_lab[name] not in log for name in secrets.VARIABLES)


def test_version_reports_release_and_schema(plain: httpx.Client) -> None:
    body = plain.get(f"{BACKEND}/version").json()
    assert body["version"] == api_version() == (Path(migrations.__file__).parent
                                                 / "VERSION").read_text().strip()
    assert body["schema"] == body["schema_expected"] == migrations.available()[-1].label


def test_https_sends_hsts_and_hides_version(https: httpx.Client) -> None:
    for url in (f"{API}/health", FRONT):
        response = https.get(url)
        assert response.headers["strict-transport-security"] == \
            "max-age=63072000; includeSubDomains"
        assert response.headers["server"] == "nginx"


def test_front_page_served(https: httpx.Client) -> None:
    response = https.get(f"{FRONT}/")
    assert response.status_code == 200
    assert '<meta name="mssante-lab" content="front">' in response.text
    assert "<title>MSSanté LAB — Messagerie</title>" in response.text


def handshake(port: int, version: ssl.TLSVersion) -> tuple[str, str] | None:
    """(protocol, cipher) when the server completes a handshake at exactly ``version``.

    The client allows anything (SECLEVEL 0), so a refusal is the server's, not ours."""
    context = ssl.create_default_context(cafile=str(pki.path("anchors-test.pem")))
    context.minimum_version = context.maximum_version = version
    context.set_ciphers("ALL:@SECLEVEL=0")
    try:
        with socket.create_connection((ports.HOST, port), timeout=TIMEOUT) as sock, \
                context.wrap_socket(sock, server_hostname="localhost") as conn:
            return conn.version(), conn.cipher()[0]
    except (ssl.SSLError, OSError):
        return None


@legacy_probe
@pytest.mark.parametrize("port", [ports.HTTPS_API, ports.HTTPS_FRONT])
def test_tls_12_and_13_only(web_lab: dict[str, str], port: int) -> None:
    assert handshake(port, ssl.TLSVersion.TLSv1_3)[0] == "TLSv1.3"
    protocol, cipher = handshake(port, ssl.TLSVersion.TLSv1_2)
    assert protocol == "TLSv1.2" and cipher in tls.GOOD_TLS12
    assert handshake(port, ssl.TLSVersion.TLSv1_1) is None
    assert handshake(port, ssl.TLSVersion.TLSv1) is None


def test_metrics_expose_requests_and_certificate_expiry(plain: httpx.Client,
                                                        https: httpx.Client) -> None:
    https.get(f"{API}/health")
    text = plain.get(f"{BACKEND}/metrics").text
    assert 'http_request_duration_seconds_bucket{le="0.1",method="GET",path="/health"}' in text
    assert 'http_requests_total{method="GET",path="/health",status="200"}' in text
    line = next(line for line in text.splitlines()
                if line.startswith('mssante_certificate_expiry_timestamp_seconds{'))
    assert 'endpoint="https-api"' in line
    assert float(line.split()[-1]) == pytest.approx(served_not_after())
    assert https.get(f"{API}/metrics").status_code == 404       # not published over HTTPS


def test_crl_published_safely(plain: httpx.Client) -> None:
    response = plain.get(f"{BACKEND}/crl/test-ca.crl")
    assert response.status_code == 200
    assert x509.load_der_x509_crl(response.content).issuer
    for name in ("..%2fsecrets.env", ".lock.crl", "test-ca.pem"):
        assert plain.get(f"{BACKEND}/crl/{name}").status_code == 404


def test_postgres_requires_password(web_lab: dict[str, str]) -> None:
    params = {"host": ports.HOST, "port": ports.POSTGRES, "dbname": identity.DB_NAME,
              "user": identity.DB_USER, "connect_timeout": 3}
    with psycopg.connect(**params, password=web_lab[identity.DB_PASSWORD_ENV]) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] >= 3
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(**params, password="wrong")


def test_redis_requires_password(web_lab: dict[str, str]) -> None:
    with pytest.raises(redis.AuthenticationError):
        redis_client(None).ping()
    assert redis_client(web_lab[identity.REDIS_PASSWORD_ENV]).ping()


def test_redis_bgsave_writes_snapshot(web_lab: dict[str, str]) -> None:
    client = redis_client(web_lab[identity.REDIS_PASSWORD_ENV])
    before = client.info("persistence")["rdb_saves"]
    client.set("mssante:test:bgsave", "1")
    client.bgsave()

    def saved() -> bool:
        info = client.info("persistence")
        return info["rdb_saves"] > before and not info["rdb_bgsave_in_progress"]
    wait_until(saved, 10)
    assert client.info("persistence")["rdb_last_bgsave_status"] == "ok"
    assert (paths.service_dir("redis") / "data" / "dump.rdb").stat().st_size > 0
    client.delete("mssante:test:bgsave")


def test_maintenance_mode_round_trip(https: httpx.Client, admin_token: str) -> None:
    auth = {"Authorization": f"Bearer {admin_token}"}
    switch = f"{API}/api/v1/admin/maintenance"
    assert https.post(switch, json={"enabled": True}, headers=auth).status_code == 200
    try:
        response = https.get(f"{API}/api/v1/mailboxes", headers=auth)
        assert response.status_code == 503 and response.json()["error"]
        assert https.get(f"{API}/health").status_code == 200
    finally:
        assert https.post(switch, json={"enabled": False}, headers=auth).status_code == 200
    assert https.get(f"{API}/api/v1/mailboxes", headers=auth).status_code == 200


def test_maintenance_switch_is_admin_only(https: httpx.Client,
                                          web_lab: dict[str, str]) -> None:
    address, variable = next(iter(identity.MAILBOXES.items()))
    token = login(https, address, web_lab[variable]).json()["data"]["token"]
    switch = f"{API}/api/v1/admin/maintenance"
    assert https.post(switch, json={"enabled": True}).status_code == 401
    assert https.post(switch, json={"enabled": True},
                      headers={"Authorization": f"Bearer {token}"}).status_code == 403


def test_prometheus_ready_and_scraping_api(plain: httpx.Client) -> None:
    assert plain.get(f"{PROMETHEUS}/-/ready").status_code == 200
    assert plain.get(f"{PROMETHEUS}/-/healthy").status_code == 200

    def api_target_health() -> bool:
        targets = plain.get(f"{PROMETHEUS}/api/v1/targets").json()["data"]["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in targets}
        return health.get("api") == "up" and health.get("prometheus") == "up"
    wait_until(api_target_health, 15)
    rules = plain.get(f"{PROMETHEUS}/api/v1/rules").json()["data"]["groups"][0]["rules"]
    assert {"ServiceDown", "CertificateExpiringSoon"} <= {rule["name"] for rule in rules}


def test_alertmanager_ready_and_known_to_prometheus(plain: httpx.Client) -> None:
    assert plain.get(f"{ALERTMANAGER}/-/ready").status_code == 200
    status = plain.get(f"{ALERTMANAGER}/api/v2/status").json()
    assert status["cluster"]["status"] == "disabled"

    def discovered() -> bool:
        body = plain.get(f"{PROMETHEUS}/api/v1/alertmanagers").json()
        return any(str(ports.ALERTMANAGER) in am["url"]
                   for am in body["data"]["activeAlertmanagers"])
    wait_until(discovered, 15)


# --- each fault changes behaviour -----------------------------------------------------------
def test_fault_api_down_gives_502(https: httpx.Client) -> None:
    with fault("api-down"):
        assert not port_open(ports.API_BACKEND)
        assert https.get(f"{API}/health").status_code == 502
        assert https.get(f"{FRONT}/").status_code == 200          # the front does not need it
    assert https.get(f"{API}/health").status_code == 200


def test_fault_db_down_degrades_health(https: httpx.Client) -> None:
    with fault("db-down"):
        assert not port_open(ports.POSTGRES)
        response = https.get(f"{API}/health")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "degraded"
        assert body["checks"]["database"]["status"] == "error"
        assert body["checks"]["redis"]["status"] == "ok"
    assert https.get(f"{API}/health").json()["status"] == "ok"


def test_fault_health_lies(https: httpx.Client, web_lab: dict[str, str]) -> None:
    with fault("health-lies"):
        assert not port_open(ports.POSTGRES)
        response = https.get(f"{API}/health")
        assert response.status_code == 200 and response.json()["status"] == "ok"
        # ...while anything that really needs the database fails.
        assert login(https, identity.ADMIN_EMAIL,
                     web_lab[identity.ADMIN_PASSWORD_ENV]).status_code == 503
    assert https.get(f"{API}/health").status_code == 200


def test_fault_auth_broken(https: httpx.Client, web_lab: dict[str, str]) -> None:
    with fault("auth-broken"):
        response = login(https, identity.ADMIN_EMAIL, web_lab[identity.ADMIN_PASSWORD_ENV])
        assert response.status_code == 401
        assert https.get(f"{API}/health").status_code == 200     # health cannot see it
    assert login(https, identity.ADMIN_EMAIL,
                 web_lab[identity.ADMIN_PASSWORD_ENV]).status_code == 200


def test_fault_redis_down(https: httpx.Client, web_lab: dict[str, str]) -> None:
    with fault("redis-down"):
        assert not port_open(ports.REDIS)
        body = https.get(f"{API}/health").json()
        assert body["status"] == "degraded" and body["checks"]["redis"]["status"] == "error"
        assert login(https, identity.ADMIN_EMAIL,
                     web_lab[identity.ADMIN_PASSWORD_ENV]).status_code == 503
    assert https.get(f"{API}/health").status_code == 200


def test_fault_redis_no_password(https: httpx.Client) -> None:
    with fault("redis-no-password"):
        assert redis_client(None).ping()
        assert https.get(f"{API}/health").status_code == 200     # the API follows suit
    with pytest.raises(redis.AuthenticationError):
        redis_client(None).ping()


def test_fault_prometheus_down(plain: httpx.Client) -> None:
    with fault("prometheus-down"):
        assert not port_open(ports.PROMETHEUS)
        assert port_open(ports.ALERTMANAGER)
    assert plain.get(f"{PROMETHEUS}/-/ready").status_code == 200


def test_fault_cert_expiring_alerts(plain: httpx.Client) -> None:
    """Metric -> rule -> Alertmanager: the seed's "< 30 days" certificate alert really fires."""
    with fault("cert-expiring"):
        def alert_names() -> set[str]:
            alerts = plain.get(f"{ALERTMANAGER}/api/v2/alerts").json()
            return {alert["labels"]["alertname"] for alert in alerts}
        assert "CertificateExpiringSoon" in wait_until(
            lambda: "CertificateExpiringSoon" in alert_names() and alert_names(), 25)
        query = plain.get(f"{PROMETHEUS}/api/v1/query", params={
            "query": 'mssante_certificate_expiry_timestamp_seconds{endpoint="https-api"}'
                     " - time()"}).json()
        days_left = float(query["data"]["result"][0]["value"][1]) / 86400
        assert 3 < days_left < 7


@legacy_probe
def test_fault_tls_legacy_reaches_nginx(web_lab: dict[str, str]) -> None:
    """The TLS 1.1 probe above can fail: under tls-legacy nginx completes the handshake."""
    with fault("tls-legacy"):
        assert handshake(ports.HTTPS_API, ssl.TLSVersion.TLSv1_1) is not None
    assert handshake(ports.HTTPS_API, ssl.TLSVersion.TLSv1_1) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="the lab runs daemons as their own users")
def test_stop_leaves_no_process(web_lab: dict[str, str]) -> None:
    from lab.services import selected
    for service in selected(SERVICES):
        pidfile = (Postgres().data / "postmaster.pid" if service.name == "postgres"
                   else service.dir / f"{service.name}.pid")
        pid = read_pid(pidfile)
        assert pid is not None, service.name
        family = labctl.descendants(pid)
        service.stop()
        assert not service.is_running()
        assert not [p for p in family if pid_alive(p)], service.name
        assert not any(service.port_status().values()), service.name
    control.up([], only=SERVICES)
    assert all(service.is_running() for service in selected(SERVICES))
