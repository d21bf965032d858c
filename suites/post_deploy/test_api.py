"""Post-deployment tests 1, 7, 8: API health, authentication, endpoints (seed §Validation).

Paths, fields and the health shape are the profile's API contract (``api_contract``,
policy/api_contract.py), the seed's by default."""
from __future__ import annotations

import httpx
import pytest

from policy import refusal
from policy.api_contract import ApiContract

pytestmark = pytest.mark.service("api")


@pytest.mark.requirement("SEED-POST-1")
def test_health_reports_dependencies_ok(api, api_contract, record):
    path = api_contract.health_path
    response = api.get(path)
    record.measure("api_health_ms", round(response.elapsed.total_seconds() * 1000, 1), "ms")
    assert response.status_code == 200, (
        f"{path} answered {response.status_code}: {response.text[:200]}")
    health = api_contract.judge_health(_json(response, path))
    record.measure("api_health_status", repr(health.status))
    assert health.healthy, "; ".join(health.problems)


def _json(response: httpx.Response, path: str) -> object:
    try:
        return response.json()
    except ValueError:
        raise AssertionError(f"{path} answered {response.status_code} without JSON: "
                             f"{response.text[:120]!r}") from None


@pytest.mark.requirement("SEED-POST-7")
def test_login_returns_token(api_login, api_contract, admin_credentials):
    email, password = admin_credentials
    response = api_login(email, password)
    assert response.status_code == 200, f"login answered {response.status_code}"
    assert api_contract.token(_json(response, api_contract.login_path)), (
        f"login answered 200 without a token at {api_contract.token_pointer}")


def _login_outcome(contract: ApiContract, response: httpx.Response) -> refusal.Outcome:
    """A login answer as the refusal policy reads it: accepted when it carries a token (never
    copied into the evidence)."""
    try:
        token = contract.token(response.json())
    except ValueError:
        token = None
    if response.status_code == 200 and token:
        return refusal.Outcome("accepted", 200, "a token")
    return refusal.Outcome("request", response.status_code, response.text[:120])


@pytest.mark.requirement("SEED-POST-7")
def test_login_refuses_wrong_password(api, api_login, api_contract, admin_credentials, record):
    """Refused (400/401/403, no token) for a wrong password, while the right one (the control,
    first) gets a token: an API refusing every login proves nothing (policy/refusal.py)."""
    email, password = admin_credentials
    control = _login_outcome(api_contract, api_login(email, password))
    attempt = _login_outcome(api_contract, api_login(email, "wrong-password-mssante-check"))
    record.measure("refusal_attempt", str(attempt))
    record.measure("control_attempt", str(control))
    verdict = refusal.enforce(refusal.API_PASSWORD, attempt, control,
                              f"{api.base_url}{api_contract.login_path}")
    assert verdict.kind == "passed", verdict.message


@pytest.mark.requirement("SEED-POST-8")
def test_mailboxes_with_token(api, api_login, api_contract, admin_credentials):
    login = api_login(*admin_credentials)
    assert login.status_code == 200, f"cannot log in to test endpoints ({login.status_code})"
    token = api_contract.token(_json(login, api_contract.login_path))
    assert token, f"login answered 200 without a token at {api_contract.token_pointer}"
    path = api_contract.mailboxes_path
    response = api.get(path, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, f"{path} answered {response.status_code}"
    assert api_contract.mailboxes(_json(response, path)) is not None, (
        f"{path}: no list at {api_contract.mailboxes_pointer}")


@pytest.mark.requirement("SEED-POST-8")
def test_mailboxes_without_token_is_401(api, api_login, api_contract, admin_credentials, record):
    """401 without a token, while the same request with a token from a login (the control)
    answers 200."""
    login_response = api_login(*admin_credentials)
    login = _login_outcome(api_contract, login_response)
    path = api_contract.mailboxes_path
    if login.accepted:
        token = api_contract.token(login_response.json())
        answer = api.get(path, headers={"Authorization": f"Bearer {token}"})
        control = (refusal.Outcome("accepted", 200, "") if answer.status_code == 200
                   else refusal.Outcome("request", answer.status_code, answer.text[:120]))
    else:
        control = refusal.Outcome("login", login.code, login.reply)
    response = api.get(path)
    attempt = (refusal.Outcome("accepted", 200, response.text[:120]) if response.is_success
               else refusal.Outcome("request", response.status_code, response.text[:120]))
    record.measure("refusal_attempt", str(attempt))
    record.measure("control_attempt", str(control))
    verdict = refusal.enforce(refusal.API_TOKEN, attempt, control,
                              f"{api.base_url}{path}")
    assert verdict.kind == "passed", verdict.message
