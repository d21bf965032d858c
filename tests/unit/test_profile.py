"""Profile loading: every problem is one clear line naming the file and the key."""
from __future__ import annotations

from pathlib import Path

import pytest

from plugins import profile
from plugins.profile import NotConfigured, ProfileError
from probes.errors import SecretNotSet

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
    with pytest.raises(SecretNotSet, match=r"NOPE_SECRET \(named by \[redis\] password_env"):
        profile.load(str(path)).section("redis").secret("password")


def test_mailboxes_come_with_their_passwords_or_name_the_missing_variable(tmp_path, monkeypatch):
    path = write(tmp_path, MINIMAL + '\n[[mailboxes]]\naddress = "a@t.fr"\n'
                 'password_env = "BOX_A_PASSWORD"\n')
    monkeypatch.setenv("BOX_A_PASSWORD", "pw-a-123")
    assert profile.load(str(path)).mailboxes() == [("a@t.fr", "pw-a-123")]
    monkeypatch.delenv("BOX_A_PASSWORD")
    with pytest.raises(SecretNotSet, match=r"BOX_A_PASSWORD \(mailbox a@t.fr\) is not set"):
        profile.load(str(path)).mailboxes()
    assert profile.load(str(write(tmp_path, MINIMAL))).mailboxes() == []


# --- strict at every depth (issue 14 item 3); subprocess runs: tests/plugin/test_profile_errors.py

