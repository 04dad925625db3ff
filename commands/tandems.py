"""``!tandem``: two mayors working on one topic for months, in a room of their own.

Creation order (so that no room is ever untracked): record the tandem ('creating') → create the
room (private, encrypted if configured, power levels, ``m.space.parent``) → store its ID → add it
to the Space → invite both mayors and the coordinator (each retried once) → 'active' → welcome.
If anything after the room exists fails, the bot kicks whoever was invited, takes the room out
of the Space, marks the record 'failed' and tells the coordinator.
"""

from __future__ import annotations

import contextlib
import logging

from commands.academy_space import (
    add_child,
    ensure_space,
    parent_state,
    remove_child,
    room_power_levels,
    server_of,
)
from commands.context import Context, MatrixError, Reply, Role, Services
from commands.faq_search import library
from commands.pairing import Candidate, suggest_pairs
from commands.profiles import topic_labels
from commands.registry import Arg, command
from config.catalogs import N_, NP_, translate
from config.topics import default_topics
from storage.community import Profile, ProfileRepository, Tandem, TandemRepository

log = logging.getLogger(__name__)

STATE_WORDS = {
    "active": "active",
    "aktiv": "active",
    "laufend": "active",
    "paused": "paused",
    "pausiert": "paused",
    "pause": "paused",
    "ended": "ended",
    "beendet": "ended",
    "ende": "ended",
}
MAYOR_LEVEL = 50


async def matching_modules(services, topic_id: str | None, locale: str) -> list[dict] | None:
    """Learning modules whose front matter lists the topic, from the library in service
    (so ``content_dir`` and ``!reload`` apply); None when there is no topic or no library."""
    if not topic_id:
        return None
    try:
        found = [m for m in (await library(services)).modules(locale) if topic_id in m.topics]
    except Exception:  # an optional section must never break a tandem
        log.exception("could not load modules for topic %s", topic_id)
        return None
    return [{"id": m.id, "title": m.title, "format": m.format, "duration": m.duration} for m in found]


def _tandem_data(t: Tandem, locale: str) -> dict:
    return {
        "id": t.id,
        "town_a": t.town_a,
        "town_b": t.town_b,
        "user_a": t.user_a,
        "user_b": t.user_b,
        "topic": t.topic_label,
        "state": t.state,
        "created_at": t.created_at,
        "since": t.since(t.state),
        "room_id": t.room_id,
        "history": [{"state": e.state, "at": e.at} for e in t.history],
    }


tandem_cmd = command(
    "tandem",
    aliases={"de": ["tandem"], "en": ["tandem"]},
    group="tandems",
    summary=N_("Tandems zwischen zwei Städten oder Gemeinden."),
    help=N_(
        "Ein Tandem: Zwei Bürgermeisterinnen oder Bürgermeister tauschen sich längerfristig zu einem "
        "gemeinsamen Thema der Stadtentwicklung aus, in einem eigenen Raum."
    ),
    examples=["tandem info", N_("tandem liste")],
)(None)


# --- create ---------------------------------------------------------------------------------


