"""``--env NAME|PATH``: the environment profile every suite runs against.

The profile is loaded in ``pytest_configure`` so a bad profile stops the run with one line
before collection. Settings precedence follows pytest-django: CLI > environment variable
(``MSSANTE_ENV``) > nothing (an explicit choice is required: there is no silent default
against a platform).

The secrets the selected suites need are checked there too (:data:`SUITE_SECRETS`): an unset
variable named by the profile is the same one line, not a failure in the middle of the run.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from plugins import igc_sante
from plugins import profile as profiles
from plugins.profile import Profile, ProfileError, Section
from probes import vantage

PROFILE_KEY = pytest.StashKey[Profile]()
ORIGIN_KEY = pytest.StashKey[str]()
VANTAGE_KEY = pytest.StashKey[list[str]]()
SUITES = Path(__file__).resolve().parent.parent / "suites"
# Suite folder -> the profile sections whose secrets (string `*_env` keys; "mailboxes": every
# [[mailboxes]] password_env) its checks read. Selecting any path inside a folder (or suites/
# itself: all of them) makes those secrets required before the run starts; suites not listed
# read none. A section the profile does not declare needs nothing (its checks are skipped).
SUITE_SECRETS: dict[str, tuple[str, ...]] = {
    "smoke": ("postgres", "redis"),
    "post_deploy": ("api", "mailboxes", "postgres", "redis"),
    "mail": ("mailboxes",),
    "load": ("mailboxes",),
    "pre_deploy": ("postgres", "backup"),
    "backup": ("backup",),
}
# --deploy backs up and restores the platform (plugins/lifecycle.py, plugins/backups.py).
DEPLOY_SECRETS = ("postgres", "redis", "backup")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mssante", "mssante-check")
    group.addoption("--env", dest="mssante_env", metavar="NAME|PATH", default=None,
                    help="environment profile: a name in fixtures/environments/ or a .toml path "
                         "(default: $MSSANTE_ENV)")
    group.addoption("--strict-warnings", dest="mssante_strict_warnings", action="store_true",
                    help="turn warnings (e.g. certificate under 30 days) into failures")


def selected_suites(config: pytest.Config) -> list[str]:
    """The suite folders the command line selects (``suites/`` itself: every one); empty for
    the suite's own tests (tests/)."""
    selected: list[str] = []
    for arg in config.args:
        path = Path(str(config.invocation_params.dir), arg.split("::")[0]).resolve()
        if path == SUITES:
            return sorted(p.name for p in SUITES.iterdir() if p.is_dir() and p.name[0] != "_")
        if SUITES in path.parents:
            folder = path.relative_to(SUITES).parts[0]
            if folder not in selected:
                selected.append(folder)
    return selected


def _require_secrets(config: pytest.Config, profile: Profile) -> None:
    """ProfileError naming the first secret a selected suite (or --deploy) needs that is not set."""
    for suite in selected_suites(config):
        profiles.require_secrets(profile, SUITE_SECRETS.get(suite, ()), f"suites/{suite}")
    if config.getoption("mssante_deploy", None):
        profiles.require_secrets(profile, DEPLOY_SECRETS, "--deploy")


def configure(config: pytest.Config) -> None:
    name = config.getoption("mssante_env")
    origin = "command line (--env)"
    if not name and os.environ.get("MSSANTE_ENV"):
        name, origin = os.environ["MSSANTE_ENV"], "environment (MSSANTE_ENV)"
    if not name:
        if selected_suites(config):          # suites need a profile, tests/ do not
            raise pytest.UsageError(
                f"no environment: pass --env NAME (one of {', '.join(profiles.available())}) "
                "or set MSSANTE_ENV")
        return
    try:
        config.stash[PROFILE_KEY] = profiles.load(name)
        if not config.option.collectonly:    # listing the checks runs nothing, needs no secret
            _require_secrets(config, config.stash[PROFILE_KEY])
    except ProfileError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[ORIGIN_KEY] = origin
    vantage.bind_from(config.stash[PROFILE_KEY].data["environment"].get("source_address"))


def get_profile(config: pytest.Config) -> Profile | None:
    return config.stash.get(PROFILE_KEY, None)


def vantage_lines(config: pytest.Config) -> list[str]:
    """Where this run connects from, per endpoint (probes/vantage.py), measured once per run:
    the terminal header, results.json, summary.md and the evidence all show the same."""
    profile = get_profile(config)
    if profile is None:
        return []
    if VANTAGE_KEY not in config.stash:
        config.stash[VANTAGE_KEY] = vantage.summary(vantage.measure_all(profile.data))
    return config.stash[VANTAGE_KEY]


def pytest_report_header(config: pytest.Config) -> list[str]:
    profile = get_profile(config)
    if profile is None:
        return []
    anchors = igc_sante.anchors_statement(profile.data, profile.path.parent)
    return [f"mssante environment: {profile.name} ({profile.kind}) from {profile.path} "
            f"[{config.stash[ORIGIN_KEY]}]",
            *([f"mssante trust anchors: {anchors}"] if anchors else []),
            *(f"mssante vantage: {line}" for line in vantage_lines(config))]


@pytest.fixture(scope="session")
def env_profile(pytestconfig: pytest.Config) -> Profile:
    """The loaded profile (tests under suites/ always have one)."""
    profile = get_profile(pytestconfig)
    if profile is None:
        pytest.skip("no --env given")
    return profile


@pytest.fixture(scope="session")
def target(env_profile: Profile):
    """``target("smtp.submission")`` → the section, or skip "not configured in <env>"."""

    def get(name: str) -> Section:
        return env_profile.section(name)

    return get
