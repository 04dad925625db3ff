"""Operations without a homeserver: JSON log lines, the audit trail on the command line, the
homeserver traffic counters and the metrics a scrape shows."""

from __future__ import annotations

import io
import json
import logging
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bot.logs import JsonLines, setup_logging
from bot.metrics import HomeserverTraffic, Metrics, request_kind
from tests.local_bot import make_local_bot

ROOT = Path(__file__).resolve().parent.parent
KOORD, ANNA = "@koordination:localhost", "@anna:localhost"


def samples(registry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_json_log_lines_carry_the_command_fields_and_never_the_text(tmp_path):
    bot = await make_local_bot(tmp_path, coordinators=[KOORD])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLines())
    logger = logging.getLogger("commands.dispatcher")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        await bot.say("!berechtigt Bad Berleburg", sender=ANNA)
        await bot.say("!neuladen", sender=ANNA)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
        await bot.db.close()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["command"], line["outcome"]) for line in lines] == [
        ("eligible", "answered"),
        ("reload", "refused"),
    ]
    for line in lines:
        assert line["sender"] == ANNA and line["level"] == "INFO" and line["logger"] == "commands.dispatcher"
        assert line["time"].endswith("+00:00") and isinstance(line["duration_ms"], float)
        assert "Berleburg" not in json.dumps(line)


def test_setup_logging_switches_format_without_doubling_handlers():
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        setup_logging("INFO", "json")
        setup_logging("WARNING", "json")
        assert len(root.handlers) == 1 and isinstance(root.handlers[0].formatter, JsonLines)
        assert root.level == logging.WARNING
        setup_logging("INFO", "plain")
        assert not isinstance(root.handlers[0].formatter, JsonLines)
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in before:
            root.addHandler(handler)


async def test_the_audit_command_prints_the_trail(tmp_path):
    bot = await make_local_bot(tmp_path, coordinators=[KOORD])
    try:
        await bot.say("!zentralort setzen 01051002 grundzentrum_mz Regionalplan 2024", sender=KOORD)
        await bot.say("!neuladen", sender=KOORD)
    finally:
        await bot.db.close()
    env = {**os.environ, "KLEINSTADTBOT_DATABASE": str(tmp_path / "bot.db")}

    def audit(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "bot.cli", "audit", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    lines = audit().stdout.splitlines()
    assert len(lines) == 2
    assert KOORD in lines[0] and "centralplace set" in lines[0] and "town=01051002" in lines[0]
    assert "reload" in lines[1] and "answered" in lines[1]
    [last] = [json.loads(line) for line in audit("--json", "--limit", "1").stdout.splitlines()]
    assert (last["actor"], last["action"], last["outcome"]) == (KOORD, "reload", "answered")


def test_homeserver_traffic_tells_retries_and_429s_apart():
    traffic = HomeserverTraffic()
    send = "/_matrix/client/v3/rooms/%21r/send/m.room.message/ksb1"
    assert (request_kind(send), request_kind("/_matrix/client/v3/sync?since=s1&timeout=30000")) == (
        "send",
        "sync",
    )
    traffic.started("send", send)
    traffic.answered("send", 429)
    traffic.started("send", send)  # nio's own retry after the 429
    traffic.answered("send", 200)
    traffic.started("send", send.replace("ksb1", "ksb2"))
    traffic.failed("send")
    traffic.answered("sync", 200)
    traffic.answered("sync", 502)
    traffic.failed("sync")
    assert (traffic.sent, traffic.send_retries, traffic.rate_limited["send"]) == (1, 1, 1)
    assert (traffic.syncs, traffic.sync_failures) == (3, 2) and traffic.last_sync is not None
    assert traffic.responses[("send", "4xx")] == 1 and traffic.responses[("send", "error")] == 1


async def test_a_scrape_shows_commands_scheduling_and_the_database(tmp_path):
    local = await make_local_bot(tmp_path, coordinators=[KOORD])
    bot = SimpleNamespace(
        client=SimpleNamespace(traffic=HomeserverTraffic()),
        db=local.db,
        dispatcher=local.dispatcher,
        membership=["!a", "!b"],
    )
    metrics = Metrics(bot)  # type: ignore[arg-type]
    local.dispatcher.listeners.append(metrics.command_handled)
    try:
        await local.say("!ping", sender=ANNA)
        await local.say("!neuladen", sender=ANNA)
        await local.say("!gibtsnicht", sender=ANNA)
        local.services.schedules.counted.update(("due", "due", "late", "missed"))  # type: ignore[union-attr]
        await metrics.refresh()
        found = samples(metrics.registry)
    finally:
        await local.db.close()
    assert found[("kleinstadtbot_commands_total", (("command", "ping"), ("outcome", "answered")))] == 1
    assert found[("kleinstadtbot_commands_total", (("command", "reload"), ("outcome", "refused")))] == 1
    assert found[("kleinstadtbot_commands_total", (("command", "unknown"), ("outcome", "usage_error")))] == 1
    assert found[("kleinstadtbot_command_duration_seconds_count", (("command", "ping"),))] == 1
    assert found[("kleinstadtbot_scheduled_occurrences_total", (("state", "due"),))] == 2
    assert found[("kleinstadtbot_scheduled_occurrences_total", (("state", "missed"),))] == 1
    assert found[("kleinstadtbot_rooms_joined", ())] == 2
    assert found[("kleinstadtbot_database_size_bytes", ())] > 100_000
    assert found[("kleinstadtbot_ready", ())] == 0
    # the outbox gauge reads the broadcasts' table where this database has it
    with sqlite3.connect(tmp_path / "bot.db") as conn:
        outbox = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'broadcast_deliveries'").fetchone()
    assert (("kleinstadtbot_outbox_pending", ()) in found) == (outbox is not None)


async def test_readyz_names_each_reason_and_healthz_stays_alive(tmp_path):
    import asyncio
    import time

    import aiohttp

    from bot.health import HealthServer
    from bot.homeserver import free_port
    from config.settings import Settings

    local = await make_local_bot(tmp_path)
    port = free_port()
    traffic = HomeserverTraffic()
    bot = SimpleNamespace(
        settings=Settings(metrics={"enabled": True, "port": port, "sync_stale_seconds": 30}),
        client=SimpleNamespace(traffic=traffic),
        db=local.db,
        ready=asyncio.Event(),
        scheduler=None,
        starting=False,
        dispatcher=local.dispatcher,
        membership=[],
    )
    server = HealthServer(bot, Metrics(bot))  # type: ignore[arg-type]
    assert await server.start()

    async def get(path: str) -> tuple[int, str]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}{path}") as response,
        ):
            return response.status, await response.text()

    try:
        status, text = await get("/readyz")
        assert status == 503
        assert "first sync" in text and "scheduler does not run" in text and "database" not in text
        bot.ready.set()
        bot.scheduler = SimpleNamespace(running=True)
        traffic.last_sync = time.time() - 100  # older than sync_stale_seconds
        status, text = await get("/readyz")
        assert status == 503 and "last successful sync 100 s ago (limit 30 s)" in text
        traffic.last_sync = time.time()
        assert await get("/readyz") == (200, "ready\n")
        status, text = await get("/metrics")
        assert status == 200 and "kleinstadtbot_ready 1.0" in text
        await local.db.close()  # a database that cannot answer
        status, text = await get("/readyz")
        assert status == 503 and "database cannot be used" in text
        assert await get("/healthz") == (200, "ok\n")
        # a second listener on the same port: logged, the bot goes on without it
        assert not await HealthServer(bot, Metrics(bot)).start()  # type: ignore[arg-type]
    finally:
        await server.stop()