@tandem_cmd.subcommand(
    "create",
    audited=True,
    aliases={"de": ["anlegen", "erstellen", "neu"], "en": ["create"]},
    role=Role.COORDINATOR,
    args=[
        Arg("user_a", "mxid", label=NP_("usage", "@person1:server")),
        Arg("user_b", "mxid", label=NP_("usage", "@person2:server")),
        Arg("topic", "text", label=NP_("usage", "Thema")),
    ],
    summary=N_("Legt ein Tandem mit eigenem Raum an."),
    examples=[N_("tandem anlegen @anna:example.org @ben:example.org Innenstadt")],
)
async def tandem_create(ctx: Context, user_a: str, user_b: str, topic: str) -> None:
    services = ctx.services
    matrix = services.matrix
    if user_a == user_b:
        await ctx.reply("tandem_problem", problem="same_person", user=user_a)
        return
    for user in (user_a, user_b):
        if user == matrix.user_id:
            await ctx.reply("tandem_problem", problem="bot", user=user)
            return
        try:
            exists = await matrix.user_exists(user)
        except MatrixError:
            exists = False
        if not exists:
            await ctx.reply("tandem_problem", problem="unknown_user", user=user)
            return
    profiles = ProfileRepository(ctx.db)
    pa, pb = await profiles.get(user_a), await profiles.get(user_b)
    if pa is None or pb is None:
        missing = [u for u, p in ((user_a, pa), (user_b, pb)) if p is None]
        await ctx.reply("tandem_problem", problem="no_profile", users=missing)
        return
    if pa.ags == pb.ags:
        await ctx.reply("tandem_problem", problem="same_town", town=pa.town)
        return
    repo = TandemRepository(ctx.db)
    existing = await repo.open_between(user_a, user_b)
    if existing:
        await ctx.reply("tandem_problem", problem="exists", tandem=_tandem_data(existing, ctx.locale))
        return
    match = default_topics().match(topic)
    label = match.label(ctx.locale) if match else topic.strip()
    short = match.label(ctx.locale).split(" und ")[0] if match else label
    now = services.clock.now()
    tandem_id = await repo.start(
        user_a=user_a,
        user_b=user_b,
        ags_a=pa.ags,
        ags_b=pb.ags,
        town_a=pa.town,
        town_b=pb.town,
        kreis_a=pa.kreis,
        kreis_b=pb.kreis,
        topic_id=match.id if match else None,
        topic_label=label,
        created_by=ctx.sender,
        now=now,
    )
    room_id = None
    try:
        space_id = await ensure_space(services)
        room_id = await matrix.create_room(
            name=f"Tandem {pa.town} ⇄ {pb.town}: {short}",
            topic=translate(ctx.locale, N_("Tandem zum Thema %(topic)s")) % {"topic": label},
            preset="private_chat",
            encrypted=ctx.settings.tandem_encrypted,
            power_levels=room_power_levels(
                services, {user_a: MAYOR_LEVEL, user_b: MAYOR_LEVEL}, requester=ctx.sender
            ),
            initial_state=[parent_state(space_id, server_of(matrix.user_id))],
            # the record's number and time: a restored backup can reuse the number, not both
            txn_key=f"tandem-{tandem_id}-{now:%Y%m%dT%H%M%S}",
        )
        await repo.set_room(tandem_id, room_id, services.clock.now())
        await add_child(services, room_id, space_id)
        for user in dict.fromkeys((user_a, user_b, ctx.sender)):
            await _invite_with_retry(ctx, room_id, user)
    except MatrixError as exc:
        log.error("tandem %d: creation failed: %s", tandem_id, exc)
        await _clean_up(ctx, tandem_id, room_id, (user_a, user_b, ctx.sender), str(exc))
        await ctx.reply("tandem_failed", room_created=room_id is not None, tandem_id=tandem_id)
        return
    await repo.set_state(tandem_id, "active", actor=ctx.sender, now=services.clock.now())
    await _start_checkins(services, tandem_id)
    modules = await matching_modules(services, match.id if match else None, ctx.locale)
    welcome = Reply(
        "tandem_welcome",
        {
            "town_a": pa.town,
            "town_b": pb.town,
            "user_a": user_a,
            "user_b": user_b,
            "kreis_a": pa.kreis,
            "kreis_b": pb.kreis,
            "topic": label,
            "topic_description": match.description.get(ctx.locale, "") if match else "",
            "modules": modules,
            "coordinator": ctx.sender,
        },
        mentions=[user_a, user_b],
        room_id=room_id,
        key=f"tandem-welcome-{tandem_id}",
    )
    try:
        await ctx.emit(welcome)
        welcome_sent = True
    except Exception:  # the tandem stands; the coordinator can greet by hand
        log.exception("tandem %d: the welcome could not be sent to %s", tandem_id, room_id)
        welcome_sent = False
    await ctx.reply(
        "tandem_created",
        id=tandem_id,
        town_a=pa.town,
        town_b=pb.town,
        topic=label,
        user_a=user_a,
        user_b=user_b,
        encrypted=ctx.settings.tandem_encrypted,
        welcome_sent=welcome_sent,
    )


async def _invite_with_retry(ctx: Context, room_id: str, user: str) -> None:
    try:
        await ctx.services.matrix.invite(room_id, user)
    except MatrixError as first:
        log.warning("invite of %s to %s failed (%s); retrying once", user, room_id, first)
        await ctx.services.matrix.invite(room_id, user)


