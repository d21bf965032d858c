"""suites/pre_deploy against the real lab: green when good, and each broken item named.

Broken input comes from variants of the lab profile (a required variable nobody set, a
certificate file expiring in 5 days, a key file readable by all, a disk threshold no disk
meets, a Compose file that does not validate), from a dirty platform checkout, and from a
broken lab (database and Redis down, a stranger on Prometheus's port).
"""
from __future__ import annotations

import os
import socket
import stat

import pytest

from lab import deploy
from plugins.profile import ENV_DIR
from tests.labctl import run_suite
from tests.profile_variants import PRODUCTION, lab_variant
from tests.suites.backup_lab import platform_lab  # noqa: F401 - fixture

SUITE = "suites/pre_deploy"
T = "suites/pre_deploy/"
# A stand-in for a docker whose Compose plugin rejects the file (the lab has no Compose).
DOCKER_STUB = """#!/bin/sh
case "$*" in
  "compose version") echo "Docker Compose version v2.29.0 (mssante-check test stub)";;
  *config*) echo "yaml: line 3: mapping values are not allowed in this context" >&2; exit 15;;
  *) exit 1;;
esac
"""


def test_good_lab_passes(platform_lab, tmp_path):
    run = run_suite(SUITE, tmp_path=tmp_path)
    assert run.returncode == 0, run.messages()
    assert run.failing() == set(), run.messages()
    assert run.with_outcome("skipped") == {
        T + "test_environment.py::test_node_env_is_production",
        T + "test_host.py::test_service_running[none]",
        T + "test_host.py::test_docker_compose_config"}, run.messages()
    messages = run.messages()
    assert "NODE_ENV=production is required of production profiles" in messages
    assert "not configured in lab: [lifecycle] compose_files" in messages
    assert len(run.with_outcome("passed")) >= 25


