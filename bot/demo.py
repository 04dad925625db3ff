"""``kleinstadtbot demo``: a local Synapse with demo accounts and the bot, in one command.

Everything lives in one data folder (default ``demo-data``); a second start reuses the
homeserver, the accounts and the bot's database. Ctrl-C stops the bot and the homeserver.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sys
from pathlib import Path

from config.settings import Settings

DEMO_USERS = [
    ("koordination", "Koordinatorin der Kleinstadtakademie (Rolle: coordinator)"),
    ("buergermeisterin-a", "Bürgermeisterin (Rolle: member)"),
    ("buergermeister-b", "Bürgermeister (Rolle: member)"),
]


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _accounts(synapse, data: Path) -> dict[str, dict[str, str]]:
    """Register the bot and the demo users once; later starts reuse the saved accounts."""
    import secrets

    file = data / "accounts.json"
    accounts = json.loads(file.read_text()) if file.exists() else {}
    for localpart in ["kleinstadtbot", *(u for u, _ in DEMO_USERS)]:
        if localpart not in accounts:
            password = f"demo-{secrets.token_hex(4)}"
            account = synapse.register(localpart, password, admin=localpart == "koordination")
            accounts[localpart] = {"user_id": account.user_id, "password": password}
            file.write_text(json.dumps(accounts, indent=2))
    file.chmod(0o600)
    return accounts


def run_demo(data: Path, port: int = 8008) -> int:
    try:
        import synapse  # noqa: F401  (the demo extra)

        from bot.homeserver import LocalSynapse
    except ImportError:
        print("The demo needs Synapse: pip install -e '.[demo]'", file=sys.stderr)
        return 2
    data = data.resolve()
    hs_dir = data / "synapse"
    port_file = data / "port"
    if port_file.exists():
        port = int(port_file.read_text())
    if not _port_free(port):
        from bot.homeserver import free_port

        print(f"Port {port} is taken; using another one.")
        port = free_port()
    data.mkdir(parents=True, exist_ok=True)
    port_file.write_text(str(port))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    logging.getLogger("nio").setLevel(logging.WARNING)
    logging.getLogger("peewee").setLevel(logging.WARNING)
    print(f"Starting Synapse on http://127.0.0.1:{port} (data in {hs_dir}) …")
    homeserver = LocalSynapse(hs_dir, port=port, server_name="localhost").start()
    try:
        accounts = _accounts(homeserver, data)
        settings = Settings(
            homeserver=homeserver.url,
            user_id=accounts["kleinstadtbot"]["user_id"],
            password=accounts["kleinstadtbot"]["password"],
            database=data / "bot.db",
            coordinators=[accounts["koordination"]["user_id"]],
        )
        _print_welcome(homeserver.url, accounts)
        from bot.runtime import run_bot

        return asyncio.run(run_bot(settings))
    except KeyboardInterrupt:
        return 0
    finally:
        print("Stopping Synapse …")
        homeserver.stop()


def _print_welcome(url: str, accounts: dict[str, dict[str, str]]) -> None:
    lines = [
        "",
        "kleinstadtbot demo is running.",
        "",
        f"  Homeserver:  {url}",
        "  Log in with Element (desktop or https://app.element.io) or any Matrix client:",
        "  choose 'Homeserver ändern' / 'Edit homeserver' and enter the URL above.",
        "",
    ]
    for localpart, role in DEMO_USERS:
        account = accounts[localpart]
        lines.append(f"  {account['user_id']:<32} password {account['password']:<16} {role}")
    lines += [
        "",
        f"  Then start a direct chat with {accounts['kleinstadtbot']['user_id']} and write !hilfe.",
        "  Without a homeserver: kleinstadtbot console",
        "  Ctrl-C stops the bot and the homeserver.",
        "",
    ]
    print("\n".join(lines), flush=True)
