"""Broadcasts through a real Synapse.

- With Synapse's DEFAULT rate limits (rc_message: 0.2 events a second after a burst of 10): a
  broadcast to 30 rooms, one of them encrypted, confirmed with the author's ✅ on the preview, is
  paced (the bot is refused with 429 and slows every send), reaches all 30 rooms exactly once (the
  encrypted one decrypts for its member), and the coordinator sees one progress message edited
  in place and a final report. Set-up (30 rooms, the bot's joins, the preview) runs with the bot
  exempted through the admin API, as the docs tell operators; the exemption is lifted before the
  confirmation. The broadcast takes about three minutes of waiting for the limiter, so it starts
  when this module does (``paced``) and the other tests run meanwhile; its test comes last.
- The bot as its own process (``kleinstadtbot run --config``), killed with SIGKILL in the middle
  of a broadcast to 200 rooms and started again, finishes by itself with every room holding the
  announcement exactly once; a correction is exactly one edit and a retraction exactly one
  redaction in each of the 200 rooms; a scheduled broadcast whose time passes while the bot is
  down fires once when it is back (pinned in its channel, where the bot has the power), and not
  again after the next restart. Its rooms are public rooms made by a helper account and joined
  with the bot's token before it starts; during the first broadcast the bot may send 25 events a
  second (a per-user limit set with the admin API), so that it lasts long enough to be killed in
  the middle; afterwards it is exempt.
- Every mayor with a profile gets a direct message: in the existing direct chat, or in a new one
  flagged as direct that decrypts once the person joins; a profile without an account is named in
  the report.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from nio import AsyncClient, JoinResponse, RoomCreateResponse, RoomPreset

from bench.common import Proc, bot_process, write_bot_config
from config.topics import fold
from storage.broadcasts import BroadcastRepository
from storage.community import ProfileRepository, TopicChannelRepository
from tests.matrix_fixtures import WAIT, RunningBot, UserClient, bot_settings, start_bot, unique, user_client
from tests.test_checkins_synapse import react

pytestmark = pytest.mark.synapse

PACED_ROOMS = 30
CRASH_ROOMS = 200
RATE = 25  # events a second for the crash test's bot (admin API): the broadcast takes about 8 s
MARK = "Transferwerkstatt am 10. Dezember"
PACED_TEST = "test_thirty_rooms_at_default_rate_limits_paced_once_each_progress_in_place"


async def bot_events(client: Any, room_id: str, sender: str) -> list[dict[str, Any]]:
    """Every event ``sender`` posted in ``room_id`` (raw, as the homeserver keeps them)."""
    found: list[dict[str, Any]] = []
    start = None
    while True:
        response = await client.room_messages(room_id, start=start, limit=100)
        found += [e.source for e in response.chunk if e.source.get("sender") == sender]
        if not response.chunk or response.end is None or response.end == start:
            return found
        start = response.end


def relation(event: dict[str, Any]) -> dict[str, Any]:
    return event.get("content", {}).get("m.relates_to") or {}


def originals(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages that are not edits, reactions or redactions."""
    return [
        e
        for e in events
        if e["type"] in ("m.room.message", "m.room.encrypted") and relation(e).get("rel_type") != "m.replace"
    ]


async def join_all(client: Any, bot_user: str, rooms: list[str], timeout: float = 120) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    waiting = set(rooms)
    while waiting:
        for room_id in list(waiting):
            response = await client.joined_members(room_id)
            if bot_user in [m.user_id for m in getattr(response, "members", [])]:
                waiting.discard(room_id)
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"the bot did not join {len(waiting)} rooms")
        await asyncio.sleep(0.5)


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

    return list(await asyncio.gather(*(make(i) for i in range(CRASH_ROOMS))))


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


@dataclass
class Paced:
    coordinator: UserClient
    bot: RunningBot
    dm: str
    rooms: list[str]


