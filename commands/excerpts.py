"""``!auszug`` / ``!excerpt``: module excerpts posted into topic channels on a schedule.

Coordinators plan, per topic channel, a rhythm such as ``wöchentlich dienstags 9 Uhr`` or
``weekly tuesday 09:00``. Each occurrence posts the excerpt of the next module that matches the
channel's topic, without repeats until every matching module was shown, then it starts over.
The schedules are the scheduling engine's (kind ``module_excerpt``): exactly once, calendar
rules in the bot's zone, late within the grace window after downtime.
"""

from __future__ import annotations

import logging

from commands.context import Context, Reply, Role, Services
from commands.faq_search import library
from commands.modules import _module_data
from commands.parsing import QuoteError, split_words
from commands.registry import Arg, command
from commands.registry import scheduled as declare_scheduled
from commands.rhythm import Rhythm, RhythmError, describe, parse_rhythm
from commands.scheduling import Occurrence
from config.catalogs import N_, NP_, translate
from config.topics import default_topics, fold
from storage.community import TopicChannel, TopicChannelRepository
from storage.schedules import Schedule, ScheduleRepository

log = logging.getLogger(__name__)
KIND = "module_excerpt"
EXAMPLE = N_("wöchentlich dienstags 9 Uhr")  # rhythm words the parser reads (commands.rhythm)


async def _channel_modules(services: Services, channel: TopicChannel) -> list:
    modules = (await library(services)).modules(services.settings.locale)
    if channel.topic_id:
        return [m for m in modules if channel.topic_id in m.topics]
    return []


@declare_scheduled(KIND)
async def post_excerpt(services: Services, occurrence: Occurrence) -> str | None:
    channel = await TopicChannelRepository(services.db).by_room(occurrence.schedule.subject)
    if channel is None:  # the channel is gone: so is its plan
        await _end(services, occurrence.schedule)
        return None
    modules = await _channel_modules(services, channel)
    if not modules:
        return None
    shown: list[str] = list(occurrence.schedule.data.get("shown", []))
    remaining = [m for m in modules if m.id not in shown]
    if not remaining:  # every matching module was shown: start over
        shown, remaining = [], modules
    module = remaining[0]
    event_id = await services.matrix.send(
        Reply(
            "module_excerpt",
            {
                "module": _module_data(module, services.settings.locale),
                "channel": channel.name,
                "full": False,
            },
            room_id=channel.room_id,
            key=occurrence.key,
        )
    )
    assert services.schedules is not None
    await services.schedules.update_data(occurrence.schedule, {"shown": [*shown, module.id]})
    return event_id


async def _end(services: Services, schedule: Schedule) -> None:
    if services.schedules is not None:
        await services.schedules.end(schedule)


async def _find_channel(ctx: Context, name: str) -> TopicChannel | None:
    repo = TopicChannelRepository(ctx.db)
    channel = await repo.find(name_key=fold(name))
    if channel is None:
        topic = default_topics().match(name)
        channel = await repo.find(topic_id=topic.id) if topic else None
    return channel


async def _plans(services: Services) -> list[dict]:
    channels = {c.room_id: c for c in await TopicChannelRepository(services.db).all()}
    rows = []
    for schedule in await ScheduleRepository(services.db).of_kind(KIND):
        channel = channels.get(schedule.subject)
        rows.append(
            {
                "id": schedule.id,
                "channel": channel.name if channel else schedule.subject,
                "rhythm": describe(Rhythm.from_json(schedule.rhythm)),
                "next": schedule.next_due,
                "shown": len(schedule.data.get("shown", [])),
            }
        )
    return rows


excerpt_cmd = command(
    "excerpt",
    aliases={"de": ["auszug", "auszüge"], "en": ["excerpt", "excerpts"]},
    group="content",
    role=Role.COORDINATOR,
    summary=N_("Plant Modul-Auszüge für Themenkanäle."),
    examples=[
        N_("auszug planen Innenstadt wöchentlich dienstags 9 Uhr"),
        N_("auszug liste"),
        N_("auszug stoppen 2"),
    ],
)(None)


@excerpt_cmd.subcommand(
    "plan",
    audited=True,
    aliases={"de": ["planen"], "en": ["plan", "schedule"]},
    args=[Arg("words", "text", label=NP_("usage", "Kanal Rhythmus"))],
    summary=N_("Stellt regelmäßig den Auszug des nächsten passenden Moduls in einen Themenkanal."),
    examples=[
        N_("auszug planen Innenstadt wöchentlich dienstags 9 Uhr"),
        N_('auszug planen "Klima und Energie" alle 2 Wochen donnerstags 14 Uhr'),
    ],
)
async def excerpt_plan(ctx: Context, words: str) -> None:
    channel = await TopicChannelRepository(ctx.db).by_room(ctx.room_id)
    if channel is not None:  # in the channel itself: all words are the rhythm
        rhythm_text = words
    else:
        try:
            parts = split_words(words)
        except QuoteError:
            parts = words.split()
        name = parts[0] if parts else ""
        rhythm_text = " ".join(parts[1:])
        channel = await _find_channel(ctx, name)
    if channel is None:
        channels = [c.name for c in await TopicChannelRepository(ctx.db).all()]
        await ctx.reply("excerpt_problem", problem="no_channel", value=name, channels=channels)
        return
    try:
        rhythm = parse_rhythm(rhythm_text)
    except RhythmError as exc:
        await ctx.reply(
            "excerpt_problem",
            problem="bad_rhythm",
            reason=exc.problem,
            detail=exc.detail,
            value=rhythm_text,
            example=translate(ctx.locale, EXAMPLE),
        )
        return
    if not await _channel_modules(ctx.services, channel):
        await ctx.reply("excerpt_problem", problem="no_modules", channel=channel.name)
        return
    assert ctx.services.schedules is not None
    schedule = await ctx.services.schedules.add(KIND, channel.room_id, rhythm, created_by=ctx.sender)
    await ctx.reply(
        "excerpt_planned",
        id=schedule.id,
        channel=channel.name,
        rhythm=describe(Rhythm.from_json(schedule.rhythm)),
        next=schedule.next_due,
    )


@excerpt_cmd.subcommand(
    "list",
    aliases={"de": ["liste"], "en": ["list"]},
    summary=N_("Zeigt alle geplanten Auszüge."),
    examples=[N_("auszug liste")],
)
async def excerpt_list(ctx: Context) -> None:
    await ctx.reply("excerpt_list", plans=await _plans(ctx.services))


@excerpt_cmd.subcommand(
    "cancel",
    audited=True,
    aliases={"de": ["stoppen", "beenden"], "en": ["cancel", "stop"]},
    args=[Arg("number", "int", label=NP_("usage", "Nummer"))],
    summary=N_("Beendet einen geplanten Auszug."),
    examples=[N_("auszug stoppen 2")],
)
async def excerpt_cancel(ctx: Context, number: int) -> None:
    schedule = await ScheduleRepository(ctx.db).get(number)
    if schedule is None or schedule.kind != KIND or schedule.state == "ended":
        await ctx.reply("excerpt_problem", problem="no_plan", value=number)
        return
    await _end(ctx.services, schedule)
    channel = await TopicChannelRepository(ctx.db).by_room(schedule.subject)
    await ctx.reply("excerpt_cancelled", id=number, channel=channel.name if channel else schedule.subject)
