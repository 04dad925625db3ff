"""Room creation is idempotent per ``txn_key``: a retry after a lost answer or a crash returns the
room made the first time, in memory (``LocalMatrix``) and on the homeserver (``NioMatrix``)."""

from __future__ import annotations

import asyncio

import pytest
from nio import JoinedRoomsResponse

from bot.matrix_port import ROOM_KEY_EVENT, room_key_alias
from commands.context import Role
from config.topics import default_topics, fold
from tests.local_bot import make_local_bot

COORDINATOR = "@koordination:localhost"


def housing_label() -> str:
    topic = default_topics().match("Wohnen")
    assert topic is not None
    return topic.label("de")


async def test_local_matrix_creates_one_room_per_key(local_bot):
    matrix = local_bot.matrix
    first = await matrix.create_room(name="Tandem A ⇄ B", txn_key="tandem-1-20261201T090000")
    again = await matrix.create_room(name="Tandem A ⇄ B", txn_key="tandem-1-20261201T090000")
    other = await matrix.create_room(name="Tandem A ⇄ B", txn_key="tandem-1-20270101T090000")
    keyless = [await matrix.create_room(name="ohne Schlüssel") for _ in range(2)]
    assert first == again and other != first and keyless[0] != keyless[1]
    assert len(matrix.rooms) == 4


def test_alias_keeps_keys_and_bots_apart():
    a = room_key_alias("@kleinstadtbot:example.org", "topic-ländliche kultur")
    assert a.startswith("kleinstadtbot.topic-l-ndliche-kultur.") and ":" not in a and " " not in a
    assert a != room_key_alias("@kleinstadtbot:example.org", "topic-landliche kultur")
    assert a != room_key_alias("@anderer:example.org", "topic-ländliche kultur")
    assert len(room_key_alias("@kleinstadtbot:example.org", "x" * 500)) < 100


async def test_topic_channel_create_retried_after_a_lost_answer_reuses_the_room(tmp_path):
    bot = await make_local_bot(tmp_path, roles={COORDINATOR: Role.COORDINATOR})
    try:
        label = housing_label()
        # the first attempt made the room, then its answer was lost before the channel was recorded
        made = await bot.matrix.create_room(name=label, txn_key=f"topic-{fold(label)}")
        rooms = len(bot.matrix.rooms)
        await bot.say("!thema anlegen Wohnen", sender=COORDINATOR)
        assert [tuple(r) for r in await bot.db.fetchall("SELECT room_id FROM topic_channels")] == [(made,)]
        assert len(bot.matrix.rooms) == rooms + 1  # only the academy Space is new
    finally:
        await bot.db.close()


# --- through Synapse ------------------------------------------------------------------------


async def _started(bot) -> None:
    """Wait for the bot's start-up hooks (they make the academy Space beside the sync loop)."""
    if bot.bot._startup is not None:
        await asyncio.wait_for(asyncio.shield(bot.bot._startup), 60)


async def _joined(bot) -> set[str]:
    response = await bot.bot.client.joined_rooms()
    assert isinstance(response, JoinedRoomsResponse), response
    return set(response.rooms)


@pytest.mark.synapse
async def test_a_second_create_with_the_same_key_returns_the_same_room(make_bot, make_user):
    bot = await make_bot()
    await _started(bot)
    matrix = bot.bot.matrix
    before = await _joined(bot)
    first = await matrix.create_room(name="Tandem Wittenberge ⇄ Bad Berleburg", txn_key="tandem-7-a")
    again = await matrix.create_room(name="Tandem Wittenberge ⇄ Bad Berleburg", txn_key="tandem-7-a")
    other = await matrix.create_room(name="Tandem Wittenberge ⇄ Bad Berleburg", txn_key="tandem-7-b")
    assert first == again and other != first
    assert await _joined(bot) - before == {first, other}
    # the key is recorded in the room; the alias behind it is not shown as the room's address
    assert (await matrix.get_state(first, ROOM_KEY_EVENT)) == {"key": "tandem-7-a"}
    assert not (await matrix.get_state(first, "m.room.canonical_alias") or {}).get("alias")


@pytest.mark.synapse
async def test_an_alias_taken_by_someone_else_is_not_mistaken_for_the_bots_room(make_bot, make_user):
    bot = await make_bot()
    squatter = await make_user("squatter")
    key = "topic-falle"  # a key the bot does not use at start (the Space has one of its own)
    alias = room_key_alias(bot.user_id, key)
    response = await squatter.client.room_create(name="Falle", alias=alias)
    assert getattr(response, "room_id", None), response
    made = await bot.bot.matrix.create_room(name="Falle", txn_key=key)
    assert made != response.room_id
    assert made in await _joined(bot)


@pytest.mark.synapse
async def test_topic_channel_retried_through_synapse_gets_the_first_room(make_bot, make_user):
    coordinator = await make_user("koordination")
    bot = await make_bot(coordinators=[coordinator.user_id])
    label = housing_label()
    made = await bot.bot.matrix.create_room(name=label, txn_key=f"topic-{fold(label)}")
    rooms = await _joined(bot)
    dm = await coordinator.dm(bot.user_id)
    answer = await coordinator.ask(dm, "!thema anlegen Wohnen")
    assert label in answer.body
    row = await bot.bot.db.fetchone("SELECT room_id FROM topic_channels")
    assert row["room_id"] == made
    space = (await bot.bot.db.fetchone("SELECT room_id FROM academy_space"))["room_id"]
    assert await _joined(bot) - rooms <= {dm, space}  # no second channel room
