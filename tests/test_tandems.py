"""``!tandem``: creation order, validation, room setup, state changes and suggestions."""

import pytest

from commands.context import MatrixError
from commands.registry import REGISTRY
from tests.local_bot import make_local_bot

COORD = "@koordination:localhost"
ANNA, BEN, CARLA = "@anna:localhost", "@ben:localhost", "@carla:localhost"
CREATE = "!tandem anlegen @anna:localhost @ben:localhost Innenstadt"


async def profiled(bot, *people):
    for user, town, topics in people:
        await bot.say(f'!profil ort "{town}"', sender=user)
        for topic in topics:
            await bot.say(f"!profil themen hinzufügen {topic}", sender=user)


@pytest.fixture
async def pair(local_bot):
    await profiled(local_bot, (ANNA, "Wittenberge", ["Innenstadt"]), (BEN, "Bad Berleburg", ["Innenstadt"]))
    return local_bot


def tandem_room(bot):
    [room] = [r for r in bot.matrix.rooms.values() if r.name.startswith("Tandem")]
    return room


async def test_create_sets_up_the_room_completely(pair):
    messages = await pair.say(CREATE, sender=COORD)
    room = tandem_room(pair)
    assert room.name == "Tandem Wittenberge ⇄ Bad Berleburg: Innenstadt"
    assert room.encrypted
    assert room.invited == {ANNA, BEN, COORD}
    users = room.state[("m.room.power_levels", "")]["users"]
    assert users[ANNA] == 50 and users[BEN] == 50 and users[COORD] == 100
    assert users[pair.matrix.user_id] == 100
    [space] = [r for r in pair.matrix.rooms.values() if r.space]
    assert ("m.space.child", room.room_id) in space.state
    assert space.state[("m.space.child", room.room_id)]["via"] == ["localhost"]
    assert ("m.space.parent", space.room_id) in room.state
    welcome = [m for m in messages if m.room_id == room.room_id]
    assert len(welcome) == 1
    assert "Wittenberge" in welcome[0].body and "Bad Berleburg" in welcome[0].body
    assert "Innenstadt und Leerstand" in welcome[0].body and "So funktioniert" in welcome[0].body
    confirm = next(m for m in messages if m.room_id != room.room_id).body
    assert "Tandem Nr. 1 angelegt" in confirm
    row = await pair.db.fetchone("SELECT state, room_id, topic_id FROM tandems")
    assert tuple(row) == ("active", room.room_id, "innenstadt")
    history = await pair.db.fetchall("SELECT state FROM tandem_events ORDER BY id")
    assert [h[0] for h in history] == ["creating", "active"]


async def test_free_text_topic_and_unencrypted_setting(tmp_path):
    bot = await make_local_bot(tmp_path, tandem_encrypted=False)
    try:
        await profiled(bot, (ANNA, "Wittenberge", []), (BEN, "Bad Berleburg", []))
        await bot.say("!tandem anlegen @anna:localhost @ben:localhost Bahnhof als Kulturort", sender=COORD)
        room = tandem_room(bot)
        assert room.name.endswith(": Bahnhof als Kulturort") and not room.encrypted
    finally:
        await bot.db.close()


async def test_member_is_refused(pair):
    text = await pair.text(CREATE, sender=ANNA)
    assert "Koordinat" in text
    assert await pair.db.fetchone("SELECT 1 FROM tandems") is None


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("!tandem anlegen @anna:localhost @anna:localhost Wohnen", "zwei verschiedene Personen"),
        ("!tandem anlegen @anna:localhost @carla:localhost Wohnen", "noch kein Profil"),
        ("!tandem anlegen @anna:localhost @kleinstadtbot:localhost Wohnen", "Bot selbst"),
        ("!tandem anlegen anna @ben:localhost Wohnen", "keine Matrix-ID"),
    ],
)
async def test_validation_replies(pair, command, expected):
    text = await pair.text(command, sender=COORD)
    assert expected in text
    assert await pair.db.fetchone("SELECT 1 FROM tandems") is None
    assert not [r for r in pair.matrix.rooms.values() if r.name.startswith("Tandem")]


