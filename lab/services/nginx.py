"""nginx: TLS termination for the reference API (https-api) and the front-end page (https-front).

The TLS settings (certificate chain, protocols, suites) come from :mod:`lab.tls`, so a TLS
fault changes nginx exactly as it changes Postfix and Dovecot. The master runs in the
foreground (``-g 'daemon off;'``) so the lab holds its pid; the workers run as ``www-data``.
The front-end page is copied under ``.lab/nginx/html``: that copy is what is "deployed".
"""
from __future__ import annotations

from pathlib import Path

from lab import identity, paths, ports, tls
from lab.process import LabError, log_tail, run, spawn, wait_port, write_if_changed
from lab.services.base import LabContext, PidfileService

START_TIMEOUT = 15
FRONT_PAGE = paths.REPO_ROOT / "lab" / "front" / "index.html"
HSTS = "max-age=63072000; includeSubDomains"


class Nginx(PidfileService):
    name = "nginx"
    ports = {"https-api": ports.HTTPS_API, "https-front": ports.HTTPS_FRONT}
    packages = ("nginx",)
    commands = ("nginx",)

    @property
    def conf(self) -> Path:
        return self.dir / "nginx.conf"

    @property
    def pidfile(self) -> Path:
        return self.dir / "nginx.pid"

    @property
    def error_log(self) -> Path:
        return self.dir / "logs" / "error.log"

    def _cli(self) -> list[str]:
        return ["nginx", "-c", str(self.conf), "-p", f"{self.dir}/", "-e", str(self.error_log)]

    def configure(self, ctx: LabContext) -> bool:
        changed = write_if_changed(self.conf, self._render(ctx), 0o644)
        changed |= write_if_changed(self.dir / "html" / "index.html", FRONT_PAGE.read_text(),
                                    0o644)
        return changed

    def _render(self, ctx: LabContext) -> str:
        served = tls.served(ctx)
        d = self.dir
        return f"""\
# Rendered by `python -m lab up`; edit and run `python -m lab reload` (nginx -t, then -s reload).
user www-data;
worker_processes 2;
pid {self.pidfile};
error_log {self.error_log} warn;

events {{
    worker_connections 512;
}}

http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    server_tokens off;
    sendfile on;
    keepalive_timeout 30s;
    client_max_body_size 64k;
    access_log {d / "logs" / "access.log"};
    client_body_temp_path {d / "temp" / "client_body"};
    proxy_temp_path {d / "temp" / "proxy"};
    fastcgi_temp_path {d / "temp" / "fastcgi"};
    uwsgi_temp_path {d / "temp" / "uwsgi"};
    scgi_temp_path {d / "temp" / "scgi"};

    # TLS, from lab/tls.py (ANSSI policy unless a TLS fault is active).
    ssl_certificate {served.chain};
    ssl_certificate_key {served.key};
    ssl_protocols {" ".join(tls.protocols(ctx))};
    ssl_ciphers "{tls.tls12_ciphers(ctx)}";
    ssl_conf_command Ciphersuites {tls.tls13_suites(ctx)};
    ssl_prefer_server_ciphers on;
    ssl_ecdh_curve X25519:prime256v1:secp384r1;
    ssl_session_cache shared:lab_tls:1m;
    ssl_session_tickets off;

    add_header Strict-Transport-Security "{HSTS}" always;
    add_header X-Content-Type-Options nosniff always;

    upstream api_backend {{
        server {ports.HOST}:{ports.API_BACKEND};
        keepalive 8;
        # Shorter than the API's 15 s idle limit, so nginx never reuses a connection the API
        # is closing (a POST on it would not be retried and would surface as a 502).
        keepalive_timeout 10s;
    }}

    server {{
        listen {ports.HOST}:{ports.HTTPS_API} ssl http2;
        server_name {identity.API_HOST} localhost;

        # Prometheus scrapes the backend directly; metrics are not published over HTTPS.
        location = /metrics {{
            return 404;
        }}

        location / {{
            proxy_pass http://api_backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto https;
            proxy_connect_timeout 2s;
            proxy_send_timeout 15s;
            proxy_read_timeout 15s;
        }}
    }}

    server {{
        listen {ports.HOST}:{ports.HTTPS_FRONT} ssl http2;
        server_name {identity.WEB_HOST} localhost;
        root {d / "html"};
        index index.html;
        add_header Strict-Transport-Security "{HSTS}" always;
        add_header X-Content-Type-Options nosniff always;
        add_header X-Frame-Options DENY always;

        location / {{
            try_files $uri $uri/ =404;
        }}
    }}
}}
"""

    def _check(self) -> None:
        """``nginx -t``: a broken file is reported at once, with nginx's own message."""
        result = run([*self._cli(), "-t", "-q"], timeout=15, check=False)
        if result.returncode != 0:
            message = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
            raise LabError(f"nginx configuration {self.conf} is invalid: {message}")

    def start(self, ctx: LabContext) -> None:
        for folder in ("logs", "temp"):
            (self.dir / folder).mkdir(parents=True, exist_ok=True)
        self._check()
        spawn([*self._cli(), "-g", "daemon off;"], self.dir / "logs" / "nginx.out",
              self.pidfile)
        if not all(wait_port(port, START_TIMEOUT) for port in self.ports.values()):
            self.stop()
            raise LabError(f"nginx did not open ports {', '.join(map(str, self.ports.values()))}: "
                           f"{log_tail(self.error_log)}")

    def reload(self) -> None:
        self._check()
        run([*self._cli(), "-s", "reload"], timeout=15)
