"""``!tandem`` through a real Synapse, with a coordinator and mayors as second clients: the
unknown-user check, pause/resume/end in the (encrypted) tandem room and by number, the list,
and suggestions whose ready command creates the tandem."""

from __future__ import annotations

import re

import pytest

from tests.matrix_fixtures import assert_answers, unique

pytestmark = pytest.mark.synapse

CREATE_LINE = re.compile(r"!tandem anlegen (@\S+) (@\S+) (\S+)")


async def community(make_bot, make_user, towns: dict[str, str], topic: str = "Innenstadt"):
    """A bot with a configured coordinator and one profiled mayor per town (each with ``topic``).
    Returns the bot, the coordinator, {town: mayor} and {user ID: direct chat}."""
    coordinator = await make_user("koordination")
    bot = await make_bot(coordinators=[coordinator.user_id])
    chats = {coordinator.user_id: await coordinator.dm(bot.user_id)}
    mayors = {}
    for town in towns:
        mayor = mayors[town] = await make_user(towns[town])
        chat = chats[mayor.user_id] = await mayor.dm(bot.user_id)
        assert town in (await mayor.ask(chat, f"!profil ort {town}")).body
        await mayor.ask(chat, f"!profil themen hinzufügen {topic}")
    return bot, coordinator, mayors, chats


async def tandem_states(bot, tandem_id: int) -> list[tuple[str, str | None]]:
    rows = await bot.bot.db.fetchall(
        "SELECT state, actor FROM tandem_events WHERE tandem_id = ? ORDER BY id", (tandem_id,)
    )
    return [(r["state"], r["actor"]) for r in rows]


def announcements(user, room_id: str, bot) -> list:
    """The bot's messages in a room that answer no command (welcome, state changes)."""
    return [e for e in user.notices(room_id, bot.user_id) if "m.relates_to" not in e.source["content"]]


async def test_unknown_matrix_ids_are_refused_before_anything_is_made(make_bot, make_user, synapse):
    bot, coordinator, mayors, chats = await community(make_bot, make_user, {"Wittenberge": "anna"})
    anna, own = mayors["Wittenberge"], chats[coordinator.user_id]
    rooms_before = set((await bot.bot.client.joined_rooms()).rooms)
    nobody = f"@{unique('niemand')}:localhost"  # well-formed, never registered
    remote = "@buergermeister:example.org"  # a server this homeserver does not federate with
    without_profile = (await make_user("carla")).user_id  # registered, but no profile
    replies = {}
    for other in (nobody, remote, without_profile):
        command = await coordinator.send(own, f"!tandem anlegen {anna.user_id} {other} Innenstadt")
        replies[other] = await coordinator.wait_reply(own, command)
        assert_answers(replies[other], command, coordinator.user_id)
        assert other in replies[other].body and anna.user_id not in replies[other].body
    # the same refusal for both unknown IDs, another one for the person who merely has no profile
    unknown = replies[nobody].body.replace(nobody, "X")
    assert replies[remote].body.replace(remote, "X") == unknown
    assert replies[without_profile].body.replace(without_profile, "X") != unknown
    assert await bot.bot.db.fetchone("SELECT 1 FROM tandems") is None
    assert set((await bot.bot.client.joined_rooms()).rooms) == rooms_before  # no room was made


