"""Malformed profiles as an operator meets them: one line, exit code 4, before anything runs.

Every case of issue 14's "Profiles" list, each a copy of the lab profile with one thing broken,
run through ``pytest suites/...`` in a subprocess (and the health check and backup commands for
some): exit code 4, exactly one non-empty line naming the file and the key, never a traceback.
None of them needs the lab: the profile is refused before any check runs.
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from plugins.profile import ENV_DIR
from tests.labctl import REPO
from tests.profile_variants import PRODUCTION, lab_variant

WHITELIST = f'whitelist = "{ENV_DIR}/../../.lab/postfix/listeblanchemssante.xml"\n'
PEER_KEY = f'peer_key = "{ENV_DIR}/../../.lab/pki/clients/peer/key.pem"\n'
PLATFORM_ENV = (f'platform_env_file = "{ENV_DIR}/../../.lab/api/api.env"\n'
                "platform_env_port = 10080\n")
LEAKED_PASSWORD = "Pr0file-Leak-42x"
UNSET = "MSSANTE_TEST_NEVER_SET_SECRET"


def _top(line: str, header: str) -> Callable[[str], str]:
    """Replace every ``header`` block of the lab profile (up to the next other header) by a
    top-level ``line`` (top-level keys must come before every table)."""
    def edit(text: str) -> str:
        kept, skipping = [], False
        for row in text.splitlines():
            if row.startswith("["):
                skipping = row.strip() == header
            if not skipping:
                kept.append(row)
        assert len(kept) < len(text.splitlines()), f"lab.toml has no {header}"
        return "\n".join([line, *kept]) + "\n"
    return edit


# id -> (replacements in lab.toml, text edit or None, suite run, what the line must name)
CASES: dict[str, tuple[dict[str, str], Callable[[str], str] | None, str, str]] = {
    "port-86036": ({"port = 10379\n": "port = 86036\n"}, None, "suites/smoke",
                   "[redis] key 'port' must be a port 1-65535, got 86036"),
    "port-true": ({"port = 10379\n": "port = true\n"}, None, "suites/smoke",
                  "[redis] key 'port' must be int, got bool"),
    "host-with-space": ({'[redis]\nhost = "127.0.0.1"': '[redis]\nhost = "db host"'}, None,
                        "suites/smoke", "[redis] key 'host' must be a host name"),
    "url-without-scheme": ({'url = "http://127.0.0.1:10093"': 'url = "127.0.0.1:10093"'}, None,
                           "suites/smoke", "[alertmanager] key 'url' must be an https:// or http:// URL"),
    "url-with-credentials": (
        {'url = "https://localhost:10443"': f'url = "https://admin:{LEAKED_PASSWORD}@localhost:10443"'},
        None, "suites/smoke", "[api] key 'url' must not carry credentials"),
    "timeout-zero": ({"http_timeout_s = 5": "http_timeout_s = 0"}, None, "suites/smoke",
                     "[thresholds] key 'http_timeout_s' must be a number greater than 0, got 0"),
    "timeout-negative": ({"command_timeout_s = 120": "command_timeout_s = -0.5"}, None,
                         "suites/smoke", "[lifecycle] key 'command_timeout_s' must be a number greater than 0"),
    "section-rediss": ({"[redis]\n": "[rediss]\n"}, None, "suites/smoke",
                       "unknown section [rediss] (did you mean [redis]?)"),
    "section-imapss": ({"[imaps]\n": "[imapss]\n"}, None, "suites/smoke",
                       "unknown section [imapss] (did you mean [imaps]?)"),
    "section-smtp-mxx": ({"[smtp.mx]\n": "[smtp.mxx]\n"}, None, "suites/smoke",
                         "unknown section [smtp.mxx] (did you mean [smtp.mx]?)"),
    "key-required-capabilites": (
        {"required_capabilities": "required_capabilites"}, None, "suites/smoke",
        "[imap] unknown key 'required_capabilites' (did you mean 'required_capabilities'?)"),
    "environment-not-a-table": ({}, _top('environment = "lab"', "[environment]"), "suites/smoke",
                                "[environment] must be a table, got str"),
    "hosts-entry-not-a-table": ({}, _top('hosts = ["platform"]', "[[hosts]]"), "suites/smoke",
                                "[[hosts]] #1: must be a table"),
    "mailboxes-entry-not-a-table": ({}, _top('mailboxes = ["medecin.test@lab.mssante.fr"]',
                                             "[[mailboxes]]"), "suites/smoke",
                                    "[[mailboxes]] #1: must be a table"),
    "hosts-port-unknown-key": ({'{ port = 10025, process = "master" }':
                                '{ port = 10025, proces = "master" }'}, None, "suites/smoke",
                               "[[hosts]] #1 ports #1: unknown key 'proces'"),
    "certificate-file-unknown-key": ({"client_auth = true": "client_auth = true\nmode = 600"},
                                     None, "suites/smoke",
                                     "[certificates] files #1: unknown key 'mode'"),
    "load-unknown-key": ({"min_rps = 5 ": "min_rsp = 5 "}, None, "suites/smoke",
                         "[load.smtp] unknown key 'min_rsp' (did you mean 'min_rps'?)"),
    "unset-redis-password": ({'password_env = "MSSANTE_LAB_REDIS_PASSWORD"':
                              f'password_env = "{UNSET}"'}, None, "suites/smoke",
                             f"[redis] key 'password_env': environment variable {UNSET} is not set"),
    "unset-mailbox-password": ({'password_env = "MSSANTE_LAB_MEDECIN_PASSWORD"':
                                f'password_env = "{UNSET}"'}, None, "suites/mail",
                               f"[[mailboxes]] #1 (medecin.test@lab.mssante.fr) key 'password_env': "
                               f"environment variable {UNSET} is not set (needed by suites/mail"),
    "name-dotdot": ({'name = "name-dotdot"': 'name = "../.."'}, None, "suites/smoke",
                    "[environment] key 'name' must use only letters, digits"),
    "quoted-placeholder": ({'deploy_command = "{python} -m lab deploy {version}"':
                            "deploy_command = \"{python} -m lab deploy '{version}'\""}, None,
                           "suites/smoke", "[lifecycle] key 'deploy_command' must not quote a "
                                           "placeholder ({version} inside quotes)"),
    "unknown-placeholder": ({'maintenance_on_command = "{python} -m lab maintenance on"':
                             'maintenance_on_command = "{python} -m lab maintenance on {version}"'},
                            None, "suites/smoke", "[lifecycle] key 'maintenance_on_command' has "
                                                  "unknown placeholder {version}"),
    # Issue 13: production profiles trust IGC Santé PRODUCTION only and cannot lack the
    # mandatory MX material; required_env must say where the platform keeps it; a declared
    # process must hold a declared port.
    "production-lab-anchors": ({'kind = "test"': 'kind = "production"',
                                "self_made = true": "self_made = false"}, None, "suites/smoke",
                               "[trust] key 'anchors' must be exactly the IGC Santé PRODUCTION "
                               "anchors (by SHA-256 fingerprint)"),
    "production-self-made": ({**PRODUCTION, "self_made = false": "self_made = true"}, None,
                             "suites/smoke", "[trust] key 'self_made' must not be true in a "
                                             "production profile"),
    "production-no-whitelist": ({**PRODUCTION, WHITELIST: ""}, None, "suites/smoke",
                                "[smtp.mx] missing key 'whitelist' (required in a production "
                                "profile"),
    "production-no-peer-key": ({**PRODUCTION, PEER_KEY: ""}, None, "suites/smoke",
                               "[smtp.mx] missing key 'peer_key' (required in a production "
                               "profile"),
    "required-env-nowhere": ({PLATFORM_ENV: ""}, None, "suites/pre_deploy",
                             "[environment] required_env needs 'platform_env_file'"),
    "process-without-port": ({'{ port = 10379, process = "redis-server" }':
                              '{ port = 10379, process = "redis" }'}, None, "suites/pre_deploy",
                             "[[hosts]] #1: processes item 'redis-server' holds no declared port"),
    "api-token-not-a-pointer": ({'token_pointer = "/data/token"': 'token_pointer = "data.token"'},
                                None, "suites/post_deploy",
                                "[api] key 'token_pointer' must be a JSON pointer"),
    "api-health-format": ({'health_checks_format = "objects"': 'health_checks_format = "list"'},
                          None, "suites/smoke",
                          "[api] key 'health_checks_format' must be one of objects, strings"),
    "source-address-name": ({"platform_env_port = 10080": 'platform_env_port = 10080\n'
                             'source_address = "suite-host"'}, None, "suites/smoke",
                            "[environment] key 'source_address' must be an IPv4 or IPv6 address"),
}


def _profile(tmp_path: Path, case: str) -> Path:
    replacements, edit, _, _ = CASES[case]
    path = lab_variant(tmp_path, case, replacements)
    if edit is not None:
        path.write_text(edit(path.read_text()))
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("MSSANTE_ENV", UNSET)}
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env=environ)


def _assert_one_line(proc: subprocess.CompletedProcess[str], path: Path, expected: str) -> str:
    output = proc.stdout + proc.stderr
    lines = [line for line in output.splitlines() if line.strip()]
    assert proc.returncode == 4, output
    assert "Traceback" not in output and "INTERNALERROR" not in output, output
    assert len(lines) == 1, output
    assert str(path) in lines[0] and expected in lines[0], lines[0]
    assert LEAKED_PASSWORD not in output
    return lines[0]


@pytest.mark.parametrize("case", CASES)
def test_suite_run_refuses_the_profile(tmp_path: Path, case: str) -> None:
    path = _profile(tmp_path, case)
    proc = _run("-m", "pytest", "-p", "no:cacheprovider", CASES[case][2], "--env", str(path),
                "--reports-dir", str(tmp_path / "reports"))
    _assert_one_line(proc, path, CASES[case][3])
    assert not (tmp_path / "reports").exists(), "a refused profile must not start a run"


@pytest.mark.parametrize("case", ["port-86036", "environment-not-a-table", "url-with-credentials",
                                  "hosts-entry-not-a-table"])
@pytest.mark.parametrize("command", [("plugins.healthcheck", "--output", "{tmp}/hs.json"),
                                     ("plugins.backups", "--list")], ids=["healthcheck", "backups"])
def test_commands_refuse_the_profile_the_same_way(tmp_path: Path, case: str,
                                                  command: tuple[str, ...]) -> None:
    path = _profile(tmp_path, case)
    args = [a.replace("{tmp}", str(tmp_path)) for a in command[1:]]
    line = _assert_one_line(_run("-m", command[0], "--env", str(path), *args), path,
                            CASES[case][3])
    assert line.startswith("error: ")
    assert not (tmp_path / "hs.json").exists()


def test_secrets_of_suites_not_selected_are_not_required(tmp_path: Path) -> None:
    """suites/tls reads no secret: an unset mailbox password does not stop it (a run that
    selects no check, so nothing touches the lab: pytest's "no tests ran", exit 5)."""
    path = _profile(tmp_path, "unset-mailbox-password")
    proc = _run("-m", "pytest", "-p", "no:cacheprovider", "suites/tls", "--env", str(path),
                "-k", "no_check_is_named_like_this", "--reports-dir", str(tmp_path / "reports"))
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "is not set" not in proc.stdout + proc.stderr


def test_listing_the_checks_needs_no_secret(tmp_path: Path) -> None:
    """--collect-only runs nothing: an unset secret of a selected suite does not stop it (a
    fresh checkout lists its checks before the lab has generated its secrets)."""
    path = _profile(tmp_path, "unset-mailbox-password")
    proc = _run("-m", "pytest", "-p", "no:cacheprovider", "suites/mail", "--env", str(path),
                "--collect-only", "-q", "--reports-dir", str(tmp_path / "reports"))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_deploy_needs_the_backup_secrets_before_anything_runs(tmp_path: Path) -> None:
    """suites/tls reads no secret, but --deploy backs up PostgreSQL and Redis: refused at once."""
    path = _profile(tmp_path, "unset-redis-password")
    proc = _run("-m", "pytest", "-p", "no:cacheprovider", "suites/tls", "--env", str(path),
                "--deploy", "1.1.0", "--reports-dir", str(tmp_path / "reports"))
    line = _assert_one_line(proc, path, f"[redis] key 'password_env': environment variable "
                                        f"{UNSET} is not set (needed by --deploy;")
    assert line.startswith("ERROR: ")
