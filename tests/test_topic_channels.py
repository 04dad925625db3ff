"""``!themen`` and ``!thema``: channels in the Space, restricted joins, invites, leaving."""

from commands.context import MatrixError

COORD = "@koordination:localhost"
ANNA = "@anna:localhost"


def channel_room(bot, name):
    [room] = [r for r in bot.matrix.rooms.values() if r.name == name]
    return room


async def test_create_restricted_channel_in_the_space(local_bot):
    messages = await local_bot.say("!thema anlegen wohnraum", sender=COORD)
    room = channel_room(local_bot, "Wohnen")
    [space] = [r for r in local_bot.matrix.rooms.values() if r.space]
    rule = room.state[("m.room.join_rules", "")]
    assert rule["join_rule"] == "restricted"
    assert rule["allow"] == [{"type": "m.room_membership", "room_id": space.room_id}]
    assert ("m.space.child", room.room_id) in space.state and ("m.space.parent", space.room_id) in room.state
    assert room.topic == "Wohnen in der Kleinstadt, auch im Wandel von Digitalisierung und Mobilität"
    assert COORD in room.invited
    assert any(m.room_id == room.room_id and "Willkommen im Themenkanal" in m.body for m in messages)
    assert "ist angelegt" in messages[-1].body
    assert "gibt es schon" in await local_bot.text("!thema anlegen Wohnen", sender=COORD)


async def test_free_channel_with_description_and_invite_fallback(local_bot):
    original = local_bot.matrix.create_room

    async def no_restricted(**kwargs):
        if any(e["type"] == "m.room.join_rules" for e in kwargs.get("initial_state") or []):
            raise MatrixError("unsupported", "M_UNSUPPORTED_ROOM_VERSION")
        return await original(**kwargs)

    local_bot.matrix.create_room = no_restricted
    text = await local_bot.text('!thema anlegen "Kultur im Ort" Austausch über Kulturarbeit', sender=COORD)
    assert "deshalb lade ich Interessierte ein" in text  # the invite-only fallback
    room = channel_room(local_bot, "Kultur im Ort")
    assert room.topic == "Austausch über Kulturarbeit" and ("m.room.join_rules", "") not in room.state
    row = await local_bot.db.fetchone("SELECT join_rule, topic_id FROM topic_channels")
    assert tuple(row) == ("invite", None)


async def test_member_cannot_create(local_bot):
    assert "Koordinat" in await local_bot.text("!thema anlegen Wohnen", sender=ANNA)
    assert not [r for r in local_bot.matrix.rooms.values() if r.name == "Wohnen"]


async def test_list_join_leave(local_bot):
    assert "noch keine Themenkanäle" in await local_bot.text("!themen", sender=ANNA)
    await local_bot.say("!thema anlegen Mobilität", sender=COORD)
    await local_bot.say("!thema anlegen Klima", sender=COORD)
    room = channel_room(local_bot, "Mobilität")
    text = await local_bot.text("!thema beitreten mobilitaet", sender=ANNA)
    assert "eingeladen" in text and ANNA in room.invited
    local_bot.matrix.join(room.room_id, ANNA)
    listing = await local_bot.text("!themen", sender=ANNA)
    assert "Mobilität (1 Mitglied)" in listing and "Klimaschutz und Klimaanpassung (0 Mitglieder)" in listing
    assert "ÖPNV" in listing and "Themen ohne eigenen Kanal" in listing and "Wohnen" in listing
    assert "bereits im Themenkanal" in await local_bot.text("!thema beitreten Mobilität", sender=ANNA)
    left = await local_bot.text("!thema verlassen verkehr", sender=ANNA)
    assert "nicht mehr im Themenkanal" in left and ANNA not in room.members
    assert "nicht im Themenkanal" in await local_bot.text("!thema verlassen Mobilität", sender=ANNA)


async def test_unknown_channel_names_the_existing(local_bot):
    await local_bot.say("!thema anlegen Wohnen", sender=COORD)
    text = await local_bot.text("!thema beitreten Raumfahrt", sender=ANNA)
    assert "finde ich nicht" in text and "!thema beitreten Wohnen" in text


async def test_thema_alone_shows_help(local_bot):
    text = await local_bot.text("!thema", sender=ANNA)
    assert "!thema beitreten" in text and "!thema verlassen" in text
