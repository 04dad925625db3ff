"""A local Synapse on 127.0.0.1 for the demo, the integration tests and the benchmarks.

Synapse comes from the ``demo``/``test`` extra (PyPI wheels). It runs with SQLite, raised
``rc_*`` rate limits (or Synapse's defaults with ``raised_limits=False``, where the paced sending
of broadcasts is tested), and shared-secret registration, and is stopped by its PID.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

RAISED = {"per_second": 10000, "burst_count": 10000}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Account:
    user_id: str
    access_token: str
    device_id: str
    password: str


def _config(data: Path, port: int, server_name: str, secret: str, raised_limits: bool = True) -> dict:
    raised = dict(RAISED)
    config = {
        "server_name": server_name,
        "public_baseurl": f"http://127.0.0.1:{port}/",
        "pid_file": str(data / "homeserver.pid"),
        "listeners": [
            {
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        "database": {"name": "sqlite3", "args": {"database": str(data / "homeserver.db")}},
        "log_config": str(data / "log.yaml"),
        "media_store_path": str(data / "media"),
        "signing_key_path": str(data / "signing.key"),
        "registration_shared_secret": secret,
        "macaroon_secret_key": secrets.token_hex(16),
        "form_secret": secrets.token_hex(16),
        "report_stats": False,
        "enable_registration": False,
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "federation_domain_whitelist": [],
        "presence": {"enabled": False},
        "url_preview_enabled": False,
        "enable_metrics": False,
        "rc_message": raised,
        "rc_registration": raised,
        "rc_login": {"address": raised, "account": raised, "failed_attempts": raised},
        "rc_joins": {"local": raised, "remote": raised},
        "rc_joins_per_room": raised,
        "rc_invites": {"per_room": raised, "per_user": raised, "per_issuer": raised},
        "rc_3pid_validation": raised,
        "rc_admin_redaction": raised,
        "rc_key_requests": raised,
        "rc_room_creation": raised,
        "rc_delayed_event_mgmt": raised,
        "rc_reports": raised,
        "rc_presence": {"per_user": raised},
    }
    if not raised_limits:  # Synapse's own defaults (rc_message: 0.2 per second, burst 10)
        config = {k: v for k, v in config.items() if not k.startswith("rc_")}
    return config


def _log_config(data: Path, quiet: bool) -> str:
    level = "WARNING" if quiet else "INFO"
    return json.dumps(
        {
            "version": 1,
            "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
            "handlers": {
                "file": {
                    "class": "logging.FileHandler",
                    "formatter": "plain",
                    "filename": str(data / "homeserver.log"),
                }
            },
            "root": {"level": level, "handlers": ["file"]},
            "disable_existing_loggers": False,
        }
    )


class LocalSynapse:
    """Start, use and stop one Synapse process."""

    def __init__(
        self,
        data: Path,
        port: int | None = None,
        server_name: str = "localhost",
        quiet: bool = True,
        raised_limits: bool = True,
    ):
        self.data = Path(data).resolve()
        self.port = port or free_port()
        self.server_name = server_name
        self.quiet = quiet
        self.raised_limits = raised_limits
        self.process: subprocess.Popen | None = None
        secret_file = self.data / "shared_secret"
        self.data.mkdir(parents=True, exist_ok=True)
        if not secret_file.exists():
            secret_file.write_text(secrets.token_hex(24))
        self.secret = secret_file.read_text().strip()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        import yaml
        from signedjson.key import generate_signing_key, write_signing_keys

        key_file = self.data / "signing.key"
        if not key_file.exists():
            with key_file.open("w") as handle:
                write_signing_keys(handle, [generate_signing_key("a_" + secrets.token_hex(2))])
        (self.data / "log.yaml").write_text(_log_config(self.data, self.quiet))
        (self.data / "media").mkdir(exist_ok=True)
        path = self.data / "homeserver.yaml"
        config = _config(self.data, self.port, self.server_name, self.secret, self.raised_limits)
        path.write_text(yaml.safe_dump(config))
        return path

    def start(self, timeout: float = 60) -> LocalSynapse:
        config = self._write_config()
        log = (self.data / "stdout.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "synapse.app.homeserver", "-c", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.data,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = (self.data / "stdout.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"Synapse exited with {self.process.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(f"{self.url}/_matrix/client/versions", timeout=1):
                    return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Synapse did not answer on {self.url} within {timeout} s")

    def stop(self, timeout: float = 15) -> None:
        """Stop by PID: SIGTERM, then SIGKILL if it does not go."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(5)

    def __enter__(self) -> LocalSynapse:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- admin API ------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: dict | None = None, token: str | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"{}")

    def register(self, localpart: str, password: str | None = None, admin: bool = False) -> Account:
        """Register a user through the shared-secret admin API (HMAC-SHA1 over the nonce)."""
        password = password or secrets.token_urlsafe(12)
        nonce = self._request("GET", "/_synapse/admin/v1/register")["nonce"]
        mac = hmac.new(self.secret.encode(), digestmod=hashlib.sha1)
        mac.update(
            b"\x00".join(p.encode() for p in (nonce, localpart, password, "admin" if admin else "notadmin"))
        )
        digest = mac.hexdigest()
        reply = self._request(
            "POST",
            "/_synapse/admin/v1/register",
            {
                "nonce": nonce,
                "username": localpart,
                "password": password,
                "admin": admin,
                "mac": digest,
            },
        )
        return Account(reply["user_id"], reply["access_token"], reply["device_id"], password)

    def user_id(self, localpart: str) -> str:
        return f"@{localpart}:{self.server_name}"

    def override_ratelimit(
        self, user_id: str, admin_token: str, messages_per_second: int = 0, burst_count: int = 0
    ) -> dict:
        """The admin API operators use to exempt an account from the rate limits (0 and 0: no
        limit at all; whole numbers of events per second otherwise)."""
        return self._request(
            "POST",
            f"/_synapse/admin/v1/users/{user_id}/override_ratelimit",
            {"messages_per_second": messages_per_second, "burst_count": burst_count},
            token=admin_token,
        )

    def clear_ratelimit_override(self, user_id: str, admin_token: str) -> None:
        """Back to the server's limits."""
        self._request("DELETE", f"/_synapse/admin/v1/users/{user_id}/override_ratelimit", token=admin_token)
