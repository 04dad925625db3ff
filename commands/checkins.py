"""``!checkin``: the bot asks each tandem how its exchange is going, on the tandem's own rhythm.

Each tandem has one check-in schedule (``commands.scheduling``, kind ``checkin``), created with
the configured default rhythm when the tandem starts (existing tandems get it at start-up). A
check-in names the partner towns, suggests one module on the tandem's topic (not the same one
twice in a row) and offers three reactions: ✅ exchanged, ⏳ not yet, 🆘 help needed. Reactions
of the tandem's members are recorded (a redacted reaction withdraws its answer); a threaded
reply to the check-in is an answer with a note. Others' reactions are ignored.

Without an answer after ``checkins.reminder_days`` the bot reminds once, in the check-in's
thread. 🆘 alerts the coordination room at once; three unanswered check-ins in a row flag the
tandem as quiet and alert the coordinators once; a tandem room the bot can no longer post to is
reported once and its check-ins are paused. Paused tandems get no check-ins until resumed, ended
ones none at all.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from commands.context import Context, MatrixError, Reaction, Redaction, Reply, Request, Role, Services
from commands.moments import epoch_now, local_moment
from commands.registry import Arg, command, on_edit, on_reaction, on_redaction, on_startup, on_thread_reply
from commands.registry import scheduled as declare_scheduled
from commands.rhythm import Rhythm, RhythmError, describe, parse_rhythm
from commands.scheduling import Occurrence, Scheduling
from config.catalogs import N_, NP_, translate
from storage.checkins import Answer, Checkin, CheckinRepository
from storage.community import Tandem, TandemRepository
from storage.schedules import Schedule, ScheduleRepository

log = logging.getLogger(__name__)

KIND = "checkin"
REMINDER = "checkin_reminder"
REACTIONS = {"✅": "done", "⏳": "not_yet", "🆘": "help"}
# variation selectors and skin tones that clients add to the same emoji
EMOJI_NOISE = dict.fromkeys(map(ord, "\ufe0e\ufe0f\U0001f3fb\U0001f3fc\U0001f3fd\U0001f3fe\U0001f3ff"))
QUIET_AFTER = 3  # unanswered check-ins in a row
NOTE_LIMIT = 500
# rhythm words the parser reads, in German and English (commands.rhythm); shown in the locale
RHYTHM_EXAMPLES = [
    N_("alle 2 Wochen dienstags 10 Uhr"),
    N_("wöchentlich montags 9:30"),
    N_("monatlich am ersten Montag 9:30"),
]


def schedules(services: Services) -> Scheduling:
    if services.schedules is None:
        raise RuntimeError("scheduled work is not running in this transport")
    return services.schedules


def matrix_to(room_id: str) -> str:
    return f"https://matrix.to/#/{room_id}"


# --- the schedule of a tandem ------------------------------------------------------------------


async def schedule_of(services: Services, tandem: Tandem) -> Schedule | None:
    found = await ScheduleRepository(services.db).of_subject(KIND, str(tandem.id))
    return found[0] if found else None


async def start_checkins(services: Services, tandem: Tandem, rhythm: Rhythm | None = None) -> Schedule:
    """The tandem's check-in schedule, created with the default rhythm if it has none. The first
    check-in comes no earlier than a week after the tandem started."""
    existing = await schedule_of(services, tandem)
    if existing is not None:
        return existing
    default = rhythm or parse_rhythm(services.settings.checkins.default_rhythm)
    not_before = max(services.clock.now(), tandem.created_at + timedelta(days=7))
    return await schedules(services).add(
        KIND, str(tandem.id), default, not_before=not_before, created_by=tandem.created_by
    )


@on_startup
async def give_every_tandem_a_rhythm(services: Services) -> None:
    """Tandems from before check-ins existed (or whose schedule was lost) get the default."""
    if services.schedules is None:
        return
    for tandem in await TandemRepository(services.db).list():
        if tandem.state in ("active", "paused") and tandem.room_id:
            await start_checkins(services, tandem)


# --- delivery ----------------------------------------------------------------------------------


async def _suggest_module(services: Services, tandem: Tandem, previous: str | None) -> dict | None:
    from commands.tandems import matching_modules

    modules = await matching_modules(services, tandem.topic_id, services.settings.locale) or []
    if not modules:
        return None
    ids = [m["id"] for m in modules]
    at = ids.index(previous) + 1 if previous in ids else 0
    return modules[at % len(modules)]


def _tandem_data(tandem: Tandem) -> dict[str, Any]:
    return {
        "id": tandem.id,
        "town_a": tandem.town_a,
        "town_b": tandem.town_b,
        "user_a": tandem.user_a,
        "user_b": tandem.user_b,
        "topic": tandem.topic_label,
        "state": tandem.state,
        "room_id": tandem.room_id,
        "link": matrix_to(tandem.room_id) if tandem.room_id else None,
    }


@declare_scheduled(KIND)
async def deliver_checkin(services: Services, occurrence: Occurrence) -> str | None:
    tandem = await TandemRepository(services.db).get(int(occurrence.schedule.subject))
    if tandem is None or tandem.state in ("ended", "failed"):
        await schedules(services).end(occurrence.schedule)
        return None
    if tandem.state != "active" or tandem.room_id is None:
        return None  # paused: nothing until resumed
    repo = CheckinRepository(services.db)
    previous = await repo.of_tandem(tandem.id, limit=1)
    module = await _suggest_module(services, tandem, previous[0].module_id if previous else None)
    checkin = await repo.record(
        tandem_id=tandem.id,
        key=occurrence.key,
        room_id=tandem.room_id,
        module_id=module["id"] if module else None,
        now=epoch_now(services),
    )
    reply = Reply(
        "checkin",
        {"tandem": _tandem_data(tandem), "module": module, "missed": occurrence.missed},
        mentions=list(tandem.users),
        room_id=tandem.room_id,
        key=occurrence.key,
    )
    try:
        event_id = await services.matrix.send(reply)
    except MatrixError as exc:
        if exc.errcode in ("M_FORBIDDEN", "M_NOT_FOUND", "M_UNKNOWN"):
            await _room_lost(services, tandem, occurrence.schedule, str(exc))
            return None
        raise
    await repo.posted(checkin.id, event_id)
    if event_id:
        for emoji in REACTIONS:
            try:
                await services.matrix.react(tandem.room_id, event_id, emoji, key=f"{occurrence.key}-{emoji}")
            except MatrixError:
                log.warning("tandem %d: could not offer the reaction %s", tandem.id, emoji)
        days = services.settings.checkins.reminder_days
        at = services.clock.now() + timedelta(days=days)
        local = at.astimezone(services.settings.tz).replace(tzinfo=None, second=0, microsecond=0)
        await schedules(services).add(
            REMINDER, str(checkin.id), Rhythm("once", at=local.isoformat()), not_before=at
        )
    return event_id


async def _members_answered(repo: CheckinRepository, checkin: Checkin, tandem: Tandem) -> list[Answer]:
    return [a for a in await repo.answers(checkin.id) if a.user_id in tandem.users]


@declare_scheduled(REMINDER)
async def deliver_reminder(services: Services, occurrence: Occurrence) -> str | None:
    repo = CheckinRepository(services.db)
    checkin = await repo.get(int(occurrence.schedule.subject))
    if checkin is None or checkin.event_id is None:
        return None
    tandem = await TandemRepository(services.db).get(checkin.tandem_id)
    if tandem is None or tandem.state != "active":
        return None
    if await _members_answered(repo, checkin, tandem):
        return None
    latest = await repo.of_tandem(tandem.id, limit=1)
    if latest and latest[0].id != checkin.id:
        return None  # a newer check-in asks already
    event_id = await services.matrix.send(
        Reply(
            "checkin_reminder",
            {"tandem": _tandem_data(tandem)},
            mentions=list(tandem.users),
            room_id=checkin.room_id,
            key=occurrence.key,
            thread_root=checkin.event_id,
        )
    )
    await repo.reminded(checkin.id, event_id, epoch_now(services))
    await _maybe_quiet(services, repo, tandem)
    return event_id


async def _maybe_quiet(services: Services, repo: CheckinRepository, tandem: Tandem) -> None:
    """Three check-ins in a row without an answer: flag the tandem and alert once."""
    latest = await repo.of_tandem(tandem.id, limit=QUIET_AFTER)
    if len(latest) < QUIET_AFTER:
        return
    for checkin in latest:
        if await _members_answered(repo, checkin, tandem):
            return
    flags = await repo.flags(tandem.id)
    if flags.quiet_alerted:
        return
    await repo.set_flags(tandem.id, quiet_since=epoch_now(services), quiet_alerted=1)
    await alert(services, "quiet", tandem, key=f"alert-quiet-{tandem.id}-{latest[0].id}")


async def _room_lost(services: Services, tandem: Tandem, schedule: Schedule, reason: str) -> None:
    log.warning("tandem %d: cannot post to %s (%s); check-ins paused", tandem.id, tandem.room_id, reason)
    await schedules(services).pause(schedule)
    repo = CheckinRepository(services.db)
    if (await repo.flags(tandem.id)).room_lost_reported:
        return
    await repo.set_flags(tandem.id, room_lost_reported=1)
    await alert(services, "room_lost", tandem, key=f"alert-room-lost-{tandem.id}-{schedule.id}")


async def alert(services: Services, kind: str, tandem: Tandem, *, key: str, **data: Any) -> str | None:
    """A notice to the coordination room (none configured: logged only)."""
    room = services.settings.coordination_room
    room_id = await services.matrix.resolve_alias(room) if room and room.startswith("#") else room
    if not room_id:
        log.warning("no coordination room for the %s alert of tandem %d", kind, tandem.id)
        return None
    try:
        return await services.matrix.send(
            Reply(
                "checkin_alert",
                {"kind": kind, "tandem": _tandem_data(tandem), **data},
                room_id=room_id,
                key=key,
            )
        )
    except MatrixError:
        log.exception("could not alert the coordinators about tandem %d", tandem.id)
        return None


# --- answers -----------------------------------------------------------------------------------


async def _checkin_and_tandem(services: Services, event_id: str) -> tuple[Checkin, Tandem] | None:
    checkin = await CheckinRepository(services.db).by_event(event_id)
    if checkin is None:
        return None
    tandem = await TandemRepository(services.db).get(checkin.tandem_id)
    return (checkin, tandem) if tandem is not None else None


async def _answered(services: Services, tandem: Tandem, checkin: Checkin, answer: str, user: str) -> None:
    repo = CheckinRepository(services.db)
    flags = await repo.flags(tandem.id)
    if flags.quiet_since is not None or flags.quiet_alerted:
        await repo.set_flags(tandem.id, quiet_since=None, quiet_alerted=0)
    if answer == "help":
        await repo.set_flags(tandem.id, help_since=epoch_now(services))
        await alert(services, "help", tandem, key=f"alert-help-{checkin.id}", user=user)
    elif answer in ("done", "not_yet") and flags.help_since is not None:
        latest = await repo.of_tandem(tandem.id, limit=1)
        if latest and latest[0].id == checkin.id:
            await repo.set_flags(tandem.id, help_since=None)


@on_reaction
async def reaction_to_checkin(services: Services, reaction: Reaction) -> bool:
    answer = REACTIONS.get(reaction.key.translate(EMOJI_NOISE))
    found = await _checkin_and_tandem(services, reaction.target_event_id)
    if found is None:
        return False
    checkin, tandem = found
    if answer is None or reaction.sender not in tandem.users:
        return True  # ours, but not an answer: an unknown emoji or someone outside the tandem
    repo = CheckinRepository(services.db)
    fresh = await repo.answer(
        checkin,
        user_id=reaction.sender,
        answer=answer,
        source_event_id=reaction.event_id,
        note=None,
        now=reaction.timestamp_ms // 1000,
    )
    if fresh:
        await _answered(services, tandem, checkin, answer, reaction.sender)
    return True


@on_redaction
async def reaction_withdrawn(services: Services, redaction: Redaction) -> bool:
    repo = CheckinRepository(services.db)
    withdrawn = await repo.withdraw(redaction.redacts, epoch_now(services))
    if withdrawn is None:
        return False
    if withdrawn.answer == "help":
        checkin = await repo.get(withdrawn.checkin_id)
        if checkin is not None:
            standing = [a for a in await repo.answers(checkin.id) if a.answer == "help"]
            if not standing:
                await repo.set_flags(checkin.tandem_id, help_since=None)
    return True


@on_thread_reply
async def note_on_checkin(services: Services, request: Request) -> bool:
    root = request.thread_root or request.reply_to
    if root is None:
        return False
    found = await _checkin_and_tandem(services, root)
    if found is None:
        return False
    checkin, tandem = found
    if request.sender not in tandem.users or not request.event_id:
        return False  # a coordinator's reply in the thread is conversation, not an answer
    fresh = await CheckinRepository(services.db).answer(
        checkin,
        user_id=request.sender,
        answer="note",
        source_event_id=request.event_id,
        note=request.body.strip()[:NOTE_LIMIT],
        now=request.timestamp_ms // 1000,
    )
    if fresh:
        await _answered(services, tandem, checkin, "note", request.sender)
    return True


@on_edit
async def note_edited(services: Services, request: Request) -> bool:
    """An edit of a note replaces its text (the answer keeps its time)."""
    if request.replaces is None:
        return False
    return await CheckinRepository(services.db).edit_note(
        request.replaces, request.sender, request.body.strip()[:NOTE_LIMIT]
    )


# --- commands ----------------------------------------------------------------------------------


async def _tandem_of_room(ctx: Context, number: int | None = None) -> Tandem | None:
    repo = TandemRepository(ctx.db)
    tandem = await repo.get(number) if number is not None else await repo.by_room(ctx.room_id)
    if tandem is None or tandem.state == "failed" or tandem.room_id is None:
        await ctx.reply("checkin_problem", problem="not_here" if number is None else "no_such", value=number)
        return None
    if ctx.role < Role.COORDINATOR and ctx.sender not in tandem.users:
        await ctx.reply("checkin_problem", problem="not_partner")
        return None
    return tandem


async def _show(ctx: Context, tandem: Tandem, schedule: Schedule, changed: str | None = None) -> None:
    services = ctx.services
    rhythm = Rhythm.from_json(schedule.rhythm)
    latest = await CheckinRepository(ctx.db).of_tandem(tandem.id, limit=1)
    await ctx.reply(
        "checkin_rhythm",
        tandem=_tandem_data(tandem),
        rhythm=describe(rhythm),
        state=schedule.state,
        next=local_moment(services, schedule.next_due) if schedule.state == "active" else None,
        last=local_moment(services, latest[0].posted_at) if latest else None,
        changed=changed,
    )


async def checkin_show(ctx: Context) -> None:
    tandem = await _tandem_of_room(ctx)
    if tandem is not None:
        await _show(ctx, tandem, await start_checkins(ctx.services, tandem))


checkin_cmd = command(
    "checkin",
    aliases={"de": ["checkin", "check-in"], "en": ["checkin", "check-in"]},
    group="tandems",
    summary=N_("Zeigt, wann der Bot im Tandem-Raum wieder nachfragt (im Tandem-Raum)."),
    help=N_(
        "Der Bot fragt jedes Tandem in seinem Rhythmus, wie der Austausch läuft. Sie antworten mit "
        "einer Reaktion: ✅ ausgetauscht, ⏳ noch nicht, 🆘 wir brauchen Unterstützung."
    ),
    examples=["checkin", N_("checkin rhythmus alle 2 Wochen dienstags 10 Uhr"), N_("checkin pausieren")],
)(checkin_show)


@checkin_cmd.subcommand(
    "rhythm",
    audited=True,
    aliases={"de": ["rhythmus"], "en": ["rhythm"]},
    args=[Arg("words", "text", label=NP_("usage", "Rhythmus"))],
    summary=N_("Legt fest, wie oft der Bot nachfragt, z. B. „alle 2 Wochen dienstags 10 Uhr“."),
    examples=[
        N_("checkin rhythmus alle 2 Wochen dienstags 10 Uhr"),
        N_("checkin rhythmus monatlich am ersten Montag 9:30"),
    ],
)
async def checkin_rhythm(ctx: Context, words: str) -> None:
    try:
        rhythm = parse_rhythm(words)
    except RhythmError as exc:
        await ctx.reply(
            "checkin_problem",
            problem="bad_rhythm",
            reason=exc.problem,
            detail=exc.detail,
            value=words,
            examples=[translate(ctx.locale, e) for e in RHYTHM_EXAMPLES],
            usage=ctx.command.usage(ctx.prefix, ctx.locale, ctx.typed) if ctx.command else "",
        )
        return
    tandem = await _tandem_of_room(ctx)
    if tandem is None:
        return
    schedule = await start_checkins(ctx.services, tandem)
    schedule = await schedules(ctx.services).change(schedule, rhythm)
    await _show(ctx, tandem, schedule, changed="rhythm")


@checkin_cmd.subcommand(
    "pause",
    audited=True,
    aliases={"de": ["pausieren", "pause"], "en": ["pause"]},
    summary=N_("Pausiert die Nachfragen in diesem Tandem."),
    examples=[N_("checkin pausieren")],
)
async def checkin_pause(ctx: Context) -> None:
    tandem = await _tandem_of_room(ctx)
    if tandem is None:
        return
    schedule = await start_checkins(ctx.services, tandem)
    if schedule.state == "paused":
        await ctx.reply("checkin_problem", problem="already", state="paused")
        return
    await _show(ctx, tandem, await schedules(ctx.services).pause(schedule), changed="paused")


@checkin_cmd.subcommand(
    "resume",
    audited=True,
    aliases={"de": ["fortsetzen", "weiter"], "en": ["resume"]},
    summary=N_("Nimmt die Nachfragen wieder auf."),
    examples=[N_("checkin fortsetzen")],
)
async def checkin_resume(ctx: Context) -> None:
    tandem = await _tandem_of_room(ctx)
    if tandem is None:
        return
    schedule = await start_checkins(ctx.services, tandem)
    if schedule.state == "active":
        await ctx.reply("checkin_problem", problem="already", state="active")
        return
    await CheckinRepository(ctx.db).set_flags(tandem.id, room_lost_reported=0)
    await _show(ctx, tandem, await schedules(ctx.services).resume(schedule), changed="resumed")


@checkin_cmd.subcommand(
    "now",
    audited=True,
    aliases={"de": ["jetzt"], "en": ["now"]},
    role=Role.COORDINATOR,
    args=[Arg("number", "int", required=False, label=NP_("usage", "Tandem-Nummer"))],
    summary=N_("Fragt sofort nach."),
    examples=[N_("checkin jetzt"), N_("checkin jetzt 3")],
)
async def checkin_now(ctx: Context, number: int | None = None) -> None:
    tandem = await _tandem_of_room(ctx, number)
    if tandem is None:
        return
    if tandem.state != "active":
        await ctx.reply("checkin_problem", problem="tandem_not_active", state=tandem.state)
        return
    schedule = await start_checkins(ctx.services, tandem)
    event_id = await schedules(ctx.services).run_now(schedule)
    await ctx.reply("checkin_sent", tandem=_tandem_data(tandem), sent=event_id is not None)


# --- the coordinators' report ------------------------------------------------------------------


@dataclass(frozen=True)
class ReportRow:
    tandem: Tandem
    rhythm: dict[str, Any] | None
    schedule_state: str | None
    next: datetime | None
    last_answer: str | None
    last_answer_at: datetime | None
    streak: int
    quiet: bool
    help: bool


async def report_rows(services: Services) -> list[ReportRow]:
    tandems = [t for t in await TandemRepository(services.db).list() if t.state != "failed"]
    repo = CheckinRepository(services.db)
    by_subject = {s.subject: s for s in await ScheduleRepository(services.db).of_kind(KIND, open_only=False)}
    rows = []
    for tandem in tandems:
        schedule = by_subject.get(str(tandem.id))
        last: Answer | None = None
        streak = 0
        counting = True
        open_since = epoch_now(services) - services.settings.checkins.reminder_days * 86_400
        for checkin in await repo.of_tandem(tandem.id, limit=50):  # newest first
            answers = await _members_answered(repo, checkin, tandem)
            if answers and last is None:
                last = answers[-1]
            if not answers and checkin.posted_at > open_since:
                continue  # still open: it neither counts nor breaks the streak
            counting = counting and bool(answers)
            streak += 1 if counting else 0
        flags = await repo.flags(tandem.id)
        rows.append(
            ReportRow(
                tandem=tandem,
                rhythm=describe(Rhythm.from_json(schedule.rhythm)) if schedule else None,
                schedule_state=schedule.state if schedule else None,
                next=local_moment(services, schedule.next_due)
                if schedule and schedule.state == "active"
                else None,
                last_answer=last.answer if last else None,
                last_answer_at=local_moment(services, last.answered_at) if last else None,
                streak=streak,
                quiet=flags.quiet_since is not None,
                help=flags.help_since is not None,
            )
        )
    return rows


def _cell(value: object) -> str:
    """A spreadsheet cell that is never a formula: text starting with = + - @ (or a tab or
    carriage return) gets a leading apostrophe, as OWASP advises against CSV injection."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def report_csv(rows: list[ReportRow], labels: dict[str, str]) -> bytes:
    """UTF-8 with BOM and ``;`` as separator: German Excel opens it in columns, LibreOffice asks
    and proposes the same; dates as ISO 8601 so every spreadsheet reads them as dates. Text
    cells are never formulas (``_cell``)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(list(labels.values()))
    for r in rows:
        writer.writerow(
            [
                r.tandem.id,
                _cell(r.tandem.town_a),
                _cell(r.tandem.town_b),
                _cell(r.tandem.topic_label),
                r.tandem.state,
                r.schedule_state or "",
                r.next.strftime("%Y-%m-%d %H:%M") if r.next else "",
                r.last_answer or "",
                r.last_answer_at.strftime("%Y-%m-%d %H:%M") if r.last_answer_at else "",
                r.streak,
                "1" if r.quiet else "0",
                "1" if r.help else "0",
            ]
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")


CSV_COLUMNS = [
    NP_("table", "Nr."), NP_("table", "Stadt A"), NP_("table", "Stadt B"), NP_("table", "Thema"),
    NP_("table", "Status"), NP_("table", "Nachfragen"), NP_("table", "Nächste Nachfrage"),
    NP_("table", "Letzte Antwort"), NP_("table", "Beantwortet am"), NP_("table", "Antworten in Folge"),
    NP_("table", "Still"), NP_("table", "Hilfe"),
]  # fmt: skip


@checkin_cmd.subcommand(
    "report",
    aliases={"de": ["bericht"], "en": ["report"]},
    role=Role.COORDINATOR,
    args=[Arg("format", "choice", required=False, choices=("csv",))],
    summary=N_("Übersicht aller Tandems mit Rhythmus und letzter Antwort; mit „csv“ als Datei."),
    examples=[N_("checkin bericht"), N_("checkin bericht csv")],
)
async def checkin_report(ctx: Context, format: str | None = None) -> None:
    rows = await report_rows(ctx.services)
    if format == "csv":
        columns = [translate(ctx.locale, c, "table") for c in CSV_COLUMNS]
        data = report_csv(rows, dict(zip(columns, columns, strict=True)))
        stamp = ctx.services.clock.now().astimezone(ctx.settings.tz).strftime("%Y-%m-%d")
        await ctx.services.matrix.upload(
            ctx.room_id,
            filename=f"tandems-{stamp}.csv",
            data=data,
            mimetype="text/csv",
            key=f"report-{ctx.request.event_id}",
            reply_to=ctx.request,
        )
        return
    await ctx.reply(
        "checkin_report",
        rows=[
            {
                "tandem": _tandem_data(r.tandem),
                "rhythm": r.rhythm,
                "schedule_state": r.schedule_state,
                "next": r.next,
                "last_answer": r.last_answer,
                "last_answer_at": r.last_answer_at,
                "streak": r.streak,
                "quiet": r.quiet,
                "help": r.help,
            }
            for r in rows
        ],
    )