async def _clean_up(ctx: Context, tandem_id: int, room_id: str | None, users, reason: str) -> None:
    matrix = ctx.services.matrix
    if room_id:
        for user in dict.fromkeys(users):
            with contextlib.suppress(MatrixError):  # not invited yet: nothing to undo
                kick_reason = translate(ctx.locale, N_("Das Tandem konnte nicht angelegt werden."))
                await matrix.kick(room_id, user, reason=kick_reason)
        await remove_child(ctx.services, room_id)
    await TandemRepository(ctx.db).set_state(
        tandem_id, "failed", actor=ctx.sender, now=ctx.services.clock.now(), note=reason[:200]
    )


# --- list and info ------------------------------------------------------------------------


@tandem_cmd.subcommand(
    "list",
    aliases={"de": ["liste", "alle"], "en": ["list"]},
    args=[Arg("state", required=False, label=NP_("usage", "aktiv|pausiert|beendet"))],
    summary=N_("Zeigt Tandems (Koordinatorinnen und Koordinatoren: alle, sonst Ihre eigenen)."),
    examples=[N_("tandem liste"), N_("tandem liste pausiert")],
)
async def tandem_list(ctx: Context, state: str | None = None) -> None:
    wanted = None
    if state is not None:
        wanted = STATE_WORDS.get(state.lower())
        if wanted is None:
            await ctx.reply("tandem_problem", problem="state_word", value=state)
            return
    own = ctx.role < Role.COORDINATOR
    tandems = await TandemRepository(ctx.db).list(wanted, user_id=ctx.sender if own else None)
    await ctx.reply(
        "tandem_list", tandems=[_tandem_data(t, ctx.locale) for t in tandems], state=wanted, own=own
    )


async def _tandem_here(ctx: Context, number: int | None) -> Tandem | None:
    repo = TandemRepository(ctx.db)
    tandem = await repo.get(number) if number is not None else await repo.by_room(ctx.room_id)
    if tandem is None or tandem.state == "failed":
        await ctx.reply("tandem_problem", problem="not_here" if number is None else "no_such", value=number)
        return None
    if ctx.role < Role.COORDINATOR and ctx.sender not in tandem.users and number is not None:
        await ctx.reply("tandem_problem", problem="no_such", value=number)
        return None
    return tandem


NUMBER_ARG = Arg("number", "int", required=False, label=NP_("usage", "Nummer"))


@tandem_cmd.subcommand(
    "info",
    aliases={"de": ["info"], "en": ["info"]},
    args=[NUMBER_ARG],
    summary=N_("Zeigt Beteiligte, Thema und Stand des Tandems (im Tandem-Raum oder mit Nummer)."),
    examples=["tandem info", "tandem info 3"],
)
async def tandem_info(ctx: Context, number: int | None = None) -> None:
    tandem = await _tandem_here(ctx, number)
    if tandem:
        await ctx.reply("tandem_info", tandem=_tandem_data(tandem, ctx.locale))


async def _start_checkins(services: Services, tandem_id: int) -> None:
    """Every new tandem gets the default check-in rhythm (``commands.checkins``)."""
    from commands.checkins import start_checkins  # the check-in family stands on this one

    tandem = await TandemRepository(services.db).get(tandem_id)
    if tandem is None or services.schedules is None:
        return
    try:
        await start_checkins(services, tandem)
    except Exception:  # the tandem stands; its check-ins are added at the next start
        log.exception("tandem %d: could not schedule check-ins", tandem_id)


# --- pause, resume, end -------------------------------------------------------------------

TRANSITIONS = {"pause": ("active", "paused"), "resume": ("paused", "active"), "end": (None, "ended")}


