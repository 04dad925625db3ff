"""Topic channels: one room per urban-development topic where all interested towns meet.

``!topics`` / ``!themen`` lists them; ``!topic`` / ``!thema`` creates (coordinators), joins and
leaves. Channels are children of the academy Space with join rule ``restricted`` to Space
members where the homeserver supports it, else ``invite``; the bot invites on ``!thema beitreten``.
"""

from __future__ import annotations

import logging
from typing import Any

from commands.academy_space import add_child, ensure_space, parent_state, room_power_levels, server_of
from commands.context import Context, MatrixError, Reply, Role
from commands.registry import Arg, command
from config.catalogs import N_, NP_
from config.topics import default_topics, fold
from storage.community import TopicChannel, TopicChannelRepository

log = logging.getLogger(__name__)


@command(
    "topics",
    aliases={"de": ["themen"], "en": ["topics"]},
    group="community",
    summary=N_("Zeigt die Themenkanäle."),
    examples=["themen"],
)
async def topics_list(ctx: Context) -> None:
    channels = await TopicChannelRepository(ctx.db).all()
    rows = []
    for channel in channels:
        try:
            members = len(
                [
                    m
                    for m in await ctx.services.matrix.joined_members(channel.room_id)
                    if m != ctx.services.matrix.user_id
                ]
            )
        except MatrixError:
            members = None
        rows.append({"name": channel.name, "description": channel.description, "members": members})
    without = [t.label(ctx.locale) for t in default_topics() if t.id not in {c.topic_id for c in channels}]
    await ctx.reply("topic_list", channels=rows, without_channel=without)


# Only subcommands: "!thema" alone shows its help.
topic_cmd = command(
    "topic",
    aliases={"de": ["thema"], "en": ["topic"]},
    group="community",
    summary=N_("Themenkanäle anlegen, ihnen beitreten und sie verlassen."),
    examples=[N_("thema beitreten Wohnen"), N_("thema verlassen Wohnen")],
)(None)


async def find_channel(ctx: Context, name: str) -> TopicChannel | None:
    repo = TopicChannelRepository(ctx.db)
    topic = default_topics().match(name)
    found = await repo.find(name_key=fold(name), topic_id=topic.id if topic else None)
    return found


@topic_cmd.subcommand(
    "create",
    audited=True,
    aliases={"de": ["anlegen", "erstellen", "neu"], "en": ["create"]},
    role=Role.COORDINATOR,
    args=[
        Arg("name", label=NP_("usage", "Name")),
        Arg("description", "text", required=False, label=NP_("usage", "Beschreibung")),
    ],
    summary=N_("Legt einen Themenkanal an."),
    examples=[N_("thema anlegen Wohnen"), N_('thema anlegen "Ländliche Kultur" Austausch über Kulturarbeit')],
)
async def topic_create(ctx: Context, name: str, description: str | None = None) -> None:
    topic = default_topics().match(name)
    label = topic.label(ctx.locale) if topic else name.strip()
    description = (description or (topic.description.get(ctx.locale, "") if topic else "")).strip()
    repo = TopicChannelRepository(ctx.db)
    existing = await repo.find(name_key=fold(label), topic_id=topic.id if topic else None)
    if existing:
        await ctx.reply("topic_exists", name=existing.name)
        return
    services = ctx.services
    space_id = await ensure_space(services)
    via = server_of(services.matrix.user_id)
    base_state = [parent_state(space_id, via)]
    restricted = {
        "type": "m.room.join_rules",
        "state_key": "",
        "content": {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": space_id}]},
    }
    join_rule = "restricted"
    kwargs: dict[str, Any] = dict(
        name=label,
        topic=description or None,
        preset="private_chat",
        power_levels=room_power_levels(services, requester=ctx.sender),
    )
    key = f"topic-{fold(label)}"  # a retry after a lost answer gets the same room, not a second
    try:
        room_id = await services.matrix.create_room(
            initial_state=[*base_state, restricted], txn_key=key, **kwargs
        )
    except MatrixError as exc:  # homeserver or room version without restricted joins
        log.warning("restricted topic channel refused (%s); falling back to invite", exc)
        join_rule = "invite"
        room_id = await services.matrix.create_room(
            initial_state=base_state, txn_key=f"{key}-invite", **kwargs
        )
    # recorded only once it is in the Space and the creator invited: a failed step leaves no
    # record that would block the retry, and the retry gets the same room (``txn_key``)
    await add_child(services, room_id, space_id)
    await services.matrix.invite(room_id, ctx.sender)
    channel = await repo.add(
        room_id=room_id,
        name=label,
        name_key=fold(label),
        topic_id=topic.id if topic else None,
        description=description,
        join_rule=join_rule,
        created_by=ctx.sender,
        now=services.clock.now(),
    )
    await ctx.emit(
        Reply(
            "topic_welcome",
            {"name": channel.name, "description": description},
            room_id=room_id,
            key=f"topic-welcome-{channel.id}",
        )
    )
    await ctx.reply("topic_created", name=channel.name, restricted=join_rule == "restricted")


async def channel_or_explain(ctx: Context, name: str):
    """The channel ``name`` means, or None after telling the sender which channels exist."""
    channel = await find_channel(ctx, name)
    if channel is None:
        await ctx.reply(
            "topic_not_found", query=name, names=[c.name for c in await TopicChannelRepository(ctx.db).all()]
        )
    return channel


@topic_cmd.subcommand(
    "join",
    aliases={"de": ["beitreten", "mitmachen"], "en": ["join"]},
    args=[Arg("name", "text", label=NP_("usage", "Thema"))],
    summary=N_("Lädt Sie in einen Themenkanal ein."),
    examples=[N_("thema beitreten Wohnen")],
)
async def topic_join(ctx: Context, name: str) -> None:
    channel = await channel_or_explain(ctx, name)
    if channel is None:
        return
    members = await ctx.services.matrix.joined_members(channel.room_id)
    if ctx.sender in members:
        await ctx.reply("topic_joined", name=channel.name, already=True)
        return
    await ctx.services.matrix.invite(channel.room_id, ctx.sender)
    await ctx.reply("topic_joined", name=channel.name, already=False)


@topic_cmd.subcommand(
    "leave",
    aliases={"de": ["verlassen", "austreten"], "en": ["leave"]},
    args=[Arg("name", "text", label=NP_("usage", "Thema"))],
    summary=N_("Nimmt Sie aus einem Themenkanal heraus."),
    examples=[N_("thema verlassen Wohnen")],
)
async def topic_leave(ctx: Context, name: str) -> None:
    channel = await channel_or_explain(ctx, name)
    if channel is None:
        return
    matrix = ctx.services.matrix
    if ctx.sender not in await matrix.joined_members(channel.room_id):
        # an invitation not yet accepted is withdrawn, or it would stay in the person's client
        member = await matrix.get_state(channel.room_id, "m.room.member", ctx.sender)
        if (member or {}).get("membership") != "invite":
            await ctx.reply("topic_left", name=channel.name, was_member=False)
            return
    await matrix.kick(channel.room_id, ctx.sender, reason=ctx.invocation())
    await ctx.reply("topic_left", name=channel.name, was_member=True)
