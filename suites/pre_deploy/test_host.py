"""Host-level checklist through pytest-testinfra: the profile's ``[[hosts]]`` connections.

Checklist items 7 (free disk) and 8 (ports free or held by the expected service), the
services the seed's production script checks after a deploy (here: before it: a declared
process runs when it holds its declared ports; a declared ``services`` unit is active), key files
readable by their owner only, and ``docker compose config`` where Docker Compose is present.
"""
from __future__ import annotations

import pytest

from plugins import hosts

pytestmark = pytest.mark.service("platform")


@pytest.mark.requirement("SEED-TECH-7")
def test_disk_free(disk_path, env_profile, record):
    spec, path = disk_path
    free = hosts.disk_free_gb(hosts.connect(spec.connection), path)
    threshold = env_profile.threshold("disk_free_gb")
    record.measure(f"{spec.name}: free disk for {path}", round(free, 1), "GB")
    assert free >= threshold, (f"{spec.name}: {free:.1f} GB free for {path}, the profile requires "
                               f"{threshold} GB before a deployment")


@pytest.mark.requirement("SEED-TECH-8")
def test_port_free_or_expected(platform_port, record):
    spec, port = platform_port
    holders = hosts.port_holders(hosts.connect(spec.connection), port.port)
    record.measure(f"{spec.name}: port {port.port}", ", ".join(sorted(holders)) or "free")
    assert not holders or any(h.startswith(port.process) for h in holders), (
        f"{spec.name}: port {port.port} is held by {', '.join(sorted(holders))}, "
        f"expected {port.process} (or free)")


@pytest.mark.requirement("LIFE-HOST-RUNNING")
def test_process_running(host_process, record):
    """Running means holding its ports: each port the profile binds to the process is held by
    a process of that name (``ss -ltnp``). A process of the same name elsewhere on the host,
    running for something else, does not count (issue 13)."""
    spec, name = host_process
    problems = hosts.not_running(hosts.connect(spec.connection), spec, name)
    ports = [p.port for p in spec.ports if p.process == name]
    record.measure(f"{spec.name}: {name} on ports {', '.join(map(str, ports))}",
                   "; ".join(problems) or "holds them all")
    assert not problems, f"{spec.name}: {name} is not running: {'; '.join(problems)}"


@pytest.mark.requirement("LIFE-HOST-RUNNING")
def test_service_running(host_service):
    spec, name = host_service
    service = hosts.connect(spec.connection).service(name)
    assert service.is_running, f"{spec.name}: service {name} is not running"


@pytest.mark.requirement("LIFE-HOST-KEYS")
def test_key_file_owner_only(key_file):
    spec, path = key_file
    file = hosts.connect(spec.connection).file(path)
    assert file.exists, f"{spec.name}: {path} does not exist"
    assert file.mode & 0o077 == 0, (
        f"{spec.name}: {path} has mode {file.mode:04o}, expected 0600 (owner only)")


@pytest.mark.requirement("LIFE-PRE-COMPOSE")
def test_docker_compose_config(platform, env_profile):
    spec, host = platform
    # Asked first: a profile without compose files is "not configured" whatever the host has.
    files = [str(env_profile.path.parent / f) for f in
             env_profile.section("lifecycle")["compose_files"]]
    if not host.exists("docker"):
        pytest.skip(f"docker is not installed on {spec.name}")
    version = host.run("docker compose version")
    if version.rc != 0:
        reason = (version.stderr or version.stdout).strip().splitlines()
        pytest.skip(f"docker compose is not available on {spec.name}: "
                    f"{reason[0] if reason else 'exit ' + str(version.rc)}")
    result = host.run("docker compose" + " -f %s" * len(files) + " config --quiet", *files)
    assert result.rc == 0, (f"docker compose config failed on {spec.name}: "
                            f"{(result.stderr or result.stdout).strip()[:500]}")