async def test_unknown_user_is_refused(pair):
    pair.matrix.known_users = {ANNA, COORD}
    text = await pair.text(CREATE, sender=COORD)
    assert "@ben:localhost finde ich auf dem Server nicht" in text


async def test_second_open_tandem_of_the_same_pair_is_refused(pair):
    await pair.say(CREATE, sender=COORD)
    text = await pair.text("!tandem anlegen @ben:localhost @anna:localhost Wohnen", sender=COORD)
    assert "schon ein Tandem" in text and "Nr. 1" in text
    assert (await pair.db.fetchone("SELECT count(*) FROM tandems"))[0] == 1


async def test_failed_invite_is_cleaned_up_and_reported(pair):
    calls = []

    async def broken_invite(room_id, user_id):
        calls.append(user_id)
        if user_id == BEN:
            raise MatrixError("no", "M_FORBIDDEN")
        pair.matrix.rooms[room_id].invited.add(user_id)

    pair.matrix.invite = broken_invite
    text = await pair.text(CREATE, sender=COORD)
    assert "nicht vollständig anlegen" in text and "aufgeräumt" in text
    assert calls.count(BEN) == 2  # retried once
    room = tandem_room(pair)
    assert room.invited == set()  # Anna's invite was taken back
    [space] = [r for r in pair.matrix.rooms.values() if r.space]
    assert space.state[("m.space.child", room.room_id)] == {}
    row = await pair.db.fetchone("SELECT state, room_id FROM tandems")
    assert tuple(row) == ("failed", room.room_id)  # the room is tracked, never orphaned
    # a failed attempt does not block a new one
    pair.matrix.invite = type(pair.matrix).invite.__get__(pair.matrix)
    assert "angelegt" in await pair.text(CREATE, sender=COORD)


async def test_info_pause_resume_end_in_the_room(pair):
    await pair.say(CREATE, sender=COORD)
    room = tandem_room(pair).room_id
    info = await pair.text("!tandem info", sender=ANNA, room_id=room, is_direct=False)
    assert "Wittenberge ⇄ Bad Berleburg" in info and "aktiv" in info and "Innenstadt und Leerstand" in info
    refused = await pair.text("!tandem pausieren", sender=CARLA, room_id=room, is_direct=False)
    assert "nur die beiden" in refused
    pause = await pair.text("!tandem pausieren", sender=BEN, room_id=room, is_direct=False)
    assert "Pause" in pause
    assert "nur bei einem aktiven" in await pair.text("!tandem pausieren", sender=BEN, room_id=room)
    pair.clock.advance(86400 * 3)
    info = await pair.text("!tandem info", sender=ANNA, room_id=room)
    assert "pausiert seit 1. Dezember 2026" in info
    assert "läuft wieder" in await pair.text("!tandem fortsetzen", sender=ANNA, room_id=room)
    end = await pair.say("!tandem beenden 1", sender=COORD)  # from the coordinator's DM
    assert any(m.room_id == room and "ist beendet" in m.body for m in end)
    states = [r[0] for r in await pair.db.fetchall("SELECT state FROM tandem_events ORDER BY id")]
    assert states == ["creating", "active", "paused", "active", "ended"]
    assert "Ein Tandem Nr. 7" in await pair.text("!tandem info 7", sender=COORD)
    assert "kein Tandem-Raum" in await pair.text("!tandem info", sender=ANNA)


async def test_list_filters_by_state_and_members_see_only_their_own(pair):
    await profiled(pair, (CARLA, "Zwönitz", ["Innenstadt"]))
    await pair.say(CREATE, sender=COORD)
    await pair.say("!tandem anlegen @carla:localhost @ben:localhost Innenstadt", sender=COORD)
    await pair.say("!tandem pausieren 2", sender=COORD)
    everything = await pair.text("!tandem liste", sender=COORD)
    assert "Nr. 1" in everything and "Nr. 2" in everything
    paused = await pair.text("!tandem liste pausiert", sender=COORD)
    assert "Nr. 2" in paused and "Nr. 1" not in paused
    own = await pair.text("!tandem liste", sender=ANNA)
    assert "Ihre Tandems" in own and "Nr. 1" in own and "Nr. 2" not in own
    assert "aktiv, pausiert, beendet" in await pair.text("!tandem liste kaputt", sender=COORD)