def test_broken_items_are_named(platform_lab, tmp_path):
    exposed = tmp_path / "exposed-key.pem"
    exposed.write_text("not really a key\n")
    os.chmod(exposed, 0o644)
    (tmp_path / "docker-compose.yml").write_text("services:\n  api: image: x\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(DOCKER_STUB)
    os.chmod(bin_dir / "docker", stat.S_IRWXU)
    profile = lab_variant(tmp_path, "labbroken", {
        # Set only where mssante-check reads its own secrets (its environment, its env_file):
        # neither is the platform's, so both fail.
        'required_env = ["MSSANTE_API_DB_PASSWORD_ENV"':
            'required_env = ["MSSANTE_LAB_NEVER_SET", "MSSANTE_LAB_DB_PASSWORD", '
            '"MSSANTE_API_DB_PASSWORD_ENV"',
        'server/good/cert.pem"': 'server/expiring/cert.pem"',
        "disk_free_gb = 1 ": "disk_free_gb = 1000000 ",
        '/.lab/redis/redis.conf"]': f'/.lab/redis/redis.conf", "{exposed}"]',
        "command_timeout_s = 120":
            f'command_timeout_s = 120\ncompose_files = ["{tmp_path}/docker-compose.yml"]',
    })
    run = run_suite(SUITE, "--env", str(profile), tmp_path=tmp_path,
                    env={"PATH": f"{bin_dir}:{os.environ['PATH']}",
                         "MSSANTE_LAB_NEVER_SET": "set-for-the-suite-only"})
    assert run.returncode != 0
    expected = {
        T + "test_environment.py::test_required_variable_set[MSSANTE_LAB_NEVER_SET]":
            "MSSANTE_LAB_NEVER_SET is not set on the platform (required by [environment] "
            "required_env of labbroken.toml; looked up in platform:",
        T + "test_environment.py::test_required_variable_set[MSSANTE_LAB_DB_PASSWORD]":
            "/.lab/api/api.env; platform: environment of the process holding port 10080 (",
        T + "test_certificates.py::test_certificate_file_valid[server]":
            "expiring/cert.pem): certificate expires in",
        T + "test_host.py::test_disk_free[platform-.lab]": "GB before a deployment",
        T + f"test_host.py::test_key_file_owner_only[platform-{exposed}]":
            "has mode 0644, expected 0600",
        T + "test_host.py::test_docker_compose_config":
            "yaml: line 3: mapping values are not allowed",
    }
    assert run.failing() == set(expected), run.messages()
    messages = {r["nodeid"]: r["message"] for r in run.results["results"]}
    for nodeid, text in expected.items():
        assert text in messages[nodeid], messages[nodeid]
    assert "(< 7 days)" in messages[T + "test_certificates.py::test_certificate_file_valid[server]"]


def test_node_env_production_is_required_for_production(platform_lab, tmp_path):
    """NODE_ENV is read from the platform's env file (then its process), never from the
    suite's environment: NODE_ENV=production set for mssante-check alone still fails."""
    env_file = tmp_path / "platform.env"
    profile = lab_variant(tmp_path, "labprod", {
        **PRODUCTION, f'platform_env_file = "{ENV_DIR}/../../.lab/api/api.env"':
            f'platform_env_file = "{env_file}"'})
    test = T + "test_environment.py::test_node_env_is_production"
    env_file.write_text("MSSANTE_API_LISTEN=127.0.0.1:10080\n")
    unset = run_suite(test, "--env", str(profile), tmp_path=tmp_path / "unset",
                      env={"NODE_ENV": "production"})
    assert unset.outcomes() == {test: "failed"}
    assert ("NODE_ENV on the platform is not set: a production deployment needs "
            "NODE_ENV=production" in unset.messages())
    env_file.write_text("NODE_ENV=development\n")
    wrong = run_suite(test, "--env", str(profile), tmp_path=tmp_path / "wrong")
    assert wrong.outcomes() == {test: "failed"}
    assert f"NODE_ENV on the platform is 'development' in platform:{env_file}" in wrong.messages()
    env_file.write_text("NODE_ENV=production\n")
    production = run_suite(test, "--env", str(profile), tmp_path=tmp_path / "set",
                           env={"NODE_ENV": ""})
    assert production.outcomes() == {test: "passed"}


def test_version_must_be_a_tag_and_tree_clean(platform_lab, tmp_path):
    tests = [T + "test_source.py::test_version_is_a_tag",
             T + "test_source.py::test_working_tree_clean"]
    stray = deploy.checkout_dir() / "hotfix.sql"
    stray.write_text("-- edited on the server\n")
    try:
        run = run_suite(*tests, "--target-version", "9.9.9", tmp_path=tmp_path)
    finally:
        stray.unlink()
    assert run.failing() == set(tests), run.messages()
    assert "version 9.9.9 is not a tag" in run.messages()
    assert "1 uncommitted change(s): ?? hotfix.sql" in run.messages()
    clean = run_suite(*tests, "--target-version", "1.1.0", tmp_path=tmp_path / "clean")
    assert clean.failing() == set(), clean.messages()


@pytest.fixture
def stranger_on_prometheus_port(lab_fault):
    lab_fault("db-down", "redis-down", "prometheus-down")
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 10090))
        sock.listen()
        yield


def test_broken_lab_fails(platform_lab, stranger_on_prometheus_port, tmp_path):
    run = run_suite(SUITE, tmp_path=tmp_path)
    must_fail = {T + "test_datastores.py::test_postgres_reachable",
                 T + "test_host.py::test_process_running[platform-postgres]",
                 T + "test_host.py::test_process_running[platform-redis-server]",
                 T + "test_host.py::test_process_running[platform-prometheus]",
                 T + "test_host.py::test_port_free_or_expected[platform-10090]"}
    assert must_fail <= run.failing(), run.messages()
    assert "port 10090 is held by" in run.messages() and "expected prometheus" in run.messages()