async def _change_state(ctx: Context, number: int | None, action: str) -> None:
    tandem = await _tandem_here(ctx, number)
    if tandem is None:
        return
    if ctx.role < Role.COORDINATOR and ctx.sender not in tandem.users:
        await ctx.reply("tandem_problem", problem="not_partner")
        return
    needed, target = TRANSITIONS[action]
    if tandem.state == target or (needed and tandem.state != needed) or tandem.state == "ended":
        await ctx.reply("tandem_problem", problem="wrong_state", action=action, state=tandem.state)
        return
    await TandemRepository(ctx.db).set_state(
        tandem.id, target, actor=ctx.sender, now=ctx.services.clock.now()
    )
    data = _tandem_data(tandem, ctx.locale) | {"state": target}
    if tandem.room_id and tandem.room_id != ctx.room_id:
        key = f"tandem-{tandem.id}-{action}-{len(tandem.history)}"
        await ctx.emit(
            Reply(
                "tandem_state_changed",
                {"tandem": data, "action": action, "actor": ctx.sender},
                room_id=tandem.room_id,
                key=key,
            )
        )
    await ctx.reply("tandem_state_changed", tandem=data, action=action, actor=ctx.sender)


@tandem_cmd.subcommand(
    "pause",
    audited=True,
    aliases={"de": ["pausieren", "pause"], "en": ["pause"]},
    args=[NUMBER_ARG],
    summary=N_("Pausiert das Tandem."),
    examples=[N_("tandem pausieren")],
)
async def tandem_pause(ctx: Context, number: int | None = None) -> None:
    await _change_state(ctx, number, "pause")


@tandem_cmd.subcommand(
    "resume",
    audited=True,
    aliases={"de": ["fortsetzen", "weiter"], "en": ["resume"]},
    args=[NUMBER_ARG],
    summary=N_("Setzt ein pausiertes Tandem fort."),
    examples=[N_("tandem fortsetzen")],
)
async def tandem_resume(ctx: Context, number: int | None = None) -> None:
    await _change_state(ctx, number, "resume")


@tandem_cmd.subcommand(
    "end",
    audited=True,
    aliases={"de": ["beenden", "ende"], "en": ["end"]},
    args=[NUMBER_ARG],
    summary=N_("Beendet das Tandem; der Raum bleibt lesbar."),
    examples=[N_("tandem beenden")],
)
async def tandem_end(ctx: Context, number: int | None = None) -> None:
    await _change_state(ctx, number, "end")


# --- suggest ------------------------------------------------------------------------------


def _candidate(profile: Profile) -> Candidate:
    return Candidate(
        profile.user_id,
        profile.ags,
        profile.town,
        profile.kreis,
        profile.population,
        frozenset(profile.topics),
    )


@tandem_cmd.subcommand(
    "suggest",
    aliases={"de": ["vorschlagen", "vorschläge", "vorschlaege"], "en": ["suggest"]},
    role=Role.COORDINATOR,
    args=[Arg("topic", "text", required=False, label=NP_("usage", "Thema"))],
    summary=N_("Schlägt passende Tandem-Paare vor."),
    examples=[N_("tandem vorschlagen"), N_("tandem vorschlagen Wohnen")],
)
async def tandem_suggest(ctx: Context, topic: str | None = None) -> None:
    topics = default_topics()
    topic_id = None
    if topic:
        match = topics.match(topic)
        if match is None:
            await ctx.reply(
                "tandem_problem",
                problem="unknown_topic",
                value=topic,
                topics=[t.label(ctx.locale) for t in topics],
            )
            return
        topic_id = match.id
    candidates = [_candidate(p) for p in await ProfileRepository(ctx.db).all_with_topics() if p.topics]
    active, past = await TandemRepository(ctx.db).pairing_history()
    found = suggest_pairs(candidates, active=active, past=past, topic=topic_id)
    rows = []
    for s in found:
        reasons = []
        for r in s.reasons:
            data = dict(r.data)
            if r.code == "shared_topic":
                data["topic"] = topic_labels([data["topic"]], ctx.locale)[0]
            if r.code == "also_shared":
                data["topics"] = topic_labels(data["topics"], ctx.locale)
            reasons.append({"code": r.code, **data})
        rows.append(
            {
                "user_a": s.a.user_id,
                "user_b": s.b.user_id,
                "town_a": s.a.town,
                "town_b": s.b.town,
                "topic": topic_labels([s.topic], ctx.locale)[0],
                "topic_word": s.topic,
                "reasons": reasons,
            }
        )
    await ctx.reply(
        "tandem_suggestions",
        suggestions=rows,
        topic=topic_labels([topic_id], ctx.locale)[0] if topic_id else None,
        profiles=len(candidates),
    )
