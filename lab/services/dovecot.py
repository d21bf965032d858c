"""Dovecot: the lab's mailboxes (IMAP with STARTTLS, IMAPS, LMTP for Postfix, SASL for Postfix).

One self-contained configuration file, ``.lab/dovecot/dovecot.conf`` (nothing is included
from /etc/dovecot), started with ``dovecot -c``. Runtime sockets live in ``.lab/dovecot/run``
(``base_dir``), among them ``auth-postfix``, the SASL socket Postfix's submission port uses
(:func:`auth_socket`).

Mailboxes are :data:`lab.identity.MAILBOXES`, in a passwd-file (``.lab/dovecot/users``) with
SHA512-CRYPT hashes of the passwords in ``.lab/secrets.env``. Mail is stored as Maildir under
``.lab/dovecot/mail/<domain>/<user>``, owned by the ``mssantelab`` system user, created on
first use: Dovecot refuses root as mail user, and a dedicated account keeps the lab's mail
away from any real one (``dovecot``/``dovenull`` are reserved for Dovecot's own processes).

The STARTTLS IMAP port is reached through :mod:`lab.looprelay` (see there why): Dovecot
itself listens for it on ``127.0.0.2``; IMAPS and LMTP are Dovecot's own listeners on
127.0.0.1.
"""
from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from lab import identity, looprelay, paths, ports, tls
from lab.process import (
    LabError,
    log_tail,
    pid_alive,
    port_open,
    read_pid,
    run,
    spawn,
    terminate,
    wait_port,
    write_if_changed,
)
from lab.services.base import LabContext, Service

MAIL_USER = "mssantelab"
START_TIMEOUT = 15.0
# Dovecot 2.3's own post-login CAPABILITY, IDLE left out (the ``imap-no-idle`` fault).
CAPABILITIES_WITHOUT_IDLE = [
    "IMAP4rev1", "SASL-IR", "LOGIN-REFERRALS", "ID", "ENABLE", "SORT", "SORT=DISPLAY",
    "THREAD=REFERENCES", "THREAD=REFS", "THREAD=ORDEREDSUBJECT", "MULTIAPPEND", "URL-PARTIAL",
    "CATENATE", "UNSELECT", "CHILDREN", "NAMESPACE", "UIDPLUS", "LIST-EXTENDED", "I18NLEVEL=1",
    "CONDSTORE", "QRESYNC", "ESEARCH", "ESORT", "SEARCHRES", "WITHIN", "CONTEXT=SEARCH",
    "LIST-STATUS", "BINARY", "MOVE", "SNIPPET=FUZZY", "PREVIEW=FUZZY", "PREVIEW", "STATUS=SIZE",
    "SAVEDATE", "LITERAL+", "NOTIFY",
]
CHILD_GRACE = 0.5       # how long children may outlive the master before each signal


def auth_socket() -> Path:
    """Dovecot's SASL listener for Postfix (``smtpd_sasl_path``)."""
    return paths.service_dir("dovecot") / "run" / "auth-postfix"


def _ensure_mail_user() -> pwd.struct_passwd:
    """The system account that owns the lab's Maildirs, created once (needs root)."""
    try:
        return pwd.getpwnam(MAIL_USER)
    except KeyError:
        pass
    if os.geteuid() != 0:
        raise LabError(f"the mail user {MAIL_USER} does not exist: run `python -m lab up` as "
                       f"root once to create it")
    run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
         "--shell", "/usr/sbin/nologin", "--comment", "mssante-check lab mail", MAIL_USER])
    return pwd.getpwnam(MAIL_USER)


def _sha512_crypt(password: str, salt: str | None = None) -> str:
    """``$6$`` crypt hash from ``openssl passwd`` (password on stdin, never on a command line)."""
    cmd = ["openssl", "passwd", "-6", "-stdin"] + (["-salt", salt] if salt else [])
    try:
        result = subprocess.run(cmd, input=password, capture_output=True, text=True, timeout=10,
                                check=True)
    except (subprocess.SubprocessError, OSError) as exc:
        raise LabError("openssl passwd failed while hashing a mailbox password") from exc
    return result.stdout.strip()


def _hash_for(password: str, previous: str | None) -> str:
    """Reuse the previous hash when it still matches, so an unchanged lab renders unchanged."""
    if previous and previous.startswith("$6$"):
        salt = previous.split("$")[2]
        if _sha512_crypt(password, salt) == previous:
            return previous
    return _sha512_crypt(password)


def _existing_hashes(users: Path) -> dict[str, str]:
    hashes = {}
    if users.exists():
        for line in users.read_text().splitlines():
            user, _, rest = line.partition(":")
            scheme_hash = rest.split(":", 1)[0]
            hashes[user] = scheme_hash.removeprefix("{SHA512-CRYPT}")
    return hashes


