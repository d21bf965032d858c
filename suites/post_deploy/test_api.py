"""Post-deployment tests 1, 7, 8: API health, authentication, endpoints (seed §Validation)."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.service("api")


@pytest.mark.requirement("SEED-POST-1")
def test_health_reports_dependencies_ok(api, env_profile, record):
    path = env_profile.section("api").get("health_path", "/health")
    response = api.get(path)
    record.measure("api_health_ms", round(response.elapsed.total_seconds() * 1000, 1), "ms")
    assert response.status_code == 200, f"{path} answered {response.status_code}: {response.text[:200]}"
    body = response.json()
    assert body.get("status") == "ok", f"{path} status is {body.get('status')!r}"
    checks = body.get("checks") or {}
    assert checks, f"{path} does not report its dependencies (no 'checks')"
    bad = {name: c.get("status") for name, c in checks.items() if c.get("status") != "ok"}
    assert not bad, f"{path} reports unhealthy dependencies: {bad}"


@pytest.mark.requirement("SEED-POST-7")
def test_login_returns_token(api_login, admin_credentials):
    email, password = admin_credentials
    response = api_login(email, password)
    assert response.status_code == 200, f"login answered {response.status_code}"
    token = (response.json().get("data") or {}).get("token")
    assert token, "login answered 200 without data.token"


@pytest.mark.requirement("SEED-POST-7")
def test_login_refuses_wrong_password(api_login, admin_credentials):
    email, _ = admin_credentials
    response = api_login(email, "wrong-password-mssante-check")
    assert response.status_code in (400, 401, 403), (
        f"a wrong password was answered {response.status_code}, expected 401")
    assert not (response.json().get("data") or {}).get("token"), "wrong password got a token"


@pytest.mark.requirement("SEED-POST-8")
def test_mailboxes_with_token(api, api_login, admin_credentials):
    login = api_login(*admin_credentials)
    assert login.status_code == 200, f"cannot log in to test endpoints ({login.status_code})"
    token = login.json()["data"]["token"]
    response = api.get("/api/v1/mailboxes", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, f"/api/v1/mailboxes answered {response.status_code}"
    assert isinstance(response.json().get("data"), list), "/api/v1/mailboxes: no data list"


@pytest.mark.requirement("SEED-POST-8")
def test_mailboxes_without_token_is_401(api):
    response = api.get("/api/v1/mailboxes")
    assert response.status_code == 401, (
        f"/api/v1/mailboxes without a token answered {response.status_code}, expected 401")
