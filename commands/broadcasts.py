"""``!rundschreiben`` / ``!broadcast``: one announcement to many rooms, for coordinators.

Compose with the audience (and options, and a time) on the command's line and the Markdown text
on the lines after it. The bot answers with a preview rendered exactly as recipients will see it
(the same template), the number of recipients per kind, and a number. The author confirms with
``!rundschreiben senden <Nr.>`` or a ✅ on the preview, or cancels with ``abbrechen`` or ❌;
a draft not confirmed within ``broadcasts.draft_hours`` expires. A broadcast with a time is a
one-off schedule of the scheduling engine (kind ``broadcast``), with its exactly-once rules.

Audiences: all active tandems (paused and ended ones only when asked for), all topic channels,
one topic channel by name, every mayor with a profile (a direct message each: the direct chat
the bot has with the person, else a new one), or all of these. Sending, status, retry of failed
rooms, correction (``m.replace`` in every room) and retraction (redaction in every room) run
through the outbox in ``commands.broadcast_delivery``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from commands.broadcast_delivery import announcement, deliveries, resume_unfinished
from commands.context import Context, Reaction, Reply, Role, Services
from commands.moments import MomentError, epoch_now, local_moment, looks_like_moment, parse_moment
from commands.parsing import QuoteError, split_words
from commands.registry import Arg, command, on_reaction, on_startup
from commands.registry import scheduled as declare_scheduled
from commands.rhythm import Rhythm
from commands.scheduling import Occurrence
from config.catalogs import N_, NP_
from config.topics import default_topics, fold
from storage.broadcasts import Broadcast, BroadcastRepository, Recipient
from storage.community import ProfileRepository, TandemRepository, TopicChannel, TopicChannelRepository
from storage.schedules import ScheduleRepository

log = logging.getLogger(__name__)

KIND = "broadcast"
MAX_EVENT_BYTES = 65_536
KINDS = ("tandem", "channel", "mayor")
AUDIENCE_WORDS = {
    "tandems": ("tandem",), "tandem": ("tandem",),
    "themen": ("channel",), "themenkanäle": ("channel",), "themenkanaele": ("channel",),
    "kanäle": ("channel",), "kanaele": ("channel",), "channels": ("channel",), "topics": ("channel",),
    "bürgermeister": ("mayor",), "buergermeister": ("mayor",), "bürgermeisterinnen": ("mayor",),
    "buergermeisterinnen": ("mayor",), "profile": ("mayor",), "mayors": ("mayor",),
    "alle": KINDS, "all": KINDS, "everyone": KINDS,
}  # fmt: skip
ONE_CHANNEL_WORDS = ("thema", "kanal", "themenkanal", "channel", "topic")
OPTION_WORDS = {
    "pausierte": "paused", "pausierten": "paused", "paused": "paused",
    "beendete": "ended", "beendeten": "ended", "ended": "ended",
    "anheften": "pin", "angeheftet": "pin", "pin": "pin", "pinned": "pin",
}  # fmt: skip
FILLER = {"an", "alle", "mit", "und", "auch", "samt", "sowie", "to", "with", "and", "including", "also"}
CONFIRM = "✅"
CANCEL = "❌"
# variation selectors that clients add to the same emoji
EMOJI_NOISE = dict.fromkeys(map(ord, "\ufe0e\ufe0f"))


# --- reading the command line -------------------------------------------------------------------


class BroadcastProblem(Exception):
    """Bad input: ``problem`` is a key of the ``broadcast_problem`` template."""

    def __init__(self, problem: str, **detail: Any):
        super().__init__(problem)
        self.problem = problem
        self.detail = detail


@dataclass
class Audience:
    kinds: list[str] = field(default_factory=list)
    channel: TopicChannel | None = None  # one channel by name
    paused: bool = False
    ended: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "kinds": self.kinds,
            "channel_id": self.channel.id if self.channel else None,
            "channel": self.channel.name if self.channel else None,
            "paused": self.paused,
            "ended": self.ended,
        }


@dataclass
class Order:
    """What the command's line asks for: audience, options, and when."""

    audience: Audience
    pin: bool = False
    send_at: datetime | None = None


