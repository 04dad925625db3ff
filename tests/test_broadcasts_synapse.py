"""Broadcasts through a real Synapse with its DEFAULT rate limits (rc_message: 0.2 events a
second after a burst of 10): a broadcast to 30 rooms, one of them encrypted, is paced (the bot
is refused with 429 and slows every send), reaches all 30 rooms exactly once (the encrypted one
decrypts for its member), and the coordinator, who confirmed with a ✅ on the preview, sees one
progress message edited in place and a final report. Set-up (30 rooms, the bot's joins, the
preview) runs with the bot exempted through the admin API, as the docs tell operators; the
exemption is lifted before the broadcast."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from config.topics import fold
from storage.broadcasts import BroadcastRepository
from storage.community import ProfileRepository, TopicChannelRepository
from tests.matrix_fixtures import WAIT
from tests.test_checkins_synapse import react

pytestmark = pytest.mark.synapse

ROOMS = 30
MARK = "Transferwerkstatt am 10. Dezember"


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


@pytest.mark.timeout(480)  # about 45 events at 0.2 a second after the burst: three minutes
async def test_thirty_rooms_at_default_rate_limits_paced_once_each_progress_in_place(
    limited_synapse, make_limited_bot, make_limited_user
):
    coordinator = await make_limited_user("koordination")
    limited_synapse.exempt(coordinator.user_id)
    bot = await make_limited_bot(coordinators=[coordinator.user_id])
    limited_synapse.exempt(bot.user_id)  # set-up: 30 invitations, 30 joins, the preview

    dm = await coordinator.dm(bot.user_id)
    slots = asyncio.Semaphore(6)

    async def make(i: int) -> str:
        async with slots:
            return await coordinator.create_room(
                [bot.user_id], encrypted=i == 0, direct=False, name=f"Kanal {i:02d}"
            )

    rooms = list(await asyncio.gather(*(make(i) for i in range(ROOMS))))
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
    assert (await bot.bot.db.fetchone("SELECT count(*) FROM broadcast_deliveries WHERE state = 'sent'"))[
        0
    ] == 30

    # one progress message, edited in place (m.replace), the last edit showing it finished
    events = await bot_events(coordinator.client, dm, bot.user_id)
    progress = [e for e in originals(events) if "von 30 Räumen" in e["content"].get("body", "")]
    assert len(progress) == 1
    edits = [e for e in events if relation(e).get("rel_type") == "m.replace"]
    assert len(edits) >= 2 and {relation(e)["event_id"] for e in edits} == {progress[0]["event_id"]}
    assert "30 von 30" in edits[0]["content"]["m.new_content"]["body"]  # newest first
    shown = [int(e["content"]["m.new_content"]["body"].split(": ")[1].split(" von")[0]) for e in edits]
    assert shown == sorted(shown, reverse=True) and len(set(shown)) == len(shown)


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