@pytest.fixture(scope="module", autouse=True)
async def paced(request, limited_synapse, tmp_path_factory):
    """The 30-room broadcast at Synapse's default limits, set up and confirmed when this module
    starts (only if its test is to run), so that the limiter's minutes pass while the other
    tests run; ``test_thirty_rooms…`` at the end of the module checks it."""
    if not any(item.name == PACED_TEST for item in request.session.items):
        yield None
        return
    synapse = limited_synapse.synapse
    folder = tmp_path_factory.mktemp("paced")
    coordinator = await user_client(synapse, synapse.register(unique("koordination")), folder / "store")
    limited_synapse.exempt(coordinator.user_id)
    account = synapse.register(unique("bot"))
    limited_synapse.exempt(account.user_id)  # set-up: 30 invitations, 30 joins, the preview
    settings = bot_settings(
        synapse, account, folder / "bot", access_token=account.access_token, device_id=account.device_id,
        display_name=None, avatar=None, coordinators=[coordinator.user_id],
    )  # fmt: skip
    bot = await start_bot(settings)
    try:
        dm = await coordinator.dm(bot.user_id)
        slots = asyncio.Semaphore(6)

        async def make(i: int) -> str:
            async with slots:
                return await coordinator.create_room(
                    [bot.user_id], encrypted=i == 0, direct=False, name=f"Kanal {i:02d}"
                )

        rooms = list(await asyncio.gather(*(make(i) for i in range(PACED_ROOMS))))
        await join_all(coordinator.client, bot.user_id, rooms)
        channels = TopicChannelRepository(bot.bot.db)
        for i, room_id in enumerate(rooms):
            name = f"Kanal {i:02d}"
            await channels.add(
                room_id=room_id, name=name, name_key=fold(name), topic_id=None, description="",
                join_rule="invite", created_by=coordinator.user_id, now=datetime.now(UTC),
            )  # fmt: skip
        text = f"**Einladung:** {MARK}.\n\n- Anmeldung bis Freitag\n- [Programm](https://example.org)"
        preview = await coordinator.ask(dm, f"!rundschreiben themen\n{text}", timeout=60)
        assert "30 Themenkanäle" in preview.body and "Rundschreiben Nr. 1" in preview.body
        limited_synapse.limit(bot.user_id)  # from here on, Synapse's default limits apply to the bot
        await react(coordinator, dm, preview.event_id, "✅")  # the author's ✅ on the preview confirms
        yield Paced(coordinator, bot, dm, rooms)
    finally:
        await bot.stop()
        await coordinator.close()


@pytest.mark.timeout(480)
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
        await schema_ready(db)  # a first start migrates while its first sync runs behind
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
        assert 40 <= at_kill < CRASH_ROOMS
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


