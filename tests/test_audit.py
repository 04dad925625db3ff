"""The audit trail: every coordinator action is recorded by the dispatcher with who, when, what
and the outcome; coordinators list it in the coordination room; erasure leaves a pseudonym."""

from __future__ import annotations

import logging
import re

import pytest

from commands import load_families
from commands.registry import REGISTRY
from storage.audit import AuditRepository
from storage.personal_data import PersonalData
from tests.local_bot import make_local_bot

KOORD = "@koordination:localhost"
ANNA, BEN = "@anna:localhost", "@ben:localhost"
COORDINATION = "!koordination:localhost"


@pytest.fixture
async def bot(tmp_path):
    local = await make_local_bot(tmp_path, coordinators=[KOORD], coordination_room=COORDINATION)
    yield local
    await local.db.close()


def test_coordinator_actions_are_declared_audited():
    load_families()
    audited = {
        cmd.words for top in REGISTRY.commands() for cmd in [top, *top.unique_subcommands()] if cmd.audited
    }
    assert {
        "tandem create",
        "tandem pause",
        "tandem resume",
        "tandem end",
        "topic create",
        "centralplace set",
        "centralplace clear",
        "reload",
        "checkin rhythm",
        "checkin pause",
        "checkin resume",
    } <= audited, audited
    # reading commands are not audited
    assert not {"tandem list", "tandem info", "help", "eligible", "audit"} & audited


async def _profiles(bot) -> None:
    for user, town in ((ANNA, "Wittenberge"), (BEN, "Bad Berleburg")):
        await bot.say(f"!profil ort {town}", sender=user)


async def test_each_outcome_is_recorded_with_who_when_what(bot):
    await _profiles(bot)
    await bot.say(f"!tandem anlegen {ANNA} {BEN} Innenstadt", sender=KOORD, room_id=COORDINATION)
    [(number,)] = await bot.db.fetchall("SELECT id FROM tandems")
    bot.clock.advance(60)
    await bot.say(f"!tandem pausieren {number}", sender=KOORD, room_id=COORDINATION)
    await bot.say("!tandem pausieren 999", sender=KOORD, room_id=COORDINATION)  # answered: not found
    await bot.say("!tandem pausieren elf", sender=KOORD, room_id=COORDINATION)  # usage error
    await bot.say(f"!tandem anlegen {ANNA} {BEN}", sender=ANNA)  # a member: refused
    await bot.say("!tandem liste", sender=KOORD)  # not audited
    entries = await AuditRepository(bot.db).recent(10)
    shown = [(e.actor, e.action, e.outcome) for e in reversed(entries)]
    assert shown == [
        (KOORD, "tandem create", "answered"),
        (KOORD, "tandem pause", "answered"),
        (KOORD, "tandem pause", "answered"),
        (KOORD, "tandem pause", "usage_error"),
        (ANNA, "tandem create", "refused"),
    ]
    create, pause, missing, typo, refused = reversed(entries)
    assert create.detail["user_a"] == ANNA and create.detail["user_b"] == BEN
    assert pause.detail == {"number": number} and missing.detail == {"number": 999}
    assert pause.at.timestamp() - create.at.timestamp() == 60
    assert pause.result != missing.result  # what the bot answered tells done from not found
    assert typo.detail == {"words": "elf"}
    assert refused.result == ("error_denied",) and refused.room_id == "!dm:localhost"
    assert (await bot.db.fetchone("SELECT state FROM tandems"))[0] == "paused"


async def test_a_failing_handler_is_recorded_as_failed(bot, monkeypatch):
    import commands.faq as faq

    async def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(REGISTRY.find("reload"), "handler", broken)
    [answer] = await bot.say("!neuladen", sender=KOORD)
    assert answer.reply.template == "error_internal"
    [entry] = await AuditRepository(bot.db).recent()
    assert (entry.action, entry.outcome, entry.result) == ("reload", "failed", ("error_internal",))
    assert faq  # the family is loaded


