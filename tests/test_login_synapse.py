"""Login error paths through real Synapse: a stale stored token (the bot logs in again with its
password on the same device), a session signed out while the bot runs or while it is stopped (a
new device, since the old one's keys are gone), and credentials the homeserver refuses (the
process ends at once with one clear line)."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.matrix_fixtures import sign_out, unique

pytestmark = pytest.mark.synapse
ROOT = Path(__file__).resolve().parent.parent


async def _until(condition, what: str, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.1)


def _devices_known_to(user, user_id: str) -> set[str]:
    return {device.id for device in user.client.device_store.active_user_devices(user_id)}


async def test_a_token_signed_out_while_running_means_a_new_login_and_a_new_device(
    make_bot, make_user, synapse
):
    """The sign-out deleted the device with its keys, and clients remember it as deleted: the
    bot logs in again and goes on with a new device, which the mayor's client shares keys with."""
    bot = await make_bot(sync={"timeout_ms": 1000})
    mayor = await make_user("mayor")
    room = await mayor.dm(bot.user_id, encrypted=True)
    await mayor.ask(room, "!ping")
    client = bot.bot.client
    device, token = client.device_id, client.access_token
    await sign_out(synapse.url, bot.user_id, device, token)
    await _until(lambda: client.device_id != device, "the bot did not go on with a new device")
    assert client.access_token != token and not bot.task.done()
    await _until(
        lambda: client.device_id in _devices_known_to(mayor, bot.user_id), "no keys for the new device"
    )
    await _until(  # … and the new device knows the mayor's (after its next key upkeep)
        lambda: (
            mayor.client.device_id in {d.id for d in client.device_store.active_user_devices(mayor.user_id)}
        ),
        "the new device does not know the mayor's keys",
    )
    answer = await mayor.ask(room, "!ping")
    assert answer.body.startswith("🏓") and answer.decrypted


async def test_a_token_signed_out_while_stopped_means_a_new_device_at_start(
    make_bot, make_user, synapse, caplog
):
    bot = await make_bot()
    mayor = await make_user("mayor")
    room = await mayor.dm(bot.user_id, encrypted=True)
    await mayor.ask(room, "!ping")
    device, token = bot.bot.client.device_id, bot.bot.client.access_token
    await bot.stop()
    await sign_out(synapse.url, bot.user_id, device, token)
    with caplog.at_level(logging.WARNING, logger="bot.session"):
        again = await make_bot(account=bot.account)
    messages = [r.getMessage() for r in caplog.records]
    assert any("no longer valid" in m for m in messages) and any("signed out" in m for m in messages)
    new_device = again.bot.client.device_id
    assert new_device != device
    await _until(lambda: new_device in _devices_known_to(mayor, bot.user_id), "no keys for the new device")
    answer = await mayor.ask(room, "!ping")
    assert answer.body.startswith("🏓") and answer.decrypted


async def test_a_stale_stored_token_falls_back_to_the_password_on_the_same_device(
    make_bot, make_user, tmp_path
):
    """The database holds a token the homeserver does not know (say, restored from an old
    backup) while the device is still there: the bot logs in with its password on that device,
    and its encryption goes on as before."""
    bot = await make_bot()
    mayor = await make_user("mayor")
    room = await mayor.dm(bot.user_id, encrypted=True)
    await mayor.ask(room, "!ping")
    device, token = bot.bot.client.device_id, bot.bot.client.access_token
    await bot.stop()
    with sqlite3.connect(bot.settings.database) as conn:
        raw = conn.execute("SELECT value FROM bot_state WHERE key = 'session'").fetchone()[0]
        conn.execute(
            "UPDATE bot_state SET value = ? WHERE key = 'session'", (raw.replace(token, "syt_stale_token"),)
        )
    again = await make_bot(account=bot.account)
    assert again.bot.client.device_id == device
    assert again.bot.client.access_token not in (token, "syt_stale_token")
    answer = await mayor.ask(room, "!ping")
    assert answer.body.startswith("🏓") and answer.decrypted
    fresh = await mayor.dm(bot.user_id, encrypted=True)  # a new room key for the same device
    answer = await mayor.ask(fresh, "!ping")
    assert answer.body.startswith("🏓") and answer.decrypted


@pytest.mark.parametrize("credential", ["password", "access_token"])
async def test_refused_credentials_end_the_process_with_one_clear_line(synapse, tmp_path, credential):
    account = synapse.register(unique("bot"))
    secret = "Falsches-Passwort-0815"
    config = tmp_path / "bot.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "homeserver": synapse.url,
                "user_id": account.user_id,
                credential: secret,
                "database": str(tmp_path / "bot.db"),
                "log_level": "INFO",
            }
        ),
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLEINSTADTBOT_")}
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot.cli", "run", "--config", str(config)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,  # no hang: a refused login is final
    )
    output = result.stdout + result.stderr
    assert result.returncode == 3, output[-3000:]
    [line] = [line for line in output.splitlines() if "cannot log in" in line]
    assert "refused" in line and credential in line and "configuration" in line, line
    assert "Traceback" not in output
    assert secret not in output
