"""The API contract: JSON pointers and health judging (policy/api_contract.py, pure)."""
from __future__ import annotations

import pytest

from plugins import profile
from policy.api_contract import ApiContract, PointerError, replace, resolve

SEED_HEALTH = {"status": "ok", "version": "1.0.0",
               "checks": {"database": {"status": "ok"}, "redis": {"status": "ok"}}}
READY_HEALTH = {"status": "ready", "checks": {"db": "ok", "redis": "ok"}}
READY = ApiContract(health_ok=("ok", "ready"), health_checks_format="strings")


@pytest.mark.parametrize(("pointer", "expected"), [
    ("", {"a": {"b/c": [1, {"~x": 2}]}}),
    ("/a/b~1c/0", 1),
    ("/a/b~1c/1/~0x", 2),
    ("/a/b~1c/2", None),           # index out of range
    ("/a/b~1c/x", None),           # a list takes only indexes
    ("/a/missing", None),
    ("/a/b~1c/0/deeper", None),    # through a scalar
])
def test_resolve_follows_rfc_6901(pointer, expected):
    assert resolve({"a": {"b/c": [1, {"~x": 2}]}}, pointer) == expected


@pytest.mark.parametrize("pointer", ["data/token", "/a~2"])
def test_resolve_refuses_what_is_not_a_pointer(pointer):
    with pytest.raises(PointerError):
        resolve({}, pointer)


def test_seed_shape_is_the_default():
    contract = ApiContract()
    assert contract.judge_health(SEED_HEALTH).healthy
    assert contract.token({"data": {"token": "t"}}) == "t"
    assert contract.token({"data": {"token": ""}}) is None
    assert contract.token({"token": "t"}) is None
    assert contract.mailboxes({"data": [{"address": "a"}]}) == [{"address": "a"}]
    assert contract.mailboxes({"data": {"items": []}}) is None
    assert contract.login_body("a@b.fr", "pw") == {"email": "a@b.fr", "password": "pw"}


def test_alternative_shape_fails_the_default_contract_and_passes_its_own():
    default = ApiContract().judge_health(READY_HEALTH)
    assert not default.healthy
    assert "status 'ready' at /status is not one of 'ok'" in default.problems[0]
    assert "dependencies not in ('ok')" in default.problems[1]
    assert READY.judge_health(READY_HEALTH).healthy
    assert READY.judge_health(READY_HEALTH).dependencies == {"db": "ok", "redis": "ok"}


@pytest.mark.parametrize(("body", "problem"), [
    ({"checks": {"db": "ok"}}, "no status at /status"),
    ({"status": "degraded", "checks": {"db": "ok"}}, "status 'degraded'"),
    ({"status": "ready"}, "does not report its dependencies"),
    ({"status": "ready", "checks": {}}, "does not report its dependencies"),
    ({"status": "ready", "checks": {"db": "ok", "redis": "down"}}, "{'redis': 'down'}"),
    ({"status": "ready", "checks": {"db": {"status": "ok"}}}, "{'db': None}"),   # wrong format
    (["ok"], "no status at /status"),
])
def test_unhealthy_or_unreadable_answers_are_never_healthy(body, problem):
    health = READY.judge_health(body)
    assert not health.healthy
    assert any(problem in p for p in health.problems), health.problems


def test_status_only_judging_ignores_missing_checks():
    assert READY.judge_health({"status": "ready"}, need_checks=False).healthy
    assert not READY.judge_health({"status": "starting"}, need_checks=False).healthy


def test_contract_from_a_profile_section(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('[environment]\nname = "t"\nkind = "test"\n[api]\nurl = "https://a.fr"\n'
                    'health_path = "/ready"\nhealth_ok = ["UP"]\ntoken_pointer = "/access_token"\n'
                    'login_email_field = "username"\nhealth_status_pointer = "/state/overall"\n')
    contract = ApiContract.from_section(profile.load(str(path)).section("api"))
    assert contract.health_path == "/ready" and contract.health_ok == ("UP",)
    assert contract.token({"access_token": "x"}) == "x"
    assert contract.login_body("u@a.fr", "p") == {"username": "u@a.fr", "password": "p"}
    assert contract.judge_health({"state": {"overall": "UP"}}, need_checks=False).healthy
    assert contract.mailboxes_path == "/api/v1/mailboxes"       # unset: the seed's


def test_replace_swaps_only_what_is_there():
    body = {"data": {"token": "t", "list": [1, 2]}}
    assert replace(body, "/data/token", "masked") and body["data"]["token"] == "masked"
    assert replace(body, "/data/list/1", 3) and body["data"]["list"] == [1, 3]
    assert not replace(body, "/data/missing", "x") and "missing" not in body["data"]
    assert not replace(body, "", "x") and not replace(body, "/data/list/5", 0)
