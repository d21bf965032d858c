"""Postfix: the lab's inter-operator MX and its submission port, as a separate instance.

The instance's configuration directory is ``.lab/postfix`` (plain ``main.cf`` and
``master.cf``), with its queue and data directories beside them. Postfix only accepts
``postfix -c DIR`` for a directory the default instance lists in ``alternate_config_
directories``, so :meth:`Postfix.start` registers it in /etc/postfix/main.cf (idempotently);
the Debian default instance is never started. There is no syslog here: the instance logs
to ``.lab/postfix/log/maillog`` through its ``postlog`` service.

Listeners (127.0.0.1 only, no port 25):

* MX (:data:`lab.ports.MX`), the inter-operator port: STARTTLS mandatory, a client
  certificate verified against the IGC Santé TEST chain (``cafile-test.pem``), no AUTH, mail
  only for :data:`lab.identity.DOMAIN`, and the whitelist + certificate-CN check of
  :mod:`lab.mailpolicy` at ``MAIL FROM`` (a daemon this service starts and stops).
* Submission (:data:`lab.ports.SUBMISSION`): STARTTLS mandatory, AUTH (SASL through
  Dovecot) only after TLS, only authenticated clients may send.

Mail for the lab domain goes to Dovecot over LMTP. Nothing ever leaves the lab: there is no
outbound SMTP client (no ``smtp`` service in master.cf), so mail for other domains -- from an
authenticated user, or accepted by an open relay -- waits in this instance's deferred queue.
The whitelist the MTA uses is ``.lab/postfix/listeblanchemssante.xml``.
"""
from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path

from lab import identity, paths, pki, ports, tls
from lab.process import (
    LabError,
    log_tail,
    pid_alive,
    read_pid,
    run,
    spawn,
    terminate,
    wait_port,
    write_if_changed,
)
from lab.services.base import LabContext, Service
from lab.services.dovecot import auth_socket
from lab.whitelist import lab_whitelist
from probes import whitelist

DEFAULT_MAIN_CF = Path("/etc/postfix/main.cf")
START_TIMEOUT = 20.0
CHILD_GRACE = 2.0
MESSAGE_SIZE_LIMIT = 20 * 1024 * 1024      # advertised as SIZE; a profile value, not a rule
WHITELIST_FRESHNESS = dt.timedelta(hours=24)   # the lab profile's bound (DESIGN.md §8)
WHITELIST_STALE_AGE = dt.timedelta(days=3)     # whitelist-stale: well past that bound
POLICY_USER = "nobody"
BROKEN_LMTP = "lmtp:unix:private/dovecot-lmtp"   # delivery-broken: a socket nobody serves


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _config_value(text: str) -> str:
    """One main.cf/master.cf value on one line (comments must not swallow it)."""
    return " ".join(text.split())


