"""Operations through the real Synapse of the suite: metrics and health of a running bot, the
audit trail in the coordination room, the doctor on a good and a broken installation, and a
backup taken under load that is restored without any command answered twice."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bot.doctor import FAIL, OK, SKIPPED, UNKNOWN, run_doctor
from bot.homeserver import free_port
from bot.runtime import KleinstadtBot
from storage.backups import BotRunning, backup_sets, restore_backup
from tests.answer_checks import answered, settle, wait_answered
from tests.matrix_fixtures import WAIT, unique

pytestmark = pytest.mark.synapse
ROOT = Path(__file__).resolve().parent.parent


async def scrape(port: int, path: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}{path}", timeout=aiohttp.ClientTimeout(total=10)) as response,
    ):
        return response.status, await response.text()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def wait_for(condition: Any, timeout: float = WAIT) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.1)


async def test_metrics_health_and_the_audit_trail_of_a_running_bot(make_bot, make_user):
    port = free_port()
    coordinator = await make_user("koordination")
    coordination = await coordinator.create_room([], direct=False, name="Koordination")
    bot = await make_bot(
        metrics={"enabled": True, "port": port},
        coordinators=[coordinator.user_id],
        coordination_room=coordination,
    )
    mayor = await make_user("mayor")
    room = await mayor.dm(bot.user_id)
    assert await scrape(port, "/healthz") == (200, "ok\n")
    assert await scrape(port, "/readyz") == (200, "ready\n")
    await mayor.ask(room, "!ping")
    await mayor.ask(room, "!neuladen")  # refused: a coordinator's command
    await mayor.ask(room, "!tandem info zwölf")  # usage error
    await mayor.ask(room, "!gibtsnicht")
    # an event nobody can decrypt (a session the bot never received)
    content = {
        "algorithm": "m.megolm.v1.aes-sha2",
        "ciphertext": "AwgAEiBhYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NQ",
        "sender_key": "Qe0hd7HKsTqHnCk5QFg9VTbQlbXa06M6zMZ/Y1vrFQg",
        "session_id": "thisSessionWasNeverShared0123456789abcdefg",
        "device_id": mayor.client.device_id,
    }
    locked = await mayor.client.room_send(room, "m.room.encrypted", content)
    await mayor.wait_reply(room, locked.event_id)  # the bot says once that it cannot decrypt
    status, text = await scrape(port, "/metrics")
    assert status == 200
    found = samples(text)

    def value(name: str, **labels: str) -> float:
        return found.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("kleinstadtbot_commands_total", command="ping", outcome="answered") == 1
    assert value("kleinstadtbot_commands_total", command="reload", outcome="refused") == 1
    assert value("kleinstadtbot_commands_total", command="tandem info", outcome="usage_error") == 1
    assert value("kleinstadtbot_commands_total", command="unknown", outcome="usage_error") == 1
    assert value("kleinstadtbot_command_duration_seconds_count", command="ping") == 1
    assert value("kleinstadtbot_sync_requests_total") >= 2
    assert value("kleinstadtbot_sync_failures_total") == 0
    assert 0 <= value("kleinstadtbot_last_sync_age_seconds") < 60
    assert value("kleinstadtbot_messages_sent_total") >= 5  # four answers and the notice
    assert value("kleinstadtbot_undecryptable_events_total") >= 1
    assert value("kleinstadtbot_rooms_joined") >= 1
    assert value("kleinstadtbot_homeserver_responses_total", kind="send", status="2xx") >= 5
    assert value("kleinstadtbot_database_size_bytes") > 100_000
    assert value("kleinstadtbot_ready") == 1
    assert ("kleinstadtbot_scheduled_occurrences_total", (("state", "due"),)) in found
    # a second bot on the same database is refused at once, and the first goes on answering
    with pytest.raises(BotRunning, match="in use by a running kleinstadtbot"):
        await asyncio.wait_for(KleinstadtBot(bot.settings).run(), WAIT)
    await mayor.ask(room, "!ping")

    # the audit trail: a coordinator's action, listed in the coordination room only
    await coordinator.client.room_invite(coordination, bot.user_id)
    await coordinator.wait_joined(coordination, bot.user_id)
    await coordinator.ask(coordination, "!neuladen")
    listing = (await coordinator.ask(coordination, "!protokoll")).source["content"]["body"]
    lines = [line for line in listing.splitlines() if "!neuladen" in line]
    assert len(lines) == 2  # the coordinator's reload, and the mayor's refused attempt
    assert coordinator.user_id in lines[0] and "ausgeführt" in lines[0]
    assert mayor.user_id in lines[1] and "abgelehnt" in lines[1]
    elsewhere = await mayor.ask(room, "!protokoll")
    assert "abgelehnt" not in elsewhere.source["content"]["body"]  # members are refused, nothing listed


def write_config(path: Path, settings: Any, **changes: Any) -> Path:
    values = {
        "homeserver": settings.homeserver,
        "user_id": settings.user_id,
        "password": settings.password.get_secret_value(),
        "database": str(settings.database),
        "coordinators": list(settings.coordinators),
    }
    if settings.coordination_room:
        values["coordination_room"] = settings.coordination_room
    values.update(changes)
    path.write_text(yaml.safe_dump({k: v for k, v in values.items() if v is not None}))
    return path


async def record_tandem(bot: KleinstadtBot, number: int, room_id: str, mayor: str) -> None:
    """A running tandem in ``room_id`` as the database has it (the doctor reads it from there)."""
    await bot.db.execute(
        "INSERT INTO tandems (id, room_id, user_a, user_b, ags_a, ags_b, town_a, town_b, topic_label, "
        "state, created_at, updated_at) VALUES (?, ?, ?, '@ben:localhost', '01051002', '12070424', 'A', "
        "'B', 'Innenstadt', 'active', '', '')",
        (number, room_id, mayor),
    )


async def test_the_doctor_on_a_good_and_a_broken_installation(synapse, make_bot, make_user, tmp_path):
    coordinator = await make_user("koordination")
    room = await coordinator.create_room([], direct=False, name="Koordination")
    bot = await make_bot(coordinators=[coordinator.user_id], coordination_room=room)
    await coordinator.client.room_invite(room, bot.user_id)
    await coordinator.wait_joined(room, bot.user_id)
    # a tandem room the bot made (so it may do everything there), and the Space of the start-up
    tandem_room = await bot.bot.matrix.create_room(name="Tandem A ⇄ B", invite=[coordinator.user_id])

    async def space_recorded() -> bool:
        return await bot.bot.db.fetchone("SELECT room_id FROM academy_space") is not None

    await wait_for(space_recorded)
    await record_tandem(bot.bot, 1, tandem_room, coordinator.user_id)
    await bot.stop()
    admin = synapse.register(unique("admin"), admin=True)
    token_file = tmp_path / "admin-token"
    token_file.write_text(admin.access_token)
    config = write_config(tmp_path / "config.yaml", bot.settings)

    # without an admin token the rate limit is unknown; everything else passes
    report = await run_doctor(str(config))
    by_name = {c.name: c for c in report.checks}
    assert {c.name for c in report.checks if c.status != OK} == {"rate limit"}, report.text()
    assert by_name["rate limit"].status == UNKNOWN and "override_ratelimit" in by_name["rate limit"].fix
    assert bot.bot.client.device_id in by_name["crypto store"].message
    assert coordinator.user_id in by_name["coordination"].message
    # with one: not exempt (a failure, with the command that exempts it) ...
    report = await run_doctor(str(config), admin.access_token)
    limit = {c.name: c for c in report.checks}["rate limit"]
    assert limit.status == FAIL and "messages_per_second" in limit.fix and report.failed
    # ... and once exempt, every check passes; the command line says so with exit status 0
    synapse._request(
        "POST",
        f"/_synapse/admin/v1/users/{bot.user_id}/override_ratelimit",
        {"messages_per_second": 0, "burst_count": 0},
        token=admin.access_token,
    )
    result = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "bot.cli",
            "doctor",
            "--config",
            str(config),
            "--admin-token-file",
            str(token_file),
        ],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("KLEINSTADTBOT_")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert (
        len(lines) == 11
        and all(line.startswith("✓") for line in lines[:-1])
        and lines[-1] == "all checks passed"
    )

    # now break it: a coordinator that does not exist, the bot without power in a tandem room,
    # the crypto store gone
    weak = await coordinator.create_room([bot.user_id], direct=False, name="Tandem C ⇄ D")
    settings = bot.settings
    again = await make_bot(account=bot.account, coordinators=[coordinator.user_id], coordination_room=room)
    await coordinator.wait_joined(weak, bot.user_id)
    await record_tandem(again.bot, 2, weak, coordinator.user_id)
    await again.stop()
    crypto = settings.crypto_dir
    shutil.move(crypto, tmp_path / "crypto-elsewhere")
    broken = write_config(
        tmp_path / "broken.yaml", settings, coordinators=[coordinator.user_id, "@tippfehler:localhost"]
    )
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot.cli", "doctor", "--json", "--config", str(broken)],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("KLEINSTADTBOT_")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert (
        checks["crypto store"]["status"] == FAIL
        and "restore the crypto store" in checks["crypto store"]["fix"]
    )
    assert (
        checks["coordination"]["status"] == FAIL
        and "@tippfehler:localhost" in checks["coordination"]["message"]
    )
    assert checks["tandem rooms"]["status"] == FAIL
    assert (
        "tandem 2" in checks["tandem rooms"]["message"]
        and "tandem 1" not in checks["tandem rooms"]["message"]
    )
    assert "remove members" in checks["tandem rooms"]["message"]
    assert checks["database"]["status"] == OK and checks["homeserver"]["status"] == OK
    # a token the homeserver refuses: later checks are left out, not failed
    refused = write_config(tmp_path / "token.yaml", settings, password=None, access_token="syt_wrong_token")
    report = await run_doctor(str(refused))
    statuses = {c.name: c.status for c in report.checks}
    assert statuses["credentials"] == FAIL and statuses["space"] == SKIPPED


async def test_a_backup_taken_under_load_restores_and_nothing_is_answered_twice(
    make_bot, make_user, tmp_path
):
    bot = await make_bot(rate_limit={"commands": 1000})
    mayor = await make_user("mayor")
    room = await mayor.dm(bot.user_id)
    await mayor.ask(room, "!ping")
    backups = bot.bot.operations.backups
    assert backups is not None
    # thirty commands in flight while the scheduled backup job runs
    first = [await mayor.send(room, "!ping") for _ in range(15)]
    made = await backups.run()
    first += [await mayor.send(room, "!ping") for _ in range(15)]
    await wait_answered(mayor, room, bot.user_id, first, at_least=30)
    assert made is not None and backups.succeeded == 1 and backup_sets(bot.settings.backup_dir) == [made]
    database = made / bot.settings.database.name
    with sqlite3.connect(database) as conn:
        answered_in_backup = conn.execute("SELECT count(*) FROM handled_events").fetchone()[0]
    # the backup holds the state of its moment: some of the thirty, not all of them afterwards
    assert answered_in_backup < 31
    later = [await mayor.send(room, "!berechtigt Bad Berleburg") for _ in range(5)]
    await wait_answered(mayor, room, bot.user_id, later, at_least=5)
    # the restore is refused while the bot runs on that database
    with pytest.raises(BotRunning):
        restore_backup(database, bot.settings.database, bot.settings.crypto_dir, now=datetime.now(UTC))
    await bot.stop()
    restored = restore_backup(database, bot.settings.database, bot.settings.crypto_dir, now=datetime.now(UTC))
    assert restored.crypto
    again = await make_bot(account=bot.account, rate_limit={"commands": 1000})
    assert again.bot.client.device_id == bot.bot.client.device_id  # the restored session
    await settle(mayor, room)
    everything = first + later
    assert sorted(answered(mayor, room, bot.user_id, everything)) == sorted(everything)
