"""Topic channels and the academy Space through a real Synapse: ``!thema verlassen`` is a kick
on the server (also of a coordinator, and of an invitation not yet accepted); a configured Space
alias is used instead of a Space of the bot's own, one that does not resolve gives one Space of
the bot's own across restarts, and one the bot may not change leaves no half-made channel."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from tests.matrix_fixtures import assert_answers, unique

pytestmark = pytest.mark.synapse


def members_listed(listing: str, channel: str) -> int:
    """The member count ``!themen`` shows for ``channel``."""
    [line] = [line for line in listing.splitlines() if channel in line and "(" in line]
    return int(re.search(r"\((\d+)", line).group(1))


async def channel_of(bot, name: str) -> str:
    row = await bot.bot.db.fetchone("SELECT room_id FROM topic_channels WHERE name = ?", (name,))
    return row["room_id"]


async def spaces_of(client) -> set[str]:
    """The Spaces a client is joined to, from each room's create event on the server."""
    found = set()
    for room_id in (await client.joined_rooms()).rooms:
        create = await client.room_get_state_event(room_id, "m.room.create")
        if create.content.get("type") == "m.space":
            found.add(room_id)
    return found


async def test_leaving_a_channel_kicks_the_member_on_the_server(make_bot, make_user):
    coordinator, mayor = await make_user("koordination"), await make_user("mayor")
    bot = await make_bot(coordinators=[coordinator.user_id])
    own, dm = await coordinator.dm(bot.user_id), await mayor.dm(bot.user_id)
    await coordinator.ask(own, "!thema anlegen Wohnen", timeout=60)
    channel = await channel_of(bot, "Wohnen")
    await mayor.ask(dm, "!thema beitreten Wohnen")
    await mayor.join(channel)
    assert members_listed((await mayor.ask(dm, "!themen")).body, "Wohnen") == 1

    command = await mayor.send(dm, "!thema verlassen Wohnen")
    left = await mayor.wait_reply(dm, command)
    assert_answers(left, command, mayor.user_id)
    assert "Wohnen" in left.body
    # a kick by the bot, seen by everyone in the channel, not a leave the mayor did himself
    await coordinator.join(channel)
    kicked = await coordinator.member_event(channel, mayor.user_id)
    assert kicked["content"]["membership"] == "leave"
    assert kicked["sender"] == bot.user_id
    joined = (await coordinator.client.joined_members(channel)).members
    assert mayor.user_id not in [m.user_id for m in joined]
    assert members_listed((await mayor.ask(dm, "!themen")).body, "Wohnen") == 1  # the coordinator

    # asking again changes nothing on the server and says something else
    again = await mayor.ask(dm, "!thema verlassen Wohnen")
    assert again.body != left.body and "Wohnen" in again.body
    assert (await coordinator.member_event(channel, mayor.user_id))["event_id"] == kicked["event_id"]

    # a kicked member may come back
    await mayor.ask(dm, "!thema beitreten Wohnen")
    assert (await coordinator.member_event(channel, mayor.user_id))["content"]["membership"] == "invite"
    await mayor.join(channel)
    assert members_listed((await mayor.ask(dm, "!themen")).body, "Wohnen") == 2


async def test_a_coordinator_at_power_level_100_can_leave_a_channel_too(make_bot, make_user):
    # the creator of the channel gets power level 100 in it, like the bot; in room version 12
    # the bot is the room's creator and may still remove them
    coordinator = await make_user("koordination")
    bot = await make_bot(coordinators=[coordinator.user_id])
    own = await coordinator.dm(bot.user_id)
    await coordinator.ask(own, "!thema anlegen Mobilität", timeout=60)
    channel = await channel_of(bot, "Mobilität")
    await coordinator.join(channel)
    levels = await coordinator.state(channel, "m.room.power_levels")
    assert levels["users"][coordinator.user_id] == 100
    command = await coordinator.send(own, "!thema verlassen Mobilität")
    answer = await coordinator.wait_reply(own, command)
    assert_answers(answer, command, coordinator.user_id)
    members = await bot.bot.client.joined_members(channel)
    assert coordinator.user_id not in [m.user_id for m in members.members]


