"""Faults through a real Synapse: homeserver outage, SIGTERM, invalid configuration at start."""

from __future__ import annotations

import asyncio
import logging
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.homeserver import LocalSynapse
from tests.answer_checks import answered, settle, wait_answered
from tests.bot_process import account_config, clean_env, run_process, write_config
from tests.matrix_fixtures import bot_settings, start_bot, unique, user_client

pytestmark = pytest.mark.synapse
ROOT = Path(__file__).resolve().parent.parent
SECRET = "Sehr-Geheimes-Passwort-4711"


async def test_bot_recovers_from_a_homeserver_outage_without_restart(tmp_path, caplog):
    hs = LocalSynapse(tmp_path / "hs").start()
    running = mayor = None
    try:
        account = hs.register(unique("bot"))
        running = await start_bot(
            bot_settings(
                hs,
                account,
                tmp_path / "bot",
                sync={"backoff_initial_seconds": 0.2, "backoff_max_seconds": 1, "timeout_ms": 1000},
                retry={"max_timeouts": 1, "request_timeout_seconds": 5},
            )
        )
        mayor_account = hs.register(unique("mayor"))
        mayor = await user_client(hs, mayor_account, tmp_path / "mayor")
        room = await mayor.dm(running.user_id)
        await mayor.ask(room, "!ping")
        await mayor.close()
        mayor = None

        with caplog.at_level(logging.WARNING, logger="bot.connection"):
            hs.stop()
            await asyncio.sleep(2.0)
            assert not running.task.done(), "the bot ended while the homeserver was down"
            hs.start()
            mayor = await user_client(hs, mayor_account, tmp_path / "mayor2")
            answer = await mayor.ask(room, "!ping", timeout=30)
        assert answer.body.startswith("🏓 Pong!")
        assert not running.task.done()
        messages = [r.getMessage() for r in caplog.records if r.name == "bot.connection"]
        assert any("not reachable" in m for m in messages), messages
        assert any("reachable again" in m for m in messages), messages
        # logged once per change of state, not at every attempt
        assert sum("not reachable" in m for m in messages) == 1
    finally:
        if mayor is not None:
            await mayor.close()
        if running is not None and not running.task.done():
            await running.stop()
        hs.stop()


async def _kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.kill()  # SIGKILL: no handler runs, nothing is flushed or closed
        await process.wait()


async def test_kill_9_during_bursts_of_commands_loses_and_duplicates_nothing(synapse, make_user, tmp_path):
    """Three bursts of 25 commands in one room: killed while answering the first, the second sent
    while the bot is down, killed again while answering the third. Every command is answered
    exactly once and in order (the rate limit is lifted: 75 commands from one user in a minute)."""
    account = synapse.register(unique("bot"))
    config = account_config(tmp_path, synapse, account, log_level="INFO", rate_limit={"commands": 1000})
    log_file = tmp_path / "bot.log"
    process = await run_process(config, log_file)
    try:
        mayor = await make_user("mayor")
        room = await mayor.dm(account.user_id)
        await mayor.ask(room, "!ping")
        commands: list[str] = []

        burst = [await mayor.send(room, "!ping") for _ in range(25)]
        commands += burst
        await wait_answered(mayor, room, account.user_id, burst, 5)  # answering has begun
        await _kill(process)

        commands += [await mayor.send(room, "!ping") for _ in range(25)]  # while down
        process = await run_process(config, log_file)

        burst = [await mayor.send(room, "!ping") for _ in range(25)]
        commands += burst
        await wait_answered(mayor, room, account.user_id, burst, 5, timeout=60)
        await _kill(process)

        process = await run_process(config, log_file)
        await settle(mayor, room, timeout=60)
        assert answered(mayor, room, account.user_id, commands) == commands, log_file.read_text()[-3000:]
    finally:
        await _kill(process)


async def test_sigterm_stops_cleanly_and_keeps_the_database_intact(synapse, make_user, tmp_path):
    account = synapse.register(unique("bot"))
    database = tmp_path / "bot" / "bot.db"
    config = account_config(tmp_path, synapse, account, log_level="INFO", sync={"timeout_ms": 1000})
    log_file = tmp_path / "bot.log"
    process = await run_process(config, log_file)
    try:
        mayor = await make_user("mayor")
        room = await mayor.dm(account.user_id)
        answer = await mayor.ask(room, "!ping")
        assert answer.body.startswith("🏓 Pong!")
        process.send_signal(signal.SIGTERM)  # at once: a batch still finishing must be let finish
        code = await asyncio.wait_for(process.wait(), 15)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    output = log_file.read_text(errors="replace")
    assert code == 0, output[-3000:]
    assert "kleinstadtbot stopped" in output
    assert "Traceback" not in output
    assert SECRET not in output and account.password not in output
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        token = conn.execute("SELECT value FROM bot_state WHERE key = 'sync_token'").fetchone()
        handled = conn.execute("SELECT count(*) FROM handled_events").fetchone()[0]
    assert token is not None and token[0]
    assert handled >= 1


async def test_invalid_config_at_start_exits_with_one_line_per_problem(tmp_path):
    config = write_config(
        tmp_path / "bad.yaml",
        {
            "homeserver": "matrix.example.org",
            "user_id": "kleinstadtbot",
            "password": SECRET,
            "database": str(tmp_path / "bot.db"),
        },
    )
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot.cli", "run", "--config", str(config)],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert [line.split(":")[1].strip() for line in lines] == ["homeserver", "user_id"], result.stderr
    assert "https://matrix.example.org" in lines[0]
    assert SECRET not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "bot.db").exists()


async def test_stop_during_the_first_sync_leaves_the_database_complete(synapse, tmp_path, monkeypatch):
    """A stop while a first start's first sync (behind the live syncs) is in flight: the request
    is given up at once, the run ends, and the database closes complete and without a sync
    token, so the next start begins anew. The first sync's answer is held back, so the stop
    lands exactly there."""
    import bot.sync_loop
    from bot.runtime import KleinstadtBot
    from storage.database import Database
    from storage.runtime_state import RuntimeStateRepository

    real_page = bot.sync_loop.fetch_sliding_page
    in_flight, cancelled = asyncio.Event(), asyncio.Event()

    async def first_page(client, body, position):  # the first sync's first page (sliding sync)
        await real_page(client, body, position)
        in_flight.set()
        try:
            await asyncio.Event().wait()  # the answer is still "on its way" when the stop comes
        except asyncio.CancelledError:
            cancelled.set()
            raise

    monkeypatch.setattr(bot.sync_loop, "fetch_sliding_page", first_page)
    settings = bot_settings(synapse, synapse.register(unique("bot")), tmp_path / "early")
    running = KleinstadtBot(settings)
    task = asyncio.ensure_future(running.run())
    try:
        await asyncio.wait_for(in_flight.wait(), 30)
        running.request_stop()
        await asyncio.wait_for(cancelled.wait(), 10)  # the stop ended the first sync
        await asyncio.wait_for(task, 30)
    finally:
        if not task.done():
            running.request_stop()
            await asyncio.wait_for(task, 30)
    db = await Database(settings.database).open(migrate=False)
    try:
        repo = RuntimeStateRepository(db)
        assert await repo.sync_token() is None
        assert await repo.take_first_sync_progress() is None  # no page was handed on: nothing to go on from
        assert (await db.fetchone("PRAGMA integrity_check"))[0] == "ok"
    finally:
        await db.close()