async def test_suggest_uses_profiles_and_history(pair):
    await profiled(pair, (CARLA, "Perleberg", ["Innenstadt"]))  # Perleberg: Prignitz like Wittenberge
    text = await pair.text("!tandem vorschlagen Innenstadt", sender=COORD)
    assert "Perleberg ⇄ Wittenberge" not in text and "Wittenberge ⇄ Perleberg" not in text
    assert "aus verschiedenen Kreisen" in text and "!tandem anlegen" in text
    assert "Bad Berleburg" in text
    await pair.say(CREATE, sender=COORD)
    assert "keine passenden Paare" in await pair.text("!tandem vorschlagen Innenstadt", sender=COORD)
    for user in (ANNA, BEN, CARLA):
        await pair.say("!profil themen hinzufügen Wohnen", sender=user)
    after = await pair.text("!tandem vorschlagen", sender=COORD)
    # Anna–Ben had a tandem, Anna–Carla share a Kreis: only Ben–Carla on Wohnen is left
    assert "(Wohnen)" in after and "Perleberg" in after and "Bad Berleburg" in after
    assert "Wittenberge" not in after
    assert "teilen außerdem: Innenstadt und Leerstand" in after
    assert "Koordinat" in await pair.text("!tandem vorschlagen", sender=ANNA)


async def test_space_is_created_once_and_reused(pair):
    hooks = [h for h in REGISTRY.startup if h.__module__ == "commands.academy_space"]
    assert hooks
    await hooks[0](pair.services)
    await hooks[0](pair.services)
    pair.services.cache.clear()
    await hooks[0](pair.services)
    spaces = [r for r in pair.matrix.rooms.values() if r.space]
    assert len(spaces) == 1 and spaces[0].name == "Kleinstadtakademie"


async def test_configured_space_alias_is_used(tmp_path):
    bot = await make_local_bot(tmp_path, space="#akademie:localhost")
    try:
        existing = await bot.matrix.create_room(name="Unser Space", space=True)
        bot.matrix.aliases["#akademie:localhost"] = existing
        await profiled(bot, (ANNA, "Wittenberge", []), (BEN, "Bad Berleburg", []))
        await bot.say(CREATE, sender=COORD)
        assert len([r for r in bot.matrix.rooms.values() if r.space]) == 1
        assert ("m.space.child", tandem_room(bot).room_id) in bot.matrix.rooms[existing].state
    finally:
        await bot.db.close()


# --- through a real Synapse -----------------------------------------------------------------


async def _http_get(url: str, token: str) -> dict:
    import asyncio
    import json
    import urllib.request

    def fetch() -> dict:
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    return await asyncio.to_thread(fetch)


async def _wait_invite(user, room_id: str) -> None:
    import asyncio

    for _ in range(150):
        if room_id in user.client.invited_rooms:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{user.user_id} got no invite to {room_id}")