async def _channel_named(services: Services, words: list[str]) -> tuple[TopicChannel | None, int]:
    """The topic channel leading ``words`` name, and how many words that took: the longest run
    that is a channel's name, else the shortest that matches a topic (so that a time after the
    name stays a time: ``thema Innenstadt am 3.12. um 9 Uhr``)."""
    repo = TopicChannelRepository(services.db)
    for length in range(len(words), 0, -1):
        found = await repo.find(name_key=fold(" ".join(words[:length])))
        if found is not None:
            return found, length
    for length in range(1, len(words) + 1):
        topic = default_topics().match(" ".join(words[:length]))
        found = await repo.find(topic_id=topic.id) if topic else None
        if found is not None:
            return found, length
    return None, 0


async def read_order(services: Services, words: list[str]) -> Order:
    """Audience words, options and a time, in this order; raises ``BroadcastProblem``."""
    audience = Audience()
    pin = everyone = every_channel = False
    i = 0
    while i < len(words):
        word = words[i].lower().rstrip(",")
        if word in AUDIENCE_WORDS and AUDIENCE_WORDS[word] == KINDS:
            everyone = True  # "alle" alone; "an alle Tandems" names the tandems
        elif word in AUDIENCE_WORDS:
            audience.kinds += [k for k in AUDIENCE_WORDS[word] if k not in audience.kinds]
            every_channel = every_channel or "channel" in AUDIENCE_WORDS[word]
        elif word in ONE_CHANNEL_WORDS:
            rest = words[i + 1 :]
            if not rest:
                raise BroadcastProblem("no_channel_name", channels=await _channel_names(services))
            channel, used = await _channel_named(services, rest)
            if channel is None:
                raise BroadcastProblem(
                    "unknown_channel", value=rest[0], channels=await _channel_names(services)
                )
            audience.channel = channel
            if "channel" not in audience.kinds:
                audience.kinds.append("channel")
            i += used
        elif word in OPTION_WORDS:
            option = OPTION_WORDS[word]
            if option == "pin":
                pin = True
            else:
                setattr(audience, option, True)
        elif word in FILLER:
            pass
        elif looks_like_moment(word):
            try:
                moment = parse_moment(" ".join(words[i:]), services.clock.now(), services.settings.tz)
            except MomentError as exc:
                raise BroadcastProblem(
                    f"time_{exc.problem}", value=" ".join(words[i:]), **exc.detail
                ) from exc
            return Order(_checked(audience, everyone, every_channel), pin, moment)
        else:
            raise BroadcastProblem("unknown_word", value=words[i])
        i += 1
    return Order(_checked(audience, everyone, every_channel), pin, None)


def _checked(audience: Audience, everyone: bool, every_channel: bool) -> Audience:
    if everyone and not audience.kinds:
        audience.kinds = list(KINDS)
        every_channel = True
    if not audience.kinds:
        raise BroadcastProblem("no_audience")
    if every_channel:
        audience.channel = None  # all channels, one of them named or not
    if (audience.paused or audience.ended) and "tandem" not in audience.kinds:
        raise BroadcastProblem("states_without_tandems")
    return audience


async def _channel_names(services: Services) -> list[str]:
    return [c.name for c in await TopicChannelRepository(services.db).all()]


# --- recipients ---------------------------------------------------------------------------------


async def recipients(services: Services, audience: dict[str, Any]) -> list[Recipient]:
    """The rooms ``audience`` names now, in a stable order (tandems, channels, mayors)."""
    found: list[Recipient] = []
    kinds = audience.get("kinds", [])
    if "tandem" in kinds:
        states = {"active"} | ({"paused"} if audience.get("paused") else set())
        states |= {"ended"} if audience.get("ended") else set()
        for t in await TandemRepository(services.db).list():
            if t.state in states and t.room_id:
                found.append(Recipient("tandem", str(t.id), f"{t.town_a} ⇄ {t.town_b}", t.room_id))
    if "channel" in kinds:
        for c in await TopicChannelRepository(services.db).all():
            if audience.get("channel_id") in (None, c.id):
                found.append(Recipient("channel", str(c.id), c.name, c.room_id))
    if "mayor" in kinds:
        for p in await ProfileRepository(services.db).all_with_topics():
            found.append(Recipient("mayor", p.user_id, p.town, None))
    return found


def per_kind(found: list[Recipient]) -> dict[str, int]:
    counts = dict.fromkeys(KINDS, 0)
    for r in found:
        counts[r.kind] += 1
    return {k: v for k, v in counts.items() if v}


# --- what the coordinator sees ----------------------------------------------------------------