async def test_coordinators_list_recent_entries_in_the_coordination_room(bot):
    await bot.say("!zentralort setzen 01051002 grundzentrum_mz Regionalplan 2024", sender=KOORD)
    await bot.say("!neuladen", sender=KOORD)
    [listing] = await bot.say("!protokoll", sender=KOORD, room_id=COORDINATION, is_direct=False)
    assert listing.reply.template == "audit_list"
    lines = [line for line in listing.body.splitlines() if KOORD in line]
    assert len(lines) == 2
    assert "!neuladen" in lines[0] and "ausgeführt" in lines[0]  # newest first, in German words
    assert "!zentralort setzen" in lines[1] and "01051002" in lines[1]
    # one entry only
    [one] = await bot.say("!protokoll 1", sender=KOORD, room_id=COORDINATION, is_direct=False)
    assert sum(KOORD in line for line in one.body.splitlines()) == 1
    # elsewhere (a tandem room, a direct chat) it names the room to use instead
    [elsewhere] = await bot.say("!protokoll", sender=KOORD, room_id="!tandem:localhost", is_direct=False)
    assert elsewhere.reply.template == "audit_elsewhere" and COORDINATION in elsewhere.body
    # a count out of range gets an example
    [wrong] = await bot.say("!protokoll 500", sender=KOORD, room_id=COORDINATION, is_direct=False)
    assert wrong.reply.template == "audit_count" and "!protokoll 20" in wrong.body
    # members may not read it
    [denied] = await bot.say("!protokoll", sender=ANNA, room_id=COORDINATION, is_direct=False)
    assert denied.reply.template == "error_denied"


async def test_english_names_and_an_empty_trail(tmp_path):
    bot = await make_local_bot(tmp_path, coordinators=[KOORD], locale="en")
    try:
        empty = await bot.text("!audit", sender=KOORD)
        assert "empty" in empty.lower()
        await bot.say("!reload", sender=KOORD)
        listing = await bot.text("!audit", sender=KOORD)
        assert "!reload" in listing and "done" in listing
    finally:
        await bot.db.close()


async def test_erasure_leaves_the_trail_consistent_with_one_pseudonym(bot):
    await _profiles(bot)
    await bot.say(f"!tandem anlegen {ANNA} {BEN} Innenstadt", sender=KOORD)
    await bot.say("!tandem pausieren 1", sender=KOORD)
    await PersonalData(bot.db).erase(ANNA)  # a mayor named in the arguments
    await PersonalData(bot.db).erase(KOORD)
    entries = await AuditRepository(bot.db).recent()
    assert len(entries) == 2  # nothing is lost
    actors = {e.actor for e in entries}
    assert len(actors) == 1 and re.fullmatch(r"erased-[0-9a-f]{8}", actors.pop())
    create = entries[-1]
    assert ANNA not in str(create.detail) and create.detail["user_b"] == BEN
    assert create.detail["user_a"].startswith("erased-")


async def test_each_handled_command_is_one_log_line_without_the_text(bot, caplog):
    caplog.set_level(logging.INFO, logger="commands.dispatcher")
    await bot.say("!berechtigt Bad Berleburg", sender=ANNA)
    await bot.say("Wie melde ich meine Stadt an?", sender=ANNA)
    await bot.say("!gibtsnicht", sender=ANNA)
    lines = [r for r in caplog.records if r.name == "commands.dispatcher"]
    assert [(r.command, r.outcome) for r in lines] == [  # type: ignore[attr-defined]
        ("eligible", "answered"),
        ("plain_text", "answered"),
        ("unknown", "usage_error"),
    ]
    for record in lines:
        text = record.getMessage()
        assert ANNA in text and "Berleburg" not in text and "melde" not in text
        assert record.duration_ms >= 0  # type: ignore[attr-defined]


async def test_listeners_hear_every_outcome_including_the_rate_limit(tmp_path):
    bot = await make_local_bot(
        tmp_path, coordinators=[KOORD], rate_limit={"commands": 2, "window_seconds": 60}
    )
    heard: list[tuple[str | None, str]] = []
    bot.dispatcher.listeners.append(lambda handled: heard.append((handled.command, handled.outcome)))
    try:
        for _ in range(4):
            await bot.say("!ping", sender=ANNA)
        await bot.say("!reload", sender=ANNA, room_id="!other:localhost")
    finally:
        await bot.db.close()
    assert heard == [
        ("ping", "answered"),
        ("ping", "answered"),
        ("ping", "rate_limited"),
        ("ping", "rate_limited"),
        ("reload", "rate_limited"),
    ]