async def test_pause_resume_and_end_in_the_tandem_room_and_by_number(make_bot, make_user):
    bot, coordinator, mayors, chats = await community(
        make_bot, make_user, {"Wittenberge": "anna", "Bad Berleburg": "ben", "Perleberg": "carla"}
    )
    anna, ben, carla = mayors["Wittenberge"], mayors["Bad Berleburg"], mayors["Perleberg"]
    own = chats[coordinator.user_id]
    created = await coordinator.ask(
        own, f"!tandem anlegen {anna.user_id} {ben.user_id} Innenstadt", timeout=60
    )
    row = await bot.bot.db.fetchone("SELECT id, room_id FROM tandems")
    number, room = row["id"], row["room_id"]
    assert str(number) in created.body
    await anna.join(room)
    await ben.join(room)
    welcome = await anna.wait_notice(room, lambda e: e.sender == bot.user_id)
    assert set(welcome.source["content"]["m.mentions"]["user_ids"]) == {anna.user_id, ben.user_id}
    levels = await anna.state(room, "m.room.power_levels")
    name = await anna.state(room, "m.room.name")

    # in the encrypted tandem room, without a number
    command = await anna.send(room, "!tandem info")
    info = await anna.wait_reply(room, command)
    assert_answers(info, command, anna.user_id)
    assert info.decrypted and "Wittenberge" in info.body and "Bad Berleburg" in info.body
    command = await ben.send(room, "!tandem pausieren")
    paused = await ben.wait_reply(room, command)
    assert_answers(paused, command, ben.user_id)
    assert paused.decrypted
    assert (await tandem_states(bot, number))[-1] == ("paused", ben.user_id)
    refused = await ben.ask(room, "!tandem pausieren")  # paused already
    assert refused.body != paused.body
    assert [s for s, _ in await tandem_states(bot, number)].count("paused") == 1
    # a mayor who is not a partner learns nothing about it and changes nothing
    outsider = await carla.ask(chats[carla.user_id], f"!tandem fortsetzen {number}")
    assert str(number) in outsider.body and "Wittenberge" not in outsider.body
    assert (await tandem_states(bot, number))[-1][0] == "paused"
    await anna.ask(room, "!tandem fortsetzen")
    assert (await tandem_states(bot, number))[-1] == ("active", anna.user_id)
    # changes made inside the room are the answer only, no extra announcement
    assert announcements(anna, room, bot) == [welcome]

    # the coordinator ends it from the direct chat: the room hears it too
    command = await coordinator.send(own, f"!tandem beenden {number}")
    ended = await coordinator.wait_reply(own, command)
    assert_answers(ended, command, coordinator.user_id)
    closing = await anna.wait_notice(
        room, lambda e: e in announcements(anna, room, bot) and e.event_id != welcome.event_id
    )
    assert closing.decrypted and "Wittenberge" in closing.body and "Bad Berleburg" in closing.body
    assert (
        closing.source["content"]["msgtype"] == "m.notice" and "formatted_body" in closing.source["content"]
    )
    assert (await tandem_states(bot, number)) == [
        ("creating", coordinator.user_id),
        ("active", coordinator.user_id),
        ("paused", ben.user_id),
        ("active", anna.user_id),
        ("ended", coordinator.user_id),
    ]
    # the room stays as it was: members, power levels, name; it can still be written in
    joined = {m.user_id for m in (await anna.client.joined_members(room)).members}
    assert {anna.user_id, ben.user_id, bot.user_id} <= joined
    assert await anna.state(room, "m.room.power_levels") == levels
    assert await anna.state(room, "m.room.name") == name
    after = await anna.ask(room, "!tandem fortsetzen")
    assert after.decrypted and (await tandem_states(bot, number))[-1][0] == "ended"


async def test_suggestion_creates_the_tandem_and_the_list_shows_states_and_owners(make_bot, make_user):
    # Wittenberge and Perleberg share a Kreis (Prignitz): only Bad Berleburg may pair with either
    bot, coordinator, mayors, chats = await community(
        make_bot, make_user, {"Wittenberge": "anna", "Bad Berleburg": "ben", "Perleberg": "carla"}
    )
    ben, own = mayors["Bad Berleburg"], chats[coordinator.user_id]
    command = await coordinator.send(own, "!tandem vorschlagen Innenstadt")
    suggested = await coordinator.wait_reply(own, command)
    assert_answers(suggested, command, coordinator.user_id)
    [line] = CREATE_LINE.findall(suggested.body)
    assert ben.user_id in line[:2]
    partner_id = line[0] if line[1] == ben.user_id else line[1]
    [partner_town] = [t for t, m in mayors.items() if m.user_id == partner_id]
    other_town = ({"Wittenberge", "Perleberg"} - {partner_town}).pop()
    assert "Bad Berleburg" in suggested.body and partner_town in suggested.body
    assert other_town not in suggested.body

    # the ready line from the suggestion is a working command
    created = await coordinator.ask(own, "!tandem anlegen {} {} {}".format(*line), timeout=60)
    first = await bot.bot.db.fetchone("SELECT id, state, user_a, user_b FROM tandems")
    assert str(first["id"]) in created.body and first["state"] == "active"
    assert {first["user_a"], first["user_b"]} == {partner_id, ben.user_id}
    again = await coordinator.ask(own, "!tandem vorschlagen Innenstadt")
    assert CREATE_LINE.findall(again.body) == []

    # a second tandem of Ben's, paused by number
    other = mayors[other_town]
    await coordinator.ask(own, f"!tandem anlegen {other.user_id} {ben.user_id} Wohnen", timeout=60)
    second = (await bot.bot.db.fetchone("SELECT max(id) AS id FROM tandems"))["id"]
    await coordinator.ask(own, f"!tandem pausieren {second}")
    everything = (await coordinator.ask(own, "!tandem liste")).body
    assert partner_town in everything and other_town in everything
    paused = (await coordinator.ask(own, "!tandem liste pausiert")).body
    assert other_town in paused and partner_town not in paused
    active = (await coordinator.ask(own, "!tandem liste aktiv")).body
    assert partner_town in active and other_town not in active
    # a mayor sees only her own tandems; Ben sees both of his
    partner = mayors[partner_town]
    mine = (await partner.ask(chats[partner_id], "!tandem liste")).body
    assert partner_town in mine and other_town not in mine
    bens = (await ben.ask(chats[ben.user_id], "!tandem liste")).body
    assert partner_town in bens and other_town in bens
    # a word the list does not know is named in the answer
    assert "kaputt" in (await coordinator.ask(own, "!tandem liste kaputt")).body
    # suggestions are for coordinators
    refused = await ben.ask(chats[ben.user_id], "!tandem vorschlagen")
    assert CREATE_LINE.findall(refused.body) == [] and "Perleberg" not in refused.body