def describe(services: Services, b: Broadcast) -> dict[str, Any]:
    return {
        "id": b.id,
        "author": b.author,
        "audience": b.audience,
        "state": b.state,
        "pin": b.pin,
        "send_at": local_moment(services, b.send_at),
        "created_at": local_moment(services, b.created_at),
        "expires_at": local_moment(services, b.expires_at),
        "started_at": local_moment(services, b.started_at),
        "finished_at": local_moment(services, b.finished_at),
        "version": b.version,
        "retracted": b.retracted_at is not None,
    }


def _cut(size: int) -> int:
    """How many per cent of the text to cut (at least) so that the event fits."""
    return -(-(size - MAX_EVENT_BYTES) * 100 // size)


async def _problem(ctx: Context, problem: BroadcastProblem) -> None:
    top = broadcast_cmd.invocation(ctx.prefix, ctx.locale, ctx.typed[:1])
    await ctx.reply("broadcast_problem", problem=problem.problem, detail=problem.detail, invocation=top)


# --- commands -----------------------------------------------------------------------------------


async def compose(ctx: Context, audience: str, text: str | None = None) -> None:
    head = ctx.request.body.lstrip().partition("\n")[0]
    try:
        words = split_words(head)[len(ctx.typed) :]
    except QuoteError:
        words = audience.split()
    try:
        order = await read_order(ctx.services, words)
        if not text or not text.strip():
            raise BroadcastProblem("empty")
        found = await recipients(ctx.services, order.audience.to_json())
        if not found:
            raise BroadcastProblem("no_recipients", audience=order.audience.to_json())
        size = ctx.services.matrix.event_bytes(Reply("broadcast", {"text": text}))
        if size > MAX_EVENT_BYTES:
            raise BroadcastProblem("too_large", size=size, limit=MAX_EVENT_BYTES, share=_cut(size))
    except BroadcastProblem as problem:
        await _problem(ctx, problem)
        return
    services = ctx.services
    now = epoch_now(services)
    repo = BroadcastRepository(ctx.db)
    b = await repo.create(
        author=ctx.sender,
        audience=order.audience.to_json(),
        text=text,
        pin=order.pin,
        origin_room=ctx.room_id,
        send_at=int(order.send_at.timestamp()) if order.send_at else None,
        now=now,
        expires_at=now + int(services.settings.broadcasts.draft_hours * 3600),
    )
    preview_id = await ctx.reply(
        "broadcast_preview",
        broadcast=describe(services, b),
        counts=per_kind(found),
        total=len(found),
        message=announcement(b),
    )
    if preview_id:
        await repo.update(b.id, preview_event_id=preview_id)
        for emoji in (CONFIRM, CANCEL):  # one tap to answer
            try:
                await services.matrix.react(
                    ctx.room_id, preview_id, emoji, key=f"broadcast-{b.id}-offer-{emoji}"
                )
            except Exception:  # the offer is a convenience; the commands work without it
                log.warning("broadcast %d: could not offer %s on the preview", b.id, emoji)


broadcast_cmd = command(
    "broadcast",
    aliases={"de": ["rundschreiben"], "en": ["broadcast"]},
    group="broadcasts",
    role=Role.COORDINATOR,
    audited=True,  # every subcommand too: who composed, sent, changed or took back what
    args=[
        Arg("audience", "text", label=NP_("usage", "Verteiler [Zeit]")),
        Arg("text", "message", required=False, label=NP_("usage", "Text")),
    ],
    summary=N_("Eine Mitteilung an viele Räume: Vorschau, Bestätigung, Versand (Koordination)."),
    help=N_(
        "In der ersten Zeile steht der Verteiler: tandems (laufende Tandems; mit pausierte oder "
        "beendete auch diese), themen (alle Themenkanäle), thema <Name> (ein Themenkanal), "
        "bürgermeister (alle mit Profil, je als Direktnachricht) oder alle. Dahinter optional "
        "anheften (in Themenkanälen) und eine Zeit. Ab der zweiten Zeile (↵: in Element "
        "Umschalt+Eingabe) folgt der Text in Markdown. Der Bot zeigt eine Vorschau mit Nummer; "
        "Sie bestätigen mit ✅ oder „senden“."
    ),
    examples=[
        N_("rundschreiben tandems ↵ Die Transferwerkstatt ist am **10. Dezember**."),
        N_("rundschreiben thema Innenstadt anheften am 3.12. um 9 Uhr ↵ Anmeldung bis Freitag."),
        N_("rundschreiben senden 7"),
    ],
)(compose)


def _number_arg() -> Arg:
    return Arg("number", "int", label=NP_("usage", "Nr."))


async def _find(ctx: Context, number: int) -> Broadcast | None:
    b = await BroadcastRepository(ctx.db).get(number)
    if b is None:
        await ctx.reply("broadcast_problem", problem="no_such", detail={"value": number})
    return b


async def confirm(services: Services, b: Broadcast, when: datetime | None = None) -> str:
    """Confirm draft ``b``: schedule it or start sending. Returns what happened: ``scheduled``,
    ``sending``, ``expired``, ``past`` or ``not_draft``."""
    repo = BroadcastRepository(services.db)
    now = epoch_now(services)
    if b.state != "draft":
        return "not_draft"
    if b.expires_at <= now:
        await repo.move(b.id, ["draft"], "expired")
        return "expired"
    send_at = int(when.timestamp()) if when else b.send_at
    if send_at is not None:
        if send_at <= now:
            return "past"
        if not await repo.move(b.id, ["draft"], "scheduled", confirmed_at=now, send_at=send_at):
            return "not_draft"
        await _schedule(services, b, send_at)
        return "scheduled"
    return "sending" if await begin(services, b, ["draft"]) else "not_draft"


async def _schedule(services: Services, b: Broadcast, send_at: int) -> None:
    """A one-off of the scheduling engine at ``send_at`` (kind ``broadcast``)."""
    assert services.schedules is not None, "scheduled work runs in every transport"
    local = datetime.fromtimestamp(send_at, UTC).astimezone(services.settings.tz)
    schedule = await services.schedules.add(
        KIND,
        str(b.id),
        Rhythm("once", hour=local.hour, minute=local.minute, at=local.replace(tzinfo=None).isoformat()),
        not_before=local,
        created_by=b.author,
    )
    await BroadcastRepository(services.db).update(b.id, schedule_id=schedule.id)


async def begin(services: Services, b: Broadcast, before: list[str]) -> bool:
    """Write the outbox for the audience as it is now and start sending."""
    repo = BroadcastRepository(services.db)
    found = await recipients(services, b.audience)
    if not await repo.start(b.id, before, found, epoch_now(services)):
        return False
    await repo.update(b.id, confirmed_at=b.confirmed_at or epoch_now(services))
    deliveries(services).start(b.id)
    return True


async def cancel(services: Services, b: Broadcast) -> str:
    repo = BroadcastRepository(services.db)
    if b.state == "draft" and await repo.move(b.id, ["draft"], "cancelled"):
        return "cancelled"
    if b.state == "scheduled" and await repo.move(b.id, ["scheduled"], "cancelled"):
        schedule = await ScheduleRepository(services.db).get(b.schedule_id) if b.schedule_id else None
        if schedule is not None and services.schedules is not None:
            await services.schedules.end(schedule)
        return "cancelled"
    return "already_sending" if b.state == "sending" else "not_open"


@broadcast_cmd.subcommand(
    "send",
    aliases={"de": ["senden", "bestätigen", "ok"], "en": ["send", "confirm"]},
    args=[_number_arg(), Arg("when", "text", required=False, label=NP_("usage", "Zeit"))],
    summary=N_("Bestätigt ein Rundschreiben: sendet es jetzt oder zur genannten Zeit."),
    examples=[N_("rundschreiben senden 7"), N_("rundschreiben senden 7 am 3.12. um 9 Uhr")],
)
async def broadcast_send(ctx: Context, number: int, when: str | None = None) -> None:
    b = await _find(ctx, number)
    if b is None:
        return
    if b.author != ctx.sender:
        await ctx.reply("broadcast_problem", problem="not_author", detail={"value": b.id, "author": b.author})
        return
    moment = None
    if when:
        try:
            moment = parse_moment(when, ctx.services.clock.now(), ctx.settings.tz)
        except MomentError as exc:
            await _problem(ctx, BroadcastProblem(f"time_{exc.problem}", value=when, **exc.detail))
            return
    outcome = await confirm(ctx.services, b, moment)
    if outcome == "sending":
        return  # the progress message, posted at once, is the answer
    fresh = await BroadcastRepository(ctx.db).get(b.id)
    await ctx.reply("broadcast_changed", outcome=outcome, broadcast=describe(ctx.services, fresh or b))


@broadcast_cmd.subcommand(
    "cancel",
    aliases={"de": ["abbrechen", "absagen"], "en": ["cancel"]},
    args=[_number_arg()],
    summary=N_("Verwirft einen Entwurf oder sagt ein geplantes Rundschreiben ab."),
    examples=[N_("rundschreiben abbrechen 7")],
)
async def broadcast_cancel(ctx: Context, number: int) -> None:
    b = await _find(ctx, number)
    if b is None:
        return
    if b.state == "draft" and b.author != ctx.sender:
        await ctx.reply("broadcast_problem", problem="not_author", detail={"value": b.id, "author": b.author})
        return
    outcome = await cancel(ctx.services, b)
    fresh = await BroadcastRepository(ctx.db).get(b.id)
    await ctx.reply("broadcast_changed", outcome=outcome, broadcast=describe(ctx.services, fresh or b))


@broadcast_cmd.subcommand(
    "status",
    aliases={"de": ["status", "stand"], "en": ["status"]},
    args=[_number_arg()],
    summary=N_("Zeigt, wo ein Rundschreiben angekommen ist, und was fehlschlug und warum."),
    examples=[N_("rundschreiben status 7")],
)
async def broadcast_status(ctx: Context, number: int) -> None:
    b = await _find(ctx, number)
    if b is None:
        return
    repo = BroadcastRepository(ctx.db)
    counts = await repo.counts(b.id)
    rows = await repo.deliveries(b.id, "failed", "skipped")
    await ctx.reply(
        "broadcast_status",
        broadcast=describe(ctx.services, b),
        counts=counts.__dict__,
        total=counts.total,
        problems=[{"kind": r.kind, "target": r.target, "label": r.label, "state": r.state,
                   "reason": r.reason} for r in rows],
    )  # fmt: skip


@broadcast_cmd.subcommand(
    "list",
    aliases={"de": ["liste", "übersicht"], "en": ["list"]},
    summary=N_("Zeigt die geplanten und die letzten Rundschreiben."),
    examples=[N_("rundschreiben liste")],
)
async def broadcast_list(ctx: Context) -> None:
    repo = BroadcastRepository(ctx.db)
    await repo.expire_drafts(epoch_now(ctx.services))
    scheduled = await repo.in_state("scheduled")
    recent = [b for b in await repo.recent(10) if b.state != "scheduled"]
    rows = []
    for b in recent:
        counts = await repo.counts(b.id)
        rows.append({**describe(ctx.services, b), "counts": counts.__dict__, "total": counts.total})
    await ctx.reply("broadcast_list", scheduled=[describe(ctx.services, b) for b in scheduled], recent=rows)


@broadcast_cmd.subcommand(
    "retry",
    aliases={"de": ["wiederholen", "nochmal"], "en": ["retry"]},
    args=[_number_arg()],
    summary=N_("Sendet ein Rundschreiben noch einmal an die Räume, an die es nicht ging."),
    examples=[N_("rundschreiben wiederholen 7")],
)
async def broadcast_retry(ctx: Context, number: int) -> None:
    b = await _find(ctx, number)
    if b is None:
        return
    repo = BroadcastRepository(ctx.db)
    if b.state != "done" or b.retracted_at is not None or not b.op_done:
        await ctx.reply("broadcast_changed", outcome="busy" if not b.op_done else "not_sent",
                        broadcast=describe(ctx.services, b))  # fmt: skip
        return
    again = await repo.retry_failed(b.id)
    if not again:
        await ctx.reply("broadcast_changed", outcome="nothing_failed", broadcast=describe(ctx.services, b))
        return
    await repo.update(
        b.id, retries=b.retries + 1, op=f"retry-{b.retries + 1}", op_done=0, progress_event_id=None
    )
    deliveries(ctx.services).start(b.id)
    await ctx.reply("broadcast_changed", outcome="retrying", count=again, broadcast=describe(ctx.services, b))


@broadcast_cmd.subcommand(
    "edit",
    aliases={"de": ["ändern", "aendern", "korrigieren"], "en": ["edit", "correct"]},
    args=[_number_arg(), Arg("text", "message", required=False, label=NP_("usage", "neuer Text"))],
    summary=N_("Ersetzt den Text in jedem Raum, der das Rundschreiben bekam (als Bearbeitung)."),
    examples=[N_("rundschreiben ändern 7 ↵ Die Transferwerkstatt ist am **11. Dezember**.")],
)
async def broadcast_edit(ctx: Context, number: int, text: str | None = None) -> None:
    b = await _find(ctx, number)
    if b is None:
        return
    if b.state != "done" or b.retracted_at is not None or not b.op_done:
        outcome = "retracted" if b.retracted_at else "busy" if not b.op_done else "not_sent"
        await ctx.reply("broadcast_changed", outcome=outcome, broadcast=describe(ctx.services, b))
        return
    try:
        if not text or not text.strip():
            raise BroadcastProblem("empty")
        # an edit carries its text twice (the new content and the fallback for older clients)
        size = ctx.services.matrix.event_bytes(Reply("broadcast", {"text": text})) * 2
        if size > MAX_EVENT_BYTES:
            raise BroadcastProblem("too_large", size=size, limit=MAX_EVENT_BYTES, share=_cut(size), edit=True)
    except BroadcastProblem as problem:
        await _problem(ctx, problem)
        return
    version = b.version + 1
    await BroadcastRepository(ctx.db).update(
        b.id, version=version, edited_text=text, op=f"edit-{version}", op_done=0, progress_event_id=None
    )
    deliveries(ctx.services).start(b.id)
    await ctx.reply("broadcast_changed", outcome="editing", broadcast=describe(ctx.services, b))


@broadcast_cmd.subcommand(
    "retract",
    aliases={"de": ["zurückziehen", "zurueckziehen", "löschen"], "en": ["retract"]},
    args=[_number_arg()],
    summary=N_("Nimmt ein Rundschreiben in jedem Raum zurück (es wird dort gelöscht)."),
    examples=[N_("rundschreiben zurückziehen 7")],
)
async def broadcast_retract(ctx: Context, number: int) -> None:
    b = await _find(ctx, number)
    if b is None:
        return
    if b.state in ("draft", "scheduled"):
        await ctx.reply("broadcast_changed", outcome="not_sent_cancel", broadcast=describe(ctx.services, b))
        return
    if b.state not in ("sending", "done") or b.retracted_at is not None:
        await ctx.reply("broadcast_changed", outcome="not_sent", broadcast=describe(ctx.services, b))
        return
    await BroadcastRepository(ctx.db).update(
        b.id, retracted_at=epoch_now(ctx.services), op="retract", op_done=0, progress_event_id=None
    )
    deliveries(ctx.services).start(b.id)
    await ctx.reply("broadcast_changed", outcome="retracting", broadcast=describe(ctx.services, b))


# --- reactions, schedules, start-up -------------------------------------------------------------


@on_reaction
async def reaction_to_preview(services: Services, reaction: Reaction) -> bool:
    """✅ on a preview confirms, ❌ cancels, when its author reacts; anyone else's reaction on a
    preview does nothing."""
    repo = BroadcastRepository(services.db)
    b = await repo.by_preview(reaction.target_event_id)
    if b is None:
        return False
    key = reaction.key.translate(EMOJI_NOISE)
    if reaction.sender != b.author or key not in (CONFIRM, CANCEL):
        return True
    outcome = await confirm(services, b) if key == CONFIRM else await cancel(services, b)
    if outcome in ("not_draft", "not_open", "sending"):
        return True  # answered before (a replayed sync, the command came first), or the progress answers
    fresh = await repo.get(b.id)
    await services.matrix.send(
        Reply(
            "broadcast_changed",
            {"outcome": outcome, "broadcast": describe(services, fresh or b)},
            room_id=reaction.room_id,
            key=f"broadcast-{b.id}-reaction-{reaction.event_id}",
            mentions=[b.author],
        )
    )
    return True


@declare_scheduled(KIND)
async def scheduled_broadcast(services: Services, occurrence: Occurrence) -> str | None:
    """A scheduled broadcast falls due: its outbox is written and sending starts (once; the
    sends carry their own keys)."""
    b = await BroadcastRepository(services.db).get(int(occurrence.schedule.subject))
    if b is None or b.state != "scheduled":
        return None
    await begin(services, b, ["scheduled"])
    return None


@on_startup
async def resume_broadcasts(services: Services) -> None:
    """Passes a stop or a crash left unfinished go on (their sends carry the same keys); a
    broadcast confirmed for later whose schedule a crash kept from being recorded gets it now."""
    await resume_unfinished(services)
    if services.schedules is None:
        return
    repo = BroadcastRepository(services.db)
    for b in await repo.in_state("scheduled"):
        if b.schedule_id is None and b.send_at is not None:
            if b.send_at <= epoch_now(services):
                await begin(services, b, ["scheduled"])
            else:
                await _schedule(services, b, b.send_at)
