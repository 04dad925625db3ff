"""Broadcasts across crashes, with the bot as its own process (``kleinstadtbot run --config``)
on a real Synapse:

- killed with SIGKILL in the middle of a broadcast to 200 rooms and started again, it finishes
  by itself, and every room holds the announcement exactly once;
- a correction reaches every one of the 200 rooms as exactly one edit, a retraction as exactly
  one redaction;
- a scheduled broadcast whose time passes while the bot is down fires once when it is back (and
  is pinned in its channel, where the bot has the power), and not again after the next restart.

The rooms are public rooms made by a helper account and joined with the bot's token before it
starts; the helper reads them back (the coordinator talks to the bot in a direct chat only).
During the first broadcast the bot may send 25 events a second (a per-user limit set with the
admin API), so that it lasts long enough to be killed in the middle; afterwards it is exempt.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from nio import AsyncClient, JoinResponse, RoomCreateResponse, RoomPreset

from bench.common import Proc, bot_process, write_bot_config
from config.topics import fold
from tests.matrix_fixtures import WAIT, unique
from tests.test_broadcasts_synapse import bot_events, originals, relation

pytestmark = pytest.mark.synapse

ROOMS = 200
RATE = 25  # events a second for the bot (admin API), so that the broadcast takes about 8 s


def query(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    with sqlite3.connect(db, timeout=30) as conn:
        return conn.execute(sql, params).fetchall()


async def eventually(check, timeout: float = WAIT * 4, every: float = 0.1):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(every)


def plain_client(synapse, account) -> AsyncClient:
    """A client that does not sync (making and reading rooms only)."""
    client = AsyncClient(synapse.url, account.user_id, device_id=account.device_id)
    client.restore_login(account.user_id, account.device_id, account.access_token)
    return client


async def make_rooms(owner: AsyncClient, bot_client: AsyncClient) -> list[str]:
    """Public rooms (no invitation needed), made by ``owner`` and joined by the bot's token, a
    few at a time."""
    slots = asyncio.Semaphore(8)

    async def make(i: int) -> str:
        # in room 7 the bot may pin (power 50); elsewhere it may post but not pin
        power = {"users": {bot_client.user_id: 50}} if i == 7 else None  # room v12: the creator is implied
        async with slots:
            made = await owner.room_create(
                name=f"Kanal {i:03d}", preset=RoomPreset.public_chat, power_level_override=power
            )
            assert isinstance(made, RoomCreateResponse), made
            joined = await bot_client.join(made.room_id)
            assert isinstance(joined, JoinResponse), joined
            return made.room_id

    return list(await asyncio.gather(*(make(i) for i in range(ROOMS))))


async def read_all(reader: AsyncClient, rooms: list[str], bot_user: str) -> dict[str, list[dict]]:
    """The bot's events in every room, read a few rooms at a time."""
    slots = asyncio.Semaphore(10)

    async def read(room_id: str) -> tuple[str, list[dict]]:
        async with slots:
            return room_id, await bot_events(reader, room_id, bot_user)

    return dict(await asyncio.gather(*(read(r) for r in rooms)))


def kill(proc: Proc) -> None:
    assert proc.process is not None
    os.kill(proc.pid, signal.SIGKILL)
    proc.process.wait(10)
    proc.process = None