class Dovecot(Service):
    name = "dovecot"
    ports = {"imap": ports.IMAP, "imaps": ports.IMAPS, "lmtp": ports.LMTP}
    packages = ("dovecot-core", "dovecot-imapd", "dovecot-lmtpd")
    commands = ("dovecot", "doveadm")

    @property
    def conf(self) -> Path:
        return self.dir / "dovecot.conf"

    @property
    def users(self) -> Path:
        return self.dir / "users"

    @property
    def mail_root(self) -> Path:
        return self.dir / "mail"

    @property
    def unusable_store(self) -> Path:
        """Root's alone (0700): the ``imap-store-unavailable`` fault's mail store."""
        return self.dir / "store-unavailable"

    @property
    def base_dir(self) -> Path:
        return self.dir / "run"

    @property
    def log(self) -> Path:
        return self.dir / "log" / "dovecot.log"

    @property
    def console_log(self) -> Path:
        return self.dir / "log" / "console.log"

    @property
    def relay_pidfile(self) -> Path:
        return self.dir / "relay.pid"

    @property
    def relay_log(self) -> Path:
        return self.dir / "log" / "relay.log"

    def configure(self, ctx: LabContext) -> bool:
        account = _ensure_mail_user()
        previous = _existing_hashes(self.users)
        lines = [f"{address}:{{SHA512-CRYPT}}{_hash_for(ctx.secrets[var], previous.get(address))}"
                 "::::::" for address, var in identity.MAILBOXES.items()]
        changed = write_if_changed(self.users, "\n".join(lines) + "\n", 0o640)
        # Read by the auth process, which runs as Dovecot's internal user.
        shutil.chown(self.users, "root", "dovecot")
        changed |= write_if_changed(self.conf, self._render(ctx, account), 0o644)
        return changed

    def _render(self, ctx: LabContext, account: pwd.struct_passwd) -> str:
        served = tls.served(ctx)
        plaintext = "no" if ctx.has("imap-plaintext-login") else "yes"
        passdb = (f"passdb {{\n  driver = passwd-file\n"
                  f"  args = scheme=SHA512-CRYPT username_format=%u {self.users}\n}}\n")
        if ctx.has("imap-any-password"):
            # Any password passes; IMAP still needs the mailbox to exist (userdb lookup).
            passdb = "passdb {\n  driver = static\n  args = nopassword=y\n}\n"
        if ctx.has("auth-refuses-all"):
            # Every listed mailbox denied before its password is looked at (an account lock
            # applied to everyone): IMAP and Postfix's SASL refuse the right password too;
            # delivery (LMTP) uses the userdb and still works.
            passdb = (f"passdb {{\n  driver = passwd-file\n  deny = yes\n"
                      f"  args = username_format=%u {self.users}\n}}\n") + passdb
        return f"""\
# Rendered by `python -m lab up` (lab/services/dovecot.py); `python -m lab status` names the
# active faults. Edit and run `python -m lab reload`. Nothing is included from /etc/dovecot.
instance_name = dovecot-lab
base_dir = {self.base_dir}
state_dir = {self.dir / "state"}
log_path = {self.log}
protocols = imap lmtp
listen = {ports.HOST}
default_internal_user = dovecot
default_login_user = dovenull

# --- authentication -------------------------------------------------------------------
# "yes": no LOGIN/AUTH PLAIN before STARTTLS, and LOGINDISABLED is announced.
disable_plaintext_auth = {plaintext}
# PLAIN and LOGIN are what Postfix's submission port offers through this auth service.
auth_mechanisms = plain login
# Production keeps the 2 s failure delay and the per-IP penalty (doubling up to 15 s)
# against password guessing. The lab answers a wrong password at once: its checks try one on
# purpose in every run, all from 127.0.0.1, and the detection matrix runs them dozens of times.
auth_failure_delay = 0
{passdb}userdb {{
  driver = passwd-file
  args = username_format=%u {self.users}
  default_fields = uid={MAIL_USER} gid={MAIL_USER} home={self.mail_root}/%d/%n
}}

# --- storage: Maildir owned by {MAIL_USER} ---------------------------------------------
mail_location = maildir:{self.mail_root}/%d/%n
first_valid_uid = {account.pw_uid}
last_valid_uid = {account.pw_uid}
first_valid_gid = {account.pw_gid}

# --- TLS (lab/tls.py: same certificate, versions and suites as every lab port) ----------
ssl = yes
ssl_cert = <{served.chain}
ssl_key = <{served.key}
ssl_min_protocol = {tls.min_protocol(ctx)}
ssl_cipher_list = {tls.tls12_ciphers(ctx)}
ssl_cipher_suites = {tls.tls13_suites(ctx)}
ssl_prefer_server_ciphers = yes

# --- listeners ------------------------------------------------------------------------
service imap-login {{
  # High-performance mode: a few long-lived login processes serve every connection, instead
  # of a new process per connection (a TLS scan opens hundreds; Dovecot's default then takes
  # seconds and times handshakes out when scans run side by side).
  service_count = 0
  process_min_avail = 2
  # STARTTLS IMAP: clients reach it on {ports.HOST}:{ports.IMAP} through lab/looprelay.py.
  inet_listener imap {{
    address = {looprelay.BACKEND_HOST}
    port = {ports.IMAP}
  }}
  inet_listener imaps {{
    address = {ports.HOST}
    port = {ports.IMAPS}
    ssl = yes
  }}
}}
service lmtp {{
  # Postfix delivers {identity.DOMAIN} here (virtual_transport).
  inet_listener lmtp {{
    address = {ports.HOST}
    port = {ports.LMTP}
  }}
}}
service anvil {{
  # No authentication penalty (see auth_failure_delay above).
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service auth {{
  # SASL for Postfix's submission port (smtpd_sasl_path).
  unix_listener {auth_socket().name} {{
    mode = 0660
    user = postfix
    group = postfix
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@{identity.DOMAIN}
}}
{self._imap_protocol(ctx)}"""

    def _imap_protocol(self, ctx: LabContext) -> str:
        """The IMAP-only settings the IMAP faults change (LMTP keeps delivering)."""
        settings = []
        if ctx.has("imap-no-idle"):
            settings.append(f"imap_capability = {' '.join(CAPABILITIES_WITHOUT_IDLE)}")
        if ctx.has("imap-store-unavailable"):
            # A mail store IMAP sessions may not enter: the mount lost, the permissions wrong.
            settings.append(f"mail_location = maildir:{self.unusable_store}/%d/%n")
        if not settings:
            return ""
        return "protocol imap {\n" + "".join(f"  {line}\n" for line in settings) + "}\n"

    def _prepare_dirs(self) -> None:
        self.unusable_store.mkdir(mode=0o700, exist_ok=True)
        self.mail_root.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.mail_root, MAIL_USER, MAIL_USER)
        os.chmod(self.mail_root, 0o700)
        self.log.parent.mkdir(parents=True, exist_ok=True)

    def start(self, ctx: LabContext) -> None:
        self._prepare_dirs()
        self._stop_relay()
        # Foreground (-F) under our own pid file: configuration errors land in console.log.
        master = spawn(["dovecot", "-F", "-c", str(self.conf)], self.console_log,
                       self.dir / "dovecot.pid")
        spawn([sys.executable, "-m", "lab.looprelay", str(ports.IMAP), looprelay.BACKEND_HOST,
               str(ports.IMAP), "--follow", str(master)], self.relay_log, self.relay_pidfile,
              cwd=paths.REPO_ROOT)
        for port, host in ((ports.IMAP, ports.HOST), (ports.IMAP, looprelay.BACKEND_HOST),
                           (ports.IMAPS, ports.HOST), (ports.LMTP, ports.HOST)):
            if not wait_port(port, START_TIMEOUT, host=host):
                self.stop()
                raise LabError(f"dovecot: {host}:{port} did not answer: "
                               f"{log_tail(self.console_log, 3)} | {log_tail(self.log, 5)} "
                               f"| relay: {log_tail(self.relay_log, 3)}")

    def _master_pid(self) -> int | None:
        return read_pid(self.base_dir / "master.pid")

    def _stop_relay(self) -> None:
        pid = read_pid(self.relay_pidfile)
        if pid is not None:
            terminate(pid)
        self.relay_pidfile.unlink(missing_ok=True)

    def stop(self) -> None:
        self._stop_relay()
        master = self._master_pid()
        if master is not None:
            children = _descendants(master)
            # SIGTERM is what `dovecot stop` sends. The master signals its children and
            # exits without waiting for them; a session still held by a client (an IMAP IDLE)
            # would keep it and Dovecot's log/stats/anvil processes alive, so stragglers go.
            terminate(master, timeout=START_TIMEOUT)
            _reap(children, CHILD_GRACE)
        (self.dir / "dovecot.pid").unlink(missing_ok=True)

    def reload(self) -> None:
        run(["dovecot", "-c", str(self.conf), "reload"], timeout=START_TIMEOUT)

    def is_running(self) -> bool:
        return self._master_pid() is not None

    def port_status(self) -> dict[str, bool]:
        status = super().port_status()
        # The relay may be up while Dovecot's own listener behind it is not.
        status["imap"] = status["imap"] and port_open(ports.IMAP, looprelay.BACKEND_HOST)
        return status


def _descendants(pid: int) -> list[int]:
    """Every process below pid (children first-level and deeper), from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        children = [child for child, parent in parents.items() if parent == current]
        found += children
        frontier += children
    return found


def _reap(pids: list[int], grace: float) -> None:
    """Wait up to ``grace`` for pids to exit; SIGTERM the rest at once, then SIGKILL."""
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        alive = [pid for pid in pids if pid_alive(pid)]
        if sig is not None:
            for pid in alive:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while alive and time.monotonic() < deadline:
            time.sleep(0.05)
            alive = [pid for pid in alive if pid_alive(pid)]
        if not alive:
            return