async def test_mayors_get_it_in_their_direct_chat_or_a_new_one_and_unknown_people_are_named(
    make_bot, make_user
):
    """Every mayor with a profile: Anna in her existing (encrypted) direct chat with the bot, Ben
    in a new one flagged as direct, a profile whose account does not exist reported in words."""
    coordinator = await make_user("koordination")
    anna, ben = await make_user("anna"), await make_user("ben")
    bot = await make_bot(coordinators=[coordinator.user_id])
    ghost = "@niemand:localhost"
    profiles = ProfileRepository(bot.bot.db)
    for user, town in ((anna.user_id, "Wittenberge"), (ben.user_id, "Bad Berleburg"), (ghost, "Sonneberg")):
        await profiles.set_town(
            user, ags="1", town=town, kreis="K", land="L", population=20_000, now=datetime.now(UTC)
        )
    anna_chat = await anna.dm(bot.user_id, encrypted=True)
    dm = await coordinator.dm(bot.user_id)
    preview = await coordinator.ask(dm, f"!rundschreiben bürgermeister\n**Hinweis:** {MARK}.", timeout=60)
    assert "3 Direktnachrichten an Bürgermeisterinnen und Bürgermeister" in preview.body
    await coordinator.send(dm, "!rundschreiben senden 1")
    report = await coordinator.wait_notice(dm, lambda e: e.sender == bot.user_id and "ist gesendet" in e.body)
    assert "2 zugestellt, 0 übersprungen, 1 fehlgeschlagen" in report.body
    assert f"Direktnachricht an {ghost} (Sonneberg): diese Person gibt es auf dem Server nicht" in report.body

    # Anna: in the chat she already had, and her client decrypts it
    message = await anna.wait_notice(anna_chat, lambda e: e.sender == bot.user_id and MARK in e.body)
    assert message.decrypted

    # Ben: invited to a new direct chat; once he joins, the announcement is there and decrypts
    async def invited():
        return [r for r in ben.client.invited_rooms if r != anna_chat]

    deadline = asyncio.get_running_loop().time() + WAIT
    while not await invited():
        assert asyncio.get_running_loop().time() < deadline, "Ben was not invited"
        await asyncio.sleep(0.2)
    [ben_chat] = await invited()
    await ben.join(ben_chat)
    invitation = [
        e for e in await bot_events(ben.client, ben_chat, bot.user_id)
        if e["type"] == "m.room.member" and e.get("state_key") == ben.user_id
    ]  # fmt: skip
    assert invitation and invitation[0]["content"].get("is_direct") is True
    message = await ben.wait_notice(ben_chat, lambda e: e.sender == bot.user_id and MARK in e.body)
    assert message.decrypted
    chats = await BroadcastRepository(bot.bot.db).direct_chats()
    assert chats == {anna.user_id: anna_chat, ben.user_id: ben_chat}


@pytest.mark.timeout(480)  # about 45 events at 0.2 a second after the burst: three minutes at most
async def test_thirty_rooms_at_default_rate_limits_paced_once_each_progress_in_place(paced):
    coordinator, bot, dm, rooms = paced.coordinator, paced.bot, paced.dm, paced.rooms
    report = await coordinator.wait_notice(
        dm, lambda e: e.sender == bot.user_id and "ist gesendet" in e.body, timeout=WAIT * 12
    )
    assert "30 zugestellt, 0 übersprungen, 0 fehlgeschlagen" in report.body

    # paced: the homeserver refused sends and every paced send slowed down
    assert bot.bot.sender.pace.refusals > 0
    # every room holds the announcement exactly once
    for room_id in rooms:
        posted = originals(await bot_events(coordinator.client, room_id, bot.user_id))
        assert len(posted) == 1, (room_id, posted)
    encrypted = await coordinator.wait_notice(rooms[0], lambda e: e.sender == bot.user_id and MARK in e.body)
    assert (
        encrypted.decrypted and "<strong>Einladung:</strong>" in encrypted.source["content"]["formatted_body"]
    )
    sent = await bot.bot.db.fetchone("SELECT count(*) FROM broadcast_deliveries WHERE state = 'sent'")
    assert sent[0] == 30

    # one progress message, edited in place (m.replace), the last edit showing it finished
    events = await bot_events(coordinator.client, dm, bot.user_id)
    progress = [e for e in originals(events) if "von 30 Räumen" in e["content"].get("body", "")]
    assert len(progress) == 1
    edits = [e for e in events if relation(e).get("rel_type") == "m.replace"]
    assert len(edits) >= 2 and {relation(e)["event_id"] for e in edits} == {progress[0]["event_id"]}
    assert "30 von 30" in edits[0]["content"]["m.new_content"]["body"]  # newest first
    shown = [int(e["content"]["m.new_content"]["body"].split(": ")[1].split(" von")[0]) for e in edits]
    assert shown == sorted(shown, reverse=True) and len(set(shown)) == len(shown)


async def schema_ready(db: Path, timeout: float = 60) -> None:
    """Until the bot's database has every migration (its ``schema_version`` table)."""
    from storage.database import discover_migrations

    wanted = len(discover_migrations())
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
            try:
                done = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0
            except sqlite3.OperationalError:  # no table yet
                done = 0
        if done >= wanted:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{db} not migrated")
        await asyncio.sleep(0.1)