class Postfix(Service):
    name = "postfix"
    ports = {"mx": ports.MX, "submission": ports.SUBMISSION}
    packages = ("postfix",)
    commands = ("postfix", "postconf", "postqueue", "postsuper")

    # --- files -------------------------------------------------------------------------
    @property
    def queue_dir(self) -> Path:
        return self.dir / "queue"

    @property
    def maillog(self) -> Path:
        return self.dir / "log" / "maillog"

    @property
    def whitelist_file(self) -> Path:
        return self.dir / "listeblanchemssante.xml"

    @property
    def policy_conf(self) -> Path:
        return self.dir / "mxpolicy.cf"

    @property
    def policy_socket(self) -> Path:
        return self.dir / "run" / "mxpolicy"

    @property
    def policy_pidfile(self) -> Path:
        return self.dir / "run" / "mxpolicy.pid"

    @property
    def policy_log(self) -> Path:
        return self.dir / "log" / "mxpolicy.log"

    # --- configuration -----------------------------------------------------------------
    def configure(self, ctx: LabContext) -> bool:
        # The whitelist is data the policy service re-reads by itself: no restart for it.
        self._ensure_whitelist(ctx)
        files = {
            "main.cf": self._main_cf(ctx),
            "master.cf": self._master_cf(ctx),
            "openssl.cnf": self._openssl_cnf(ctx),
            "mxpolicy.cf": self._policy_cf(ctx),
            "virtual_mailboxes": "".join(f"{address} lab\n" for address in identity.MAILBOXES),
            # mx-rcpt-refuses-all: every recipient, whoever asks (check_recipient_access).
            "refuse_all_recipients": "/./ 550 5.1.1 User unknown\n",
        }
        leaving_broken_delivery = (not ctx.has("delivery-broken") and BROKEN_LMTP in
                                   _read(self.dir / "main.cf"))
        changed = False
        for name, content in files.items():
            changed |= write_if_changed(self.dir / name, content, 0o644)
        if leaving_broken_delivery and self.queue_dir.is_dir():
            # Mail held by the fault must not surface in the mailboxes once the lab is good.
            run(["postsuper", "-c", str(self.dir), "-d", "ALL"], timeout=START_TIMEOUT,
                check=False)
        return changed

    def _ensure_whitelist(self, ctx: LabContext) -> None:
        """Regenerate the MTA's copy when missing, wrong, or not as stale as the faults say."""
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        want_stale = ctx.has("whitelist-stale")
        try:
            text = self.whitelist_file.read_text()
            current = whitelist.parse(text)
        except (OSError, whitelist.WhitelistError):
            current = None
        if current is not None:
            stale = now - current.generated_at > WHITELIST_FRESHNESS
            expected = whitelist.render(lab_whitelist(current.generated_at))
            if stale == want_stale and text == expected:
                return
        generated = now - WHITELIST_STALE_AGE if want_stale else now
        self.whitelist_file.parent.mkdir(parents=True, exist_ok=True)
        # Atomic: the policy service may be reading it right now.
        tmp = self.whitelist_file.with_name(f".{self.whitelist_file.name}.tmp")
        tmp.write_text(whitelist.render(lab_whitelist(generated)), encoding="utf-8")
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.whitelist_file)

    def _main_cf(self, ctx: LabContext) -> str:
        served = tls.served(ctx)
        ciphers = tls.tls12_ciphers(ctx)
        protocols = f">={tls.min_protocol(ctx)}"
        lmtp = (BROKEN_LMTP if ctx.has("delivery-broken")
                else f"lmtp:inet:{ports.HOST}:{ports.LMTP}")
        return f"""\
# Rendered by `python -m lab up` (lab/services/postfix.py); `python -m lab status` names the
# active faults. Edit and run `python -m lab reload`. Per-port settings are in master.cf.
compatibility_level = 3.6
queue_directory = {self.queue_dir}
data_directory = {self.dir / "data"}
maillog_file = {self.maillog}
maillog_file_prefixes = {paths.lab_dir()}
syslog_name = postfix-lab

myhostname = {identity.MAIL_HOST}
mydomain = {identity.DOMAIN}
myorigin = $mydomain
smtpd_banner = $myhostname ESMTP
# VRFY would tell anyone which mailboxes exist.
disable_vrfy_command = yes
inet_interfaces = loopback-only
inet_protocols = ipv4
# No network is trusted: every lab client is on loopback, so trusting it would make an open
# relay (which is exactly what the open-relay fault does on the MX port, in master.cf).
mynetworks =
biff = no
append_dot_mydomain = no

# --- delivery: {identity.DOMAIN} to Dovecot over LMTP, nothing anywhere else ----------------
mydestination =
alias_maps =
alias_database =
local_recipient_maps =
local_transport = error:5.1.1 no local delivery in the lab
virtual_mailbox_domains = {identity.DOMAIN}
virtual_mailbox_maps = texthash:{self.dir / "virtual_mailboxes"}
virtual_transport = {lmtp}
# Other domains would go out through "smtp", which master.cf deliberately does not define: such
# mail is accepted (smtpd would refuse an error:/retry: transport at RCPT), then waits in the
# deferred queue ("mail transport unavailable"). The lab has no outbound SMTP client at all.
default_transport = smtp
relay_transport = smtp
message_size_limit = {MESSAGE_SIZE_LIMIT}

# --- TLS for every smtpd (lab/tls.py: same certificate, versions and suites as every port) ---
smtpd_tls_chain_files = {served.key}, {served.chain}
smtpd_tls_CAfile = {pki.path("cafile-test.pem")}
smtpd_tls_protocols = {protocols}
smtpd_tls_mandatory_protocols = {protocols}
smtpd_tls_ciphers = high
smtpd_tls_mandatory_ciphers = high
tls_high_cipherlist = {ciphers}
tls_medium_cipherlist = {ciphers}
tls_preempt_cipherlist = yes
# TLS 1.3 suites cannot be set by a cipher list: OpenSSL reads them from this file.
tls_config_file = {self.dir / "openssl.cnf"}
tls_config_name = postfix
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes

# --- defaults both listeners start from (master.cf overrides per port) -----------------
smtpd_tls_security_level = encrypt
smtpd_sasl_auth_enable = no
smtpd_sasl_type = dovecot
smtpd_sasl_path = {auth_socket()}
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions =
"""

    def _master_cf(self, ctx: LabContext) -> str:
        # mx-rcpt-refuses-all: the third-party MX that "refused" peers without a certificate
        # only because it answers every recipient "User unknown": no client certificate asked,
        # no whitelist, and that answer at RCPT for everyone.
        refuses_all = ctx.has("mx-rcpt-refuses-all")
        no_ccert = ctx.has("mx-no-client-cert") or refuses_all
        mx = ["-o syslog_name=postfix-lab/mx", "-o smtpd_tls_security_level=encrypt",
              f"-o smtpd_tls_ask_ccert={'no' if refuses_all else 'yes'}",
              f"-o smtpd_tls_req_ccert={'no' if no_ccert else 'yes'}",
              "-o smtpd_sasl_auth_enable=no",
              # Refuse at MAIL FROM rather than at the first RCPT.
              "-o smtpd_delay_reject=no",
              "-o smtpd_relay_restrictions=permit_mynetworks,reject_unauth_destination"]
        if ctx.has("open-relay"):
            # The classic way to become an open relay: "trusted" networks that cover everyone.
            mx.append("-o mynetworks=0.0.0.0/0")
        if not ctx.has("mx-any-sender") and not refuses_all:
            mx.append(f"-o {{ smtpd_sender_restrictions = check_policy_service "
                      f"unix:{self.policy_socket} }}")
        if refuses_all:
            mx.append(f"-o {{ smtpd_recipient_restrictions = check_recipient_access "
                      f"regexp:{self.dir / 'refuse_all_recipients'} }}")
        level = ("none" if ctx.has("smtp-no-starttls")
                 else "may" if ctx.has("smtp-auth-before-tls") else "encrypt")
        submission = ["-o syslog_name=postfix-lab/submission",
                      f"-o smtpd_tls_security_level={level}",
                      "-o smtpd_sasl_auth_enable=yes",
                      f"-o smtpd_tls_auth_only="
                      f"{'no' if ctx.has('smtp-auth-before-tls') else 'yes'}",
                      "-o smtpd_relay_restrictions=permit_sasl_authenticated,reject"]
        def indent(options: list[str]) -> str:
            return "\n".join(f"  {option}" for option in options)

        return f"""\
# Rendered by `python -m lab up` (lab/services/postfix.py). No "smtp inet" (port 25) line:
# the lab listens only on its own ports; no "smtp unix" client either: nothing is sent out
# (see default_transport in main.cf). Nothing runs chrooted (column 5 = n).
# service          type  private unpriv chroot wakeup maxproc command
{ports.HOST}:{ports.MX}  inet  n       -      n      -      -       smtpd
{indent(mx)}
{ports.HOST}:{ports.SUBMISSION}  inet  n       -      n      -      -       smtpd
{indent(submission)}
pickup             unix  n       -      n      60     1       pickup
cleanup            unix  n       -      n      -      0       cleanup
qmgr               unix  n       -      n      300    1       qmgr
tlsmgr             unix  -       -      n      1000?  1       tlsmgr
rewrite            unix  -       -      n      -      -       trivial-rewrite
bounce             unix  -       -      n      -      0       bounce
defer              unix  -       -      n      -      0       bounce
trace              unix  -       -      n      -      0       bounce
verify             unix  -       -      n      -      1       verify
flush              unix  n       -      n      1000?  0       flush
proxymap           unix  -       -      n      -      -       proxymap
proxywrite         unix  -       -      n      -      1       proxymap
showq              unix  n       -      n      -      -       showq
error              unix  -       -      n      -      -       error
retry              unix  -       -      n      -      -       error
discard            unix  -       -      n      -      -       discard
lmtp               unix  -       -      n      -      -       lmtp
anvil              unix  -       -      n      -      1       anvil
scache             unix  -       -      n      -      1       scache
postlog            unix-dgram n  -      n      -      1       postlogd
"""

    def _openssl_cnf(self, ctx: LabContext) -> str:
        return f"""\
# OpenSSL settings for this Postfix instance only (main.cf: tls_config_name = postfix).
postfix = postfix_settings

[postfix_settings]
ssl_conf = postfix_ssl_settings

[postfix_ssl_settings]
system_default = lab_tls

[lab_tls]
Ciphersuites = {tls.tls13_suites(ctx)}
"""

    def _policy_cf(self, ctx: LabContext) -> str:
        required = "no" if ctx.has("mx-no-client-cert") else "yes"
        return f"""\
# MX policy (lab/mailpolicy.py), consulted at MAIL FROM on port {ports.MX}; re-read on change.
# The whitelist the MTA enforces: sender domain listed, certificate CN = its operator's CN.
whitelist = {self.whitelist_file}
# Client certificates must be issued by this CA (its CN is compared with ccert_issuer).
issuer_certificate = {pki.path("test-ca.pem")}
require_client_certificate = {required}
"""

    # --- processes ---------------------------------------------------------------------
    def _postfix(self, *args: str, check: bool = True) -> str:
        result = run(["postfix", "-c", str(self.dir), *args], timeout=START_TIMEOUT, check=check)
        return (result.stdout + result.stderr).strip()

    def _register_instance(self) -> None:
        """List this config directory in the default instance's alternate_config_directories."""
        if not DEFAULT_MAIN_CF.exists():
            DEFAULT_MAIN_CF.write_text("# Minimal default instance (created by the mssante-check "
                                       "lab; never started by it).\ncompatibility_level = 3.6\n")
        current = run(["postconf", "-c", str(DEFAULT_MAIN_CF.parent), "-h",
                       "alternate_config_directories"]).stdout.strip()
        listed = [d for d in current.replace(",", " ").split() if d]
        if str(self.dir) not in listed:
            value = " ".join([*listed, str(self.dir)])
            run(["postconf", "-c", str(DEFAULT_MAIN_CF.parent), "-e",
                 f"alternate_config_directories = {value}"])

    def _master_pid(self) -> int | None:
        return read_pid(self.queue_dir / "pid" / "master.pid")

    def start(self, ctx: LabContext) -> None:
        self._register_instance()
        # The queue directory belongs to root; `postfix start` creates what is inside.
        for sub in ("log", "run", "queue"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
            os.chmod(self.dir / sub, 0o755)
        try:
            self._start_policy()
            # `postfix start` creates missing queue directories, then says nothing useful on
            # failure: the ports and the log tell. Its "not owned by root" warnings about the
            # queue are expected: the queue lives inside the configuration directory here.
            output = self._postfix("start", check=False)
            for port in (ports.MX, ports.SUBMISSION):
                if not wait_port(port, START_TIMEOUT):
                    raise LabError(f"postfix did not open port {port}: {output} | "
                                   f"{log_tail(self.maillog)}")
        except LabError:
            self.stop()
            raise

    def _start_policy(self) -> None:
        self._stop_policy()
        spawn([sys.executable, "-m", "lab.mailpolicy", "--config", str(self.policy_conf),
               "--socket", str(self.policy_socket), "--user", POLICY_USER],
              self.policy_log, self.policy_pidfile, cwd=paths.REPO_ROOT)
        pid = read_pid(self.policy_pidfile)
        deadline = time.monotonic() + START_TIMEOUT
        while not (self.policy_socket.exists() and self.policy_socket.stat().st_uid != 0):
            if pid is None or not pid_alive(pid) or time.monotonic() > deadline:
                raise LabError(f"MX policy service did not start: {log_tail(self.policy_log)}")
            time.sleep(0.05)

    def _stop_policy(self) -> None:
        pid = read_pid(self.policy_pidfile)
        if pid is not None:
            terminate(pid)
        self.policy_pidfile.unlink(missing_ok=True)
        self.policy_socket.unlink(missing_ok=True)

    def stop(self) -> None:
        master = self._master_pid()
        if master is not None:
            # What `postfix stop` does (SIGTERM to the master, which stops its children),
            # without its one-second polling.
            terminate(master, timeout=START_TIMEOUT)
        # Anything of this instance still alive (a child that ignored the master, a master
        # that did not stop) is terminated: Postfix marks them all with MAIL_CONFIG.
        for pid in _instance_processes(self.dir):
            terminate(pid, timeout=CHILD_GRACE)
        self._stop_policy()

    def reload(self) -> None:
        """``postfix reload`` re-reads main.cf/master.cf; the policy re-reads its own files."""
        if read_pid(self.policy_pidfile) is None:
            self._start_policy()
        self._postfix("reload")

    def is_running(self) -> bool:
        return self._master_pid() is not None


def _instance_processes(config_dir: Path) -> list[int]:
    """Processes of the Postfix instance using config_dir: Postfix passes it as MAIL_CONFIG."""
    marker = f"MAIL_CONFIG={config_dir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                environ = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if marker in environ:
                found.append(int(entry.name))
    return found