@pytest.mark.synapse
async def test_tandem_topic_and_deletion_through_synapse(make_bot, make_user, synapse):
    from urllib.parse import quote

    coordinator, anna, ben = await make_user("koordination"), await make_user("anna"), await make_user("ben")
    # production settings: end-to-end encryption on, tandem rooms encrypted
    bot = await make_bot(coordinators=[coordinator.user_id])
    db, token = bot.bot.db, bot.bot.client.access_token
    rooms = {}
    for mayor, town in ((anna, "Wittenberge"), (ben, "Bad Berleburg")):
        rooms[mayor.user_id] = await mayor.dm(bot.user_id)
        assert town in (await mayor.ask(rooms[mayor.user_id], f"!profil ort {town}")).body
        await mayor.ask(rooms[mayor.user_id], "!profil themen hinzufügen Innenstadt")
    create = f"!tandem anlegen {anna.user_id} {ben.user_id} Innenstadt"
    refused = await anna.ask(rooms[anna.user_id], create)
    assert "Koordinat" in refused.body
    own = await coordinator.dm(bot.user_id)
    answer = await coordinator.ask(own, create, timeout=60)
    assert "angelegt" in answer.body, answer.body
    row = await db.fetchone("SELECT room_id, state FROM tandems")
    room_id, state = row["room_id"], row["state"]
    assert state == "active"
    await _wait_invite(anna, room_id)
    await _wait_invite(ben, room_id)
    await _wait_invite(coordinator, room_id)
    # the room is a child of the Space, and the mayors were invited to the Space with their profile
    space_id = (await db.fetchone("SELECT room_id FROM academy_space"))["room_id"]
    await _wait_invite(anna, space_id)
    hierarchy = await _http_get(f"{synapse.url}/_matrix/client/v1/rooms/{quote(space_id)}/hierarchy", token)
    children = {r["room_id"] for r in hierarchy["rooms"]}
    assert room_id in children and space_id in children
    # power levels: bot (room creator) 100 or privileged creator, coordinator 100, mayors 50
    levels = (await bot.bot.client.room_get_state_event(room_id, "m.room.power_levels")).content
    assert levels["users"][coordinator.user_id] == 100
    assert levels["users"][anna.user_id] == 50 and levels["users"][ben.user_id] == 50
    # the room is encrypted, and the invited mayor can decrypt the welcome, which names both towns
    encryption = await bot.bot.client.room_get_state_event(room_id, "m.room.encryption")
    assert encryption.content["algorithm"] == "m.megolm.v1.aes-sha2"
    await anna.client.join(room_id)
    welcome = await anna.wait_notice(room_id, lambda e: "Willkommen" in e.body, timeout=60)
    assert welcome.decrypted
    assert "Wittenberge" in welcome.body and "Bad Berleburg" in welcome.body
    # topic channel: create (coordinator), join (mayor)
    created = await coordinator.ask(own, "!thema anlegen Wohnen", timeout=60)
    assert "ist angelegt" in created.body
    channel = await db.fetchone("SELECT room_id, join_rule FROM topic_channels")
    joined = await ben.ask(rooms[ben.user_id], "!thema beitreten Wohnen")
    assert "eingeladen" in joined.body
    await _wait_invite(ben, channel["room_id"])
    rule = (await bot.bot.client.room_get_state_event(channel["room_id"], "m.room.join_rules")).content
    assert rule["join_rule"] == channel["join_rule"] == "restricted"
    assert rule["allow"] == [{"type": "m.room_membership", "room_id": space_id}]
    hierarchy = await _http_get(f"{synapse.url}/_matrix/client/v1/rooms/{quote(space_id)}/hierarchy", token)
    assert channel["room_id"] in {r["room_id"] for r in hierarchy["rooms"]}
    # deleting the profile leaves nothing of Ben in the database
    done = await ben.ask(rooms[ben.user_id], "!profil löschen bestätigen")
    assert "gelöscht" in done.body
    leftovers = []
    for (table,) in await db.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'"):
        for found in await db.fetchall(f'SELECT * FROM "{table}"'):
            if any(isinstance(v, str) and ben.user_id in v for v in tuple(found)):
                leftovers.append(table)
    assert leftovers == []


async def test_welcome_failure_keeps_the_tandem_and_tells_the_coordinator(pair):
    original = pair.matrix.send

    async def send(reply, request=None):
        if reply.template == "tandem_welcome":
            raise RuntimeError("room not synced yet")
        return await original(reply, request)

    pair.matrix.send = send
    text = await pair.text(CREATE, sender=COORD)
    assert "angelegt" in text and "Begrüßung konnte ich" in text
    assert (await pair.db.fetchone("SELECT state FROM tandems"))[0] == "active"


async def test_welcome_lists_modules_of_the_topic(pair):
    # the shipped library: two modules list the topic "innenstadt", the webinar does not
    messages = await pair.say(CREATE, sender=COORD)
    welcome = next(m.body for m in messages if m.room_id == tandem_room(pair).room_id)
    assert "Passende Lern- und Austauschmodule" in welcome
    assert "!modul kollegiales-coaching" in welcome and "!modul pop-up-labs" in welcome
    assert "!modul webinar" not in welcome
