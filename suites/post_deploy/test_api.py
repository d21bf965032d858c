"""Post-deployment tests 1, 7, 8: API health, authentication, endpoints (seed §Validation)."""
from __future__ import annotations

import httpx
import pytest

from policy import refusal

pytestmark = pytest.mark.service("api")
LOGIN_PATH = "/api/v1/auth/login"
MAILBOXES_PATH = "/api/v1/mailboxes"


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


def _login_outcome(response: httpx.Response) -> refusal.Outcome:
    """A login answer as the refusal policy reads it: accepted when it carries a token (never
    copied into the evidence)."""
    try:
        token = (response.json().get("data") or {}).get("token")
    except (ValueError, AttributeError):
        token = None
    if response.status_code == 200 and token:
        return refusal.Outcome("accepted", 200, "a token")
    return refusal.Outcome("request", response.status_code, response.text[:120])


@pytest.mark.requirement("SEED-POST-7")
def test_login_refuses_wrong_password(api, api_login, admin_credentials, record):
    """Refused (400/401/403, no token) for a wrong password, while the right one (the control,
    first) gets a token: an API refusing every login proves nothing (policy/refusal.py)."""
    email, password = admin_credentials
    control = _login_outcome(api_login(email, password))
    attempt = _login_outcome(api_login(email, "wrong-password-mssante-check"))
    record.measure("refusal_attempt", str(attempt))
    record.measure("control_attempt", str(control))
    verdict = refusal.enforce(refusal.API_PASSWORD, attempt, control,
                              f"{api.base_url}{LOGIN_PATH}")
    assert verdict.kind == "passed", verdict.message


@pytest.mark.requirement("SEED-POST-8")
def test_mailboxes_with_token(api, api_login, admin_credentials):
    login = api_login(*admin_credentials)
    assert login.status_code == 200, f"cannot log in to test endpoints ({login.status_code})"
    token = login.json()["data"]["token"]
    response = api.get("/api/v1/mailboxes", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, f"/api/v1/mailboxes answered {response.status_code}"
    assert isinstance(response.json().get("data"), list), "/api/v1/mailboxes: no data list"


@pytest.mark.requirement("SEED-POST-8")
def test_mailboxes_without_token_is_401(api, api_login, admin_credentials, record):
    """401 without a token, while the same request with a token from a login (the control)
    answers 200."""
    login_response = api_login(*admin_credentials)
    login = _login_outcome(login_response)
    if login.accepted:
        token = login_response.json()["data"]["token"]
        answer = api.get(MAILBOXES_PATH, headers={"Authorization": f"Bearer {token}"})
        control = (refusal.Outcome("accepted", 200, "") if answer.status_code == 200
                   else refusal.Outcome("request", answer.status_code, answer.text[:120]))
    else:
        control = refusal.Outcome("login", login.code, login.reply)
    response = api.get(MAILBOXES_PATH)
    attempt = (refusal.Outcome("accepted", 200, response.text[:120]) if response.is_success
               else refusal.Outcome("request", response.status_code, response.text[:120]))
    record.measure("refusal_attempt", str(attempt))
    record.measure("control_attempt", str(control))
    verdict = refusal.enforce(refusal.API_TOKEN, attempt, control,
                              f"{api.base_url}{MAILBOXES_PATH}")
    assert verdict.kind == "passed", verdict.message