@pytest.mark.timeout(420)
async def test_killed_mid_broadcast_then_edit_retract_and_a_schedule_across_restarts(
    synapse, make_user, tmp_path
):
    admin = synapse.register(unique("admin"), admin=True)
    coordinator = await make_user("koordination")
    account = synapse.register(unique("bot"))
    config = write_bot_config(
        tmp_path / "bot.yaml",
        synapse.url,
        account,
        tmp_path / "bot",
        coordinators=[coordinator.user_id],
        display_name=None,
        avatar=None,
    )
    db = tmp_path / "bot" / "bot.db"
    log = tmp_path / "bot.log"

    # 200 rooms made by the coordinator and joined with the bot's token before it starts (its
    # first sync then finds them); registered as topic channels once its database exists
    owner = plain_client(synapse, synapse.register(unique("ersteller")))  # not syncing 200 rooms
    bot_client = plain_client(synapse, account)
    rooms = await make_rooms(owner, bot_client)
    await bot_client.close()
    bot = bot_process(config, log).start()
    try:
        await bot.wait_ready()
        dm = await coordinator.dm(account.user_id)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with sqlite3.connect(db, timeout=30) as conn:
            conn.executemany(
                "INSERT INTO topic_channels (room_id, name, name_key, topic_id, description, join_rule,"
                " created_by, created_at) VALUES (?, ?, ?, NULL, '', 'invite', ?, ?)",
                [
                    (r, f"Kanal {i:03d}", fold(f"Kanal {i:03d}"), coordinator.user_id, now)
                    for i, r in enumerate(rooms)
                ],
            )

        preview = await coordinator.ask(
            dm, "!rundschreiben themen\n**Ausfalltest:** bitte ignorieren.", timeout=60
        )
        assert "200 Themenkanäle" in preview.body
        synapse.override_ratelimit(account.user_id, admin.access_token, RATE, 5)
        await coordinator.send(dm, "!rundschreiben senden 1")

        # SIGKILL in the middle
        def sent() -> int:
            return query(db, "SELECT count(*) FROM broadcast_deliveries WHERE state = 'sent'")[0][0]

        await eventually(lambda: sent() >= 40, every=0.05)
        kill(bot)
        at_kill = sent()
        assert 40 <= at_kill < ROOMS
        bot = bot_process(config, log).start()
        await bot.wait_ready()
        report = await coordinator.wait_notice(
            dm, lambda e: e.sender == account.user_id and "Nr. 1 ist gesendet" in e.body, timeout=120
        )
        assert "200 zugestellt, 0 übersprungen, 0 fehlgeschlagen" in report.body
        announced: dict[str, str] = {}
        for room_id, events in (await read_all(owner, rooms, account.user_id)).items():
            posted = originals(events)
            assert len(posted) == 1, (room_id, posted)
            announced[room_id] = posted[0]["event_id"]
        synapse.override_ratelimit(account.user_id, admin.access_token)  # no limit from here on

        # a correction: one edit in every room
        await coordinator.send(dm, "!rundschreiben ändern 1\n**Ausfalltest:** korrigiert.")
        await coordinator.wait_notice(
            dm,
            lambda e: (
                e.sender == account.user_id and "Korrektur von Rundschreiben Nr. 1 ist fertig" in e.body
            ),
            timeout=120,
        )
        for room_id, events in (await read_all(owner, rooms, account.user_id)).items():
            edits = [e for e in events if relation(e).get("rel_type") == "m.replace"]
            assert [relation(e)["event_id"] for e in edits] == [announced[room_id]], room_id
            assert "korrigiert" in edits[0]["content"]["m.new_content"]["body"]

        # a retraction: one redaction in every room
        await coordinator.send(dm, "!rundschreiben zurückziehen 1")
        await coordinator.wait_notice(
            dm, lambda e: e.sender == account.user_id and "Nr. 1 ist zurückgezogen" in e.body, timeout=120
        )
        for room_id, events in (await read_all(owner, rooms, account.user_id)).items():
            redactions = [e for e in events if e["type"] == "m.room.redaction"]
            assert [e.get("redacts") or e["content"].get("redacts") for e in redactions] == [
                announced[room_id]
            ]

        # a scheduled broadcast whose time passes while the bot is down fires once afterwards
        target = rooms[7]
        due = datetime.now(ZoneInfo("Europe/Berlin")) + timedelta(seconds=12)
        at = due.strftime("%Y-%m-%d %H:%M:%S")
        await coordinator.ask(
            dm, f"!rundschreiben thema Kanal 007 anheften {at}\nGeplante Mitteilung", timeout=60
        )
        planned = await coordinator.ask(dm, "!rundschreiben senden 2")
        assert "geplant" in planned.body
        kill(bot)
        await eventually(lambda: datetime.now(UTC) > due + timedelta(seconds=2), timeout=60, every=0.5)
        bot = bot_process(config, log).start()
        await bot.wait_ready()
        await coordinator.wait_notice(
            dm, lambda e: e.sender == account.user_id and "Nr. 2 ist gesendet" in e.body, timeout=120
        )

        def planned_posts(events: list) -> list:
            return [e for e in originals(events) if "Geplante Mitteilung" in str(e["content"])]

        [posted] = planned_posts(await bot_events(owner, target, account.user_id))
        # pinned in the channel, where the bot has the power to
        pinned = await owner.room_get_state_event(target, "m.room.pinned_events")
        assert posted["event_id"] in pinned.content["pinned"]
        # and not again after another restart
        await bot.stop()
        bot = bot_process(config, log).start()
        await bot.wait_ready()
        status = await coordinator.ask(dm, "!rundschreiben status 2")
        assert "1 zugestellt" in status.body
        assert len(planned_posts(await bot_events(owner, target, account.user_id))) == 1
        assert query(db, "SELECT state FROM occurrences")[-1][0] == "delivered"
    finally:
        await bot.stop()
        await owner.close()