async def test_a_configured_space_alias_is_used_and_no_space_of_its_own_is_made(make_bot, make_user, synapse):
    lead, mayor = await make_user("leitung"), await make_user("mayor")
    bot_account = synapse.register(unique("bot"))
    localpart = unique("akademie")
    created = await lead.client.room_create(
        name="Kleinstadtakademie (Team)",
        alias=localpart,
        space=True,
        invite=[bot_account.user_id],
        power_level_override={"users": {bot_account.user_id: 100}},  # the lead creates: unlimited
    )
    space, alias = created.room_id, f"#{localpart}:{synapse.server_name}"
    bot = await make_bot(account=bot_account, space=alias, coordinators=[lead.user_id])
    await lead.wait_joined(space, bot.user_id)
    own, dm = await lead.dm(bot.user_id), await mayor.dm(bot.user_id)

    await lead.ask(own, "!thema anlegen Wohnen", timeout=60)
    channel = await channel_of(bot, "Wohnen")
    await lead.join(channel)  # the creator of a channel is invited to it
    # the channel hangs below the configured Space, in both directions
    assert await lead.state(space, "m.space.child", channel) == {"via": ["localhost"], "suggested": False}
    assert (await lead.state(channel, "m.space.parent", space))["via"] == ["localhost"]
    rule = await lead.state(channel, "m.room.join_rules")
    assert rule == {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": space}]}
    response = await lead.client.send(
        "GET",
        f"/_matrix/client/v1/rooms/{quote(space)}/hierarchy",
        headers={"Authorization": f"Bearer {lead.client.access_token}"},
    )
    assert channel in {r["room_id"] for r in (await response.json())["rooms"]}
    # linking a town invites the mayor to that Space, so the restricted channel is open to her
    await mayor.ask(dm, "!profil ort Wittenberge")
    assert (await lead.member_event(space, mayor.user_id))["content"]["membership"] == "invite"
    await mayor.join(space)
    joined = await mayor.client.join(channel)
    assert getattr(joined, "room_id", None) == channel, joined

    record = await bot.bot.db.fetchone("SELECT room_id, configured, created_by_bot FROM academy_space")
    assert tuple(record) == (space, alias, 0)
    assert await spaces_of(bot.bot.client) == {space}
    assert (await lead.client.room_resolve_alias(alias)).room_id == space


async def test_an_alias_that_does_not_resolve_gives_one_space_of_the_bots_own_across_restarts(
    make_bot, make_user, tmp_path
):
    coordinator = await make_user("koordination")
    settings = {"space": f"#{unique('gibtesnicht')}:localhost", "coordinators": [coordinator.user_id]}
    bot = await make_bot(data=tmp_path / "bot", **settings)
    own = await coordinator.dm(bot.user_id)
    await coordinator.ask(own, "!thema anlegen Wohnen", timeout=60)
    [space] = await spaces_of(bot.bot.client)
    record = await bot.bot.db.fetchone("SELECT room_id, created_by_bot FROM academy_space")
    assert tuple(record) == (space, 1)
    await bot.stop()

    again = await make_bot(account=bot.account, data=tmp_path / "bot", **settings)
    await coordinator.ask(own, "!thema anlegen Mobilität", timeout=60)
    assert await spaces_of(again.bot.client) == {space}
    for name in ("Wohnen", "Mobilität"):
        channel = await channel_of(again, name)
        child = await again.bot.client.room_get_state_event(space, "m.space.child", channel)
        assert child.content["via"] == ["localhost"]


async def test_leaving_a_channel_one_is_only_invited_to_withdraws_the_invitation(make_bot, make_user):
    coordinator, mayor = await make_user("koordination"), await make_user("mayor")
    bot = await make_bot(coordinators=[coordinator.user_id])
    own, dm = await coordinator.dm(bot.user_id), await mayor.dm(bot.user_id)
    await coordinator.ask(own, "!thema anlegen Wohnen", timeout=60)
    channel = await channel_of(bot, "Wohnen")
    await coordinator.join(channel)
    await mayor.ask(dm, "!thema beitreten Wohnen")
    assert (await coordinator.member_event(channel, mayor.user_id))["content"]["membership"] == "invite"
    # she changes her mind before accepting: the invitation must not stay in her client
    left = await mayor.ask(dm, "!thema verlassen Wohnen")
    withdrawn = await coordinator.member_event(channel, mayor.user_id)
    assert withdrawn["content"]["membership"] == "leave" and withdrawn["sender"] == bot.user_id
    again = await mayor.ask(dm, "!thema verlassen Wohnen")
    assert again.body != left.body  # now she is neither in the channel nor invited


async def test_a_configured_space_the_bot_may_not_change_leaves_no_channel_half_made(
    make_bot, make_user, synapse
):
    lead = await make_user("leitung")
    bot_account = synapse.register(unique("bot"))
    localpart = unique("akademie")
    created = await lead.client.room_create(name="Kleinstadtakademie", alias=localpart, space=True)
    space = created.room_id
    bot = await make_bot(account=bot_account, space=f"#{localpart}:localhost", coordinators=[lead.user_id])
    own = await lead.dm(bot.user_id)
    rooms = set((await bot.bot.client.joined_rooms()).rooms)
    await lead.ask(own, "!thema anlegen Wohnen", timeout=60)  # the bot is not in the Space yet
    [made] = set((await bot.bot.client.joined_rooms()).rooms) - rooms
    assert await bot.bot.db.fetchone("SELECT 1 FROM topic_channels") is None
    assert await lead.state(space, "m.space.child", made) is None

    # the operator invites the bot to the Space with the power to change it; the retry
    # completes the same room instead of answering that the channel exists
    levels = await lead.state(space, "m.room.power_levels")
    levels["users"][bot.user_id] = 100
    await lead.client.room_put_state(space, "m.room.power_levels", levels)
    await lead.client.room_invite(space, bot.user_id)
    await lead.wait_joined(space, bot.user_id)
    done = await lead.ask(own, "!thema anlegen Wohnen", timeout=60)
    assert "Wohnen" in done.body
    assert await channel_of(bot, "Wohnen") == made
    assert set((await bot.bot.client.joined_rooms()).rooms) - rooms == {made, space}
    assert await lead.state(space, "m.space.child", made) == {"via": ["localhost"], "suggested": False}
    await lead.join(made)  # invited as the channel's creator
