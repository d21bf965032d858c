"""Profile loading: every problem is one clear line naming the file and the key."""
from __future__ import annotations

from pathlib import Path

import pytest

from plugins import profile
from plugins.profile import NotConfigured, ProfileError

MINIMAL = """
[environment]
name = "t"
kind = "test"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.toml"
    path.write_text(text)
    return path


def test_shipped_profiles_load():
    for name in profile.available():
        assert profile.load(name).name


def test_unknown_environment_lists_known_ones():
    with pytest.raises(ProfileError, match=r"no profile file .*known environments: .*lab"):
        profile.load("does-not-exist")


def test_malformed_toml_names_file(tmp_path):
    path = write(tmp_path, "[environment\nname=")
    with pytest.raises(ProfileError, match=f"{path}: malformed TOML"):
        profile.load(str(path))


def test_missing_key_names_section_and_key(tmp_path):
    path = write(tmp_path, MINIMAL + '\n[api]\nhealth_path = "/health"\n')
    with pytest.raises(ProfileError, match=r"\[api\] missing key 'url'"):
        profile.load(str(path))


def test_wrong_type_is_named(tmp_path):
    path = write(tmp_path, MINIMAL + '\n[redis]\nhost = "h"\nport = "6379"\n')
    with pytest.raises(ProfileError, match=r"\[redis\] key 'port' must be int, got str"):
        profile.load(str(path))


def test_unknown_key_is_refused(tmp_path):
    path = write(tmp_path, MINIMAL + '\n[redis]\nhost = "h"\nport = 1\nprot = 2\n')
    with pytest.raises(ProfileError, match=r"\[redis\] unknown key 'prot'"):
        profile.load(str(path))


def test_bad_kind(tmp_path):
    path = write(tmp_path, MINIMAL.replace('"test"', '"prodd"'))
    with pytest.raises(ProfileError, match="kind' must be one of test, production"):
        profile.load(str(path))


def test_secret_written_in_profile_is_refused(tmp_path):
    path = write(tmp_path, MINIMAL + '\n[redis]\nhost = "h"\nport = 1\npassword = "x"\n')
    with pytest.raises(ProfileError, match="secrets must not be written in a profile"):
        profile.load(str(path))


def test_missing_section_is_not_configured(tmp_path):
    loaded = profile.load(str(write(tmp_path, MINIMAL)))
    with pytest.raises(NotConfigured, match=r"not configured in t: \[grafana\]"):
        loaded.section("grafana")


def test_secret_from_environment_wins_over_env_file(tmp_path, monkeypatch):
    (tmp_path / "s.env").write_text("MY_SECRET=from-file-123\n")
    path = write(tmp_path, MINIMAL.replace('kind = "test"', 'kind = "test"\nenv_file = "s.env"')
                 + '\n[redis]\nhost = "h"\nport = 1\npassword_env = "MY_SECRET"\n')
    monkeypatch.delenv("MY_SECRET", raising=False)
    assert profile.load(str(path)).section("redis").secret("password") == "from-file-123"
    monkeypatch.setenv("MY_SECRET", "from-env-456")
    assert profile.load(str(path)).section("redis").secret("password") == "from-env-456"


def test_unset_secret_is_an_error_naming_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("NOPE_SECRET", raising=False)
    path = write(tmp_path, MINIMAL + '\n[redis]\nhost = "h"\nport = 1\npassword_env = "NOPE_SECRET"\n')
    with pytest.raises(RuntimeError, match=r"NOPE_SECRET \(named by \[redis\] password_env"):
        profile.load(str(path)).section("redis").secret("password")


def test_mailboxes_come_with_their_passwords_or_name_the_missing_variable(tmp_path, monkeypatch):
    path = write(tmp_path, MINIMAL + '\n[[mailboxes]]\naddress = "a@t.fr"\n'
                 'password_env = "BOX_A_PASSWORD"\n')
    monkeypatch.setenv("BOX_A_PASSWORD", "pw-a-123")
    assert profile.load(str(path)).mailboxes() == [("a@t.fr", "pw-a-123")]
    monkeypatch.delenv("BOX_A_PASSWORD")
    with pytest.raises(RuntimeError, match=r"BOX_A_PASSWORD \(mailbox a@t.fr\) is not set"):
        profile.load(str(path)).mailboxes()
    assert profile.load(str(write(tmp_path, MINIMAL))).mailboxes() == []