def refused(tmp_path: Path, text: str) -> str:
    """The one-line ProfileError a profile gets (the file is always named first)."""
    path = write(tmp_path, text)
    with pytest.raises(ProfileError) as error:
        profile.load(str(path))
    message = str(error.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    return message[len(f"{path}: "):]


@pytest.mark.parametrize(("extra", "expected"), [
    ('[redis]\nhost = "h"\nport = 86036\n', "[redis] key 'port' must be a port 1-65535, got 86036"),
    ('[redis]\nhost = "h"\nport = 0\n', "[redis] key 'port' must be a port 1-65535, got 0"),
    ('[redis]\nhost = "h"\nport = true\n', "[redis] key 'port' must be int, got bool"),
    ('[redis]\nhost = "h"\nport = 6379.0\n', "[redis] key 'port' must be int, got float"),
    ('[redis]\nhost = "my host"\nport = 1\n', "[redis] key 'host' must be a host name"),
    ('[redis]\nhost = "redis://h"\nport = 1\n', "[redis] key 'host' must be a host name"),
    ('[redis]\nhost = "h/x"\nport = 1\n', "[redis] key 'host' must be a host name"),
    ('[redis]\nhost = "1.2.3.999"\nport = 1\n', "[redis] key 'host' must be a host name"),
    ('[api]\nurl = "api.example.fr"\n', "[api] key 'url' must be an https:// or http:// URL"),
    ('[api]\nurl = "ftp://api.example.fr"\n', "[api] key 'url' must be an https:// or http:// URL"),
    ('[api]\nurl = "https://api.example.fr:99999"\n', "[api] key 'url' must have a host and a port 1-65535"),
    ('[api]\nurl = "https://api.example.fr:0"\n', "[api] key 'url' must have a host and a port 1-65535"),
    ('[api]\nurl = "https://bad host.fr"\n', "[api] key 'url' must be a URL without spaces"),
    ('[api]\nurl = "https://:443"\n', "[api] key 'url' must have a host name"),
    ('[thresholds]\nhttp_timeout_s = 0\n', "[thresholds] key 'http_timeout_s' must be a number greater than 0"),
    ('[thresholds]\nconnect_timeout_s = -1.5\n', "[thresholds] key 'connect_timeout_s' must be a number greater than 0"),
    ('[thresholds]\nconnect_timeout_s = nan\n', "[thresholds] key 'connect_timeout_s' must be a number greater than 0"),
    ('[thresholds]\ncert_fail_days = 0\n', "[thresholds] key 'cert_fail_days' must be a number greater than 0"),
    ('[backup]\ndir = "b"\ntimeout_s = inf\n', "[backup] key 'timeout_s' must be a number greater than 0, got inf"),
    ('[load]\np95_ms = 1\nmax_failure_ratio = 1.5\nmin_rps = 1\n', "[load] key 'max_failure_ratio' must be a ratio"),
    ('[load]\np95_ms = 1\nmax_failure_ratio = 0\nmin_rps = 1\nusers = 0\n', "[load] key 'users' must be a number greater than 0"),
    ('[rediss]\nhost = "h"\n', "unknown section [rediss] (did you mean [redis]?)"),
    ('[smtp.mxx]\nhost = "h"\n', "unknown section [smtp.mxx] (did you mean [smtp.mx]?)"),
    ('[smtp]\nhost = "h"\n', "[smtp] unknown key 'host' (expected one of: submission, mx)"),
    ('[load.soap]\nusers = 1\n', "unknown section [load.soap] (known: [load.api], [load.smtp], [load.imap])"),
    ('[[mailboxs]]\naddress = "a@t.fr"\n', "unknown array of tables [[mailboxs]] (did you mean [[mailboxes]]?)"),
    ('[imap]\nhost = "h"\nport = 1\nrequired_capabilites = ["IDLE"]\n',
     "[imap] unknown key 'required_capabilites' (did you mean 'required_capabilities'?)"),
    ('[imap]\nhost = "h"\nport = 1\nrequired_capabilities = ["IDLE", 1]\n',
     "[imap] key 'required_capabilities' must be a list of strings; item 2 is int"),
    ('[imap]\nhost = "h"\nport = 1\ntls = "ssl"\n', "[imap] key 'tls' must be one of starttls, implicit, none"),
    ('[redis]\nhost = "h"\nport = 1\npassword_env = "MY-VAR"\n', "[redis] key 'password_env' must name an environment variable"),
    ('[certificates]\nfiles = "x"\n', "[certificates] files must be an array of tables"),
    ('[certificates]\nfiles = [1]\n', "[certificates] files #1: must be a table {name, cert, key"),
    ('[[certificates.files]]\nname = "a"\ncert = "c"\n', "[certificates] files #1: missing key 'key'"),
    ('[[certificates.files]]\nname = "a/b"\ncert = "c"\nkey = "k"\n', "[certificates] files #1: key 'name' must use only"),
    ('[[certificates.files]]\nname = "a"\ncert = "c"\nkey = "k"\nhosts = ["a b"]\n',
     "[certificates] files #1: key 'hosts' must be a list of host names or IP addresses; item 1"),
    ('[[certificates.files]]\nname = "a"\ncert = "c"\nkey = "k"\n[[certificates.files]]\nname = "a"\n'
     'cert = "c"\nkey = "k"\n', "[certificates] files #2: key 'name' must be unique, 'a' is also #1"),
    ('[[mailboxes]]\naddress = "a@t.fr"\n', "[[mailboxes]] #1: missing key 'password_env'"),
    ('[[mailboxes]]\naddress = "a@t.fr"\npassword_env = "P"\nnote = "x"\n', "[[mailboxes]] #1: unknown key 'note'"),
    ('[[mailboxes]]\naddress = "not an address"\npassword_env = "P"\n', "[[mailboxes]] #1: key 'address' must be an e-mail address"),
    ('[[hosts]]\nname = "p"\nconnection = "local://"\nports = [{ port = 1, process = "x", pid = 3 }]\n',
     "[[hosts]] #1 ports #1: unknown key 'pid'"),
    ('[[hosts]]\nname = "p"\nconnection = "local://"\nports = [{ port = 70000, process = "x" }]\n',
     "[[hosts]] #1 ports #1: key 'port' must be a port 1-65535, got 70000"),
    ('[[hosts]]\nname = "p"\nconnection = "local://"\nports = [25]\n', "[[hosts]] #1 ports #1: must be a table {port, process}, got int"),
    ('[[hosts]]\nname = "p"\nconnection = "ftp://h"\n', "[[hosts]] #1: key 'connection' must be a testinfra connection"),
    ('[[hosts]]\nname = "p"\nconnection = "ssh://deploy:hunter2@h"\n', "[[hosts]] #1: key 'connection' must not carry a password"),
    ('[lifecycle]\nhost = "nowhere"\ndeploy_command = "d {version}"\nrollback_command = "r {version}"\n',
     "[lifecycle] key 'host' must name a [[hosts]] entry (none declared), got 'nowhere'"),
    ('[lifecycle]\ndeploy_command = "d \'{version}\'"\nrollback_command = "r"\n',
     "[lifecycle] key 'deploy_command' must not quote a placeholder ({version} inside quotes)"),
    ('[lifecycle]\ndeploy_command = \'d --tag="v{version}"\'\nrollback_command = "r"\n',
     "[lifecycle] key 'deploy_command' must not quote a placeholder ({version} inside quotes)"),
    ('[lifecycle]\ndeploy_command = "d {verison}"\nrollback_command = "r"\n',
     "[lifecycle] key 'deploy_command' has unknown placeholder {verison} (expected: {python}, {version})"),
    ('[lifecycle]\ndeploy_command = "d \'{version}"\nrollback_command = "r"\n',
     "[lifecycle] key 'deploy_command' must be a command line that splits with shlex (No closing quotation)"),
    ('[lifecycle]\ndeploy_command = "  "\nrollback_command = "r"\n', "[lifecycle] key 'deploy_command' must be a non-empty command"),
    ('[lifecycle]\ndeploy_command = "cd /x && d {version}"\nrollback_command = "r"\n',
     "[lifecycle] key 'deploy_command' uses shell syntax ('&&') but is run without a shell"),
    ('[lifecycle]\ndeploy_command = "d {version}"\nrollback_command = "r; s"\n',
     "[lifecycle] key 'rollback_command' uses shell syntax (';')"),
    ('[lifecycle]\ndeploy_command = "d {version} > log"\nrollback_command = "r"\n',
     "[lifecycle] key 'deploy_command' uses shell syntax ('>')"),
    ('[backup]\ndir = "b"\nredis_restore_command = "cp \\"{rdb}\\" /x"\n',
     "[backup] key 'redis_restore_command' must not quote a placeholder ({rdb} inside quotes)"),
    ('[api]\nurl = "https://a.fr"\ntoken_pointer = "data.token"\n',
     "[api] key 'token_pointer' must be a JSON pointer ('' or starting with '/'"),
    ('[api]\nurl = "https://a.fr"\nhealth_status_pointer = "/a~2b"\n',
     "[api] key 'health_status_pointer' must escape '~' as ~0"),
    ('[api]\nurl = "https://a.fr"\nhealth_path = "health"\n', "[api] key 'health_path' must be a path starting with '/'"),
    ('[api]\nurl = "https://a.fr"\nlogin_path = "https://b.fr/login"\n', "[api] key 'login_path' must be a path"),
    ('[api]\nurl = "https://a.fr"\nhealth_ok = []\n', "[api] key 'health_ok' must list at least one value"),
    ('[api]\nurl = "https://a.fr"\nhealth_ok = ["ok", " "]\n', "[api] key 'health_ok' must be a list of non-empty strings; item 2"),
    ('[api]\nurl = "https://a.fr"\nhealth_checks_format = "list"\n',
     "[api] key 'health_checks_format' must be one of objects, strings, got 'list'"),
    ('[alertmanager]\nurl = "http://a.fr"\ntest_alert = "yes"\n', "[alertmanager] key 'test_alert' must be bool, got str"),
    ('colour = "blue"\n', "unknown top-level key 'colour'"),
    ('hosts = { name = "p" }\n', "[[hosts]] must be an array of tables"),
    ('trust = "x"\n', "[trust] must be a table, got str"),
])
def test_strict_profile_problems_are_one_line(tmp_path, extra, expected):
    text = extra + MINIMAL if not extra.startswith("[") else MINIMAL + "\n" + extra
    assert refused(tmp_path, text).startswith(expected), refused(tmp_path, text)


@pytest.mark.parametrize(("environment", "expected"), [
    ('environment = "lab"\n', "[environment] must be a table, got str"),
    ('[environment]\nname = "../.."\nkind = "test"\n', "[environment] key 'name' must use only letters"),
    ('[environment]\nname = ".."\nkind = "test"\n', "[environment] key 'name' must use only letters"),
    ('[environment]\nname = "a b"\nkind = "test"\n', "[environment] key 'name' must use only letters"),
    ('[environment]\nname = "t"\nkind = "test"\ndomains = [1]\n', "[environment] key 'domains' must be a list of strings"),
    ('[environment]\nname = "t"\nkind = "test"\ndomains = ["a b.fr"]\n', "[environment] key 'domains' must be a list of host names"),
    ('[environment]\nname = "t"\nkind = "test"\nallow_outbound = 1\n', "[environment] key 'allow_outbound' must be bool, got int"),
    ('[environment]\nname = "t"\nkind = "test"\nnmae = "x"\n', "[environment] unknown key 'nmae' (did you mean 'name'?)"),
    ('[environment]\nname = "t"\nkind = "test"\nsource_address = "myhost"\n',
     "[environment] key 'source_address' must be an IPv4 or IPv6 address, got 'myhost'"),
])
def test_environment_table_problems(tmp_path, environment, expected):
    assert refused(tmp_path, environment).startswith(expected)


def test_url_credentials_are_refused_without_showing_them(tmp_path):
    for url in ("https://admin:Pw-visible-9@api.example.fr", "admin:Pw-visible-9@api.example.fr",
                "https://admin@api.example.fr"):
        message = refused(tmp_path, MINIMAL + f'\n[api]\nurl = "{url}"\n')
        assert message.startswith("[api] key 'url' must not carry credentials"), message
        assert "Pw-visible-9" not in message and "admin" not in message


def test_good_values_are_kept_as_written(tmp_path):
    loaded = profile.load(str(write(tmp_path, MINIMAL + """
[api]
url = "https://[::1]:8443/base"
[redis]
host = "2001:db8::1"
port = 65535
[postgres]
host = "db_1.internal."
port = 1
dbname = "d"
user = "u"
[lifecycle]
deploy_command = "{python} -m deploy --tag={version} $HOME 'literal {braces' \\"x\\""
rollback_command = "sh -c 'cd /opt && ./rollback.sh \\"$1\\"' sh {version}"
command_timeout_s = 0.5
""")))
    assert loaded.section("lifecycle")["command_timeout_s"] == 0.5
    assert loaded.section("redis")["port"] == 65535


def test_lifecycle_host_names_a_hosts_entry(tmp_path):
    hosts = '[[hosts]]\nname = "platform"\nconnection = "local://"\n'
    lifecycle = '[lifecycle]\nhost = "{}"\ndeploy_command = "d"\nrollback_command = "r"\n'
    assert profile.load(str(write(tmp_path, MINIMAL + lifecycle.format("platform") + hosts)))
    assert refused(tmp_path, MINIMAL + lifecycle.format("platfrom") + hosts) == (
        "[lifecycle] key 'host' must name a [[hosts]] entry (platform), got 'platfrom'")
    assert refused(tmp_path, MINIMAL + hosts + hosts).startswith(
        "[[hosts]] #2: key 'name' must be unique, 'platform' is also #1")


def test_every_schema_key_has_a_known_type():
    """SCHEMA stays declarative: each key maps to a type or a tuple of types (lists are strings)."""
    for table in (*profile.SCHEMA.values(), *profile.ARRAYS.values()):
        for expected in table.values():
            for kind in expected if isinstance(expected, tuple) else (expected,):
                assert kind in (str, int, float, bool, list), expected


def test_secrets_needed_by_selected_suites(tmp_path, monkeypatch):
    (tmp_path / "s.env").write_text("FROM_FILE=x1\n")
    monkeypatch.setenv("FROM_ENV", "x2")
    monkeypatch.delenv("NEVER_SET", raising=False)
    path = write(tmp_path, MINIMAL.replace('kind = "test"', 'kind = "test"\nenv_file = "s.env"') + """
[redis]
host = "h"
port = 1
password_env = "FROM_FILE"
[postgres]
host = "h"
port = 1
dbname = "d"
user = "u"
password_env = "NEVER_SET"
[[mailboxes]]
address = "a@t.fr"
password_env = "FROM_ENV"
[[mailboxes]]
address = "b@t.fr"
password_env = "NEVER_SET"
""")
    loaded = profile.load(str(path))          # loading alone never needs a secret
    profile.require_secrets(loaded, ("redis", "grafana", "api"), "suites/x")
    with pytest.raises(ProfileError) as error:
        profile.require_secrets(loaded, ("redis", "postgres"), "suites/smoke")
    assert str(error.value).startswith(
        f"{path}: [postgres] key 'password_env': environment variable NEVER_SET is not set "
        "(needed by suites/smoke;")
    with pytest.raises(ProfileError, match=r"\[\[mailboxes\]\] #2 \(b@t.fr\) key 'password_env': "
                                           r"environment variable NEVER_SET is not set"):
        profile.require_secrets(loaded, ("mailboxes",), "suites/mail")


def test_suite_secrets_name_real_suites_and_sections():
    from plugins.environments import DEPLOY_SECRETS, SUITE_SECRETS, SUITES

    for suite, sections in {**SUITE_SECRETS, "": DEPLOY_SECRETS}.items():
        assert (SUITES / suite).is_dir(), suite
        for section in sections:
            assert section in profile.SCHEMA or section in profile.ARRAYS, section


def test_value_checks_never_raise_on_garbage():
    """A check answers None or a problem for any string: a traceback would break the one line."""
    import random

    from plugins import profile_values as values

    rng = random.Random(14)
    samples = ["https://[::1", "http://]", "https://[v1.x]/", "https://h:+80", "ssh://u:@h", ""]
    samples += ["".join(rng.choice(":/@[]%.?#a1 '\"{}\\") for _ in range(rng.randint(0, 14)))
                for _ in range(3000)]
    checks = [values.url, values.host, values.name, values.env_var, values.email,
              values.connection, values.command(("python", "version"))]
    for sample in samples:
        for check in checks:
            for candidate in (sample, "https://" + sample, "ssh://" + sample):
                assert check(candidate) is None or isinstance(check(candidate), str)
    assert values.url("https://[v1.x]/") and values.url("https://[::1]:8443/x") is None


def test_any_value_anywhere_is_a_profile_error_or_accepted():
    """Every value of the lab profile, at every depth, replaced by each TOML type in turn: the
    loader answers with a ProfileError line or accepts it, never another exception."""
    import copy
    import tomllib

    lab = tomllib.loads((profile.ENV_DIR / "lab.toml").read_text())
    replacements = [True, 0, -1, 86036, 0.5, float("nan"), "", "a b", "'{version}'", [], [1],
                    ["x"], [{}], {}, {"x": 1}]

    def paths(node, prefix=()):
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            yield (*prefix, key)
            if isinstance(value, (dict, list)):
                yield from paths(value, (*prefix, key))

    for where in list(paths(lab)):
        for replacement in replacements:
            data = copy.deepcopy(lab)
            node = data
            for key in where[:-1]:
                node = node[key]
            node[where[-1]] = replacement
            try:
                profile._validate(profile.ENV_DIR / "lab.toml", data)  # noqa: SLF001 - on raw data
            except ProfileError as exc:
                assert "\n" not in str(exc)


# --- issue 13: production requirements, required_env on the platform, port-bound processes

PRODUCTION_MINIMAL = """
[environment]
name = "p"
kind = "production"
"""
MX_MATERIAL = ('[smtp.mx]\nhost = "mx.example.fr"\nport = 25\n' + "".join(
    f'{key} = "{value}"\n' for key, value in (
        ("whitelist", "/w.xml"), ("peer_domain", "peer.example.fr"), ("peer_cert", "/p.pem"),
        ("peer_key", "/p.key"), ("rogue_domain", "rogue.example.fr"), ("rogue_cert", "/r.pem"),
        ("rogue_key", "/r.key"), ("foreign_cert", "/f.pem"), ("foreign_key", "/f.key"))))


def test_production_profile_needs_igc_anchors_and_mx_material(tmp_path):
    from plugins.igc_sante import PRODUCTION_BUNDLE

    trust = f'[trust]\nanchors = "{PRODUCTION_BUNDLE}"\n'
    assert refused(tmp_path, PRODUCTION_MINIMAL) == ("missing table [trust] (required in a "
                                                     "production profile)")
    assert refused(tmp_path, PRODUCTION_MINIMAL + trust).startswith(
        "missing table [smtp.mx] (required in a production profile)")
    without = MX_MATERIAL.replace('rogue_cert = "/r.pem"\n', "")
    assert refused(tmp_path, PRODUCTION_MINIMAL + trust + without).startswith(
        "[smtp.mx] missing key 'rogue_cert' (required in a production profile")
    assert profile.load(str(write(tmp_path, PRODUCTION_MINIMAL + trust + MX_MATERIAL))).kind \
        == "production"
    lab_anchors = trust.replace(str(PRODUCTION_BUNDLE), "/nonexistent/anchors.pem")
    assert refused(tmp_path, PRODUCTION_MINIMAL + lab_anchors + MX_MATERIAL).startswith(
        "[trust] key 'anchors' cannot be read")


def test_test_profile_may_lack_the_production_requirements(tmp_path):
    text = MINIMAL + '[smtp.mx]\nhost = "mx.example.fr"\nport = 25\n'
    assert profile.load(str(write(tmp_path, text))).kind == "test"


def test_platform_env_sources_need_a_host(tmp_path):
    assert refused(tmp_path, MINIMAL + 'platform_env_file = "/opt/x/.env"\n') == (
        "[environment] key 'platform_env_file' is read on the platform host: declare it in "
        "[[hosts]]")
    assert "'platform_env_port' must be a port" in refused(
        tmp_path, MINIMAL + 'platform_env_port = 0\n')
    with_host = (MINIMAL + 'required_env = ["A"]\nplatform_env_port = 3000\n'
                 '[[hosts]]\nname = "h"\nconnection = "local://"\n')
    assert profile.load(str(write(tmp_path, with_host))).data["environment"]["platform_env_port"] \
        == 3000
