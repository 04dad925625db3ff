"""Tandem check-ins without a homeserver: the rhythm, the message, answers by reaction and in
the thread, the reminder, help and quiet alerts, paused and ended tandems, the report and CSV."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from commands.context import MatrixError, Reaction, Redaction, Request
from storage.checkins import CheckinRepository
from tests.local_bot import make_local_bot
from tests.test_tandems import ANNA, BEN, COORD, CREATE, profiled

BERLIN = ZoneInfo("Europe/Berlin")
CARLA = "@carla:localhost"


@pytest.fixture
async def bot(tmp_path):
    local = await make_local_bot(tmp_path, coordination_room="!coord:localhost")
    # Tuesday 1 December 2026, 10:00 in Berlin
    local.clock.current = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    await profiled(local, (ANNA, "Wittenberge", ["Innenstadt"]), (BEN, "Bad Berleburg", ["Innenstadt"]))
    await local.say(CREATE, sender=COORD)
    yield local
    await local.db.close()


def room_of(bot) -> str:
    [room] = [r for r in bot.matrix.rooms.values() if r.name.startswith("Tandem")]
    return room.room_id


async def run_until(bot, moment: datetime) -> None:
    """Move the fake clock to ``moment`` in steps, delivering whatever falls due on the way."""
    schedules = bot.services.schedules
    while bot.clock.now() < moment:
        wake = schedules.next_wake()
        target = moment if wake is None else min(moment, datetime.fromtimestamp(wake, UTC))
        bot.clock.advance(max(1.0, (target - bot.clock.now()).total_seconds()))
        await schedules.run_due()
        await schedules.drain()


def checkins_sent(bot, room: str) -> list:
    return [m for m in bot.matrix.sent if m.room_id == room and m.reply.template == "checkin"]


async def react(bot, sender: str, event_id: str, key: str, reaction_id: str) -> bool:
    return await bot.dispatcher.react(
        Reaction(sender, room_of(bot), reaction_id, event_id, key, int(bot.clock.now().timestamp() * 1000))
    )


async def first_checkin(bot, until: datetime = datetime(2026, 12, 16, tzinfo=UTC)):
    room = room_of(bot)
    await run_until(bot, until)
    [message] = checkins_sent(bot, room)
    checkin = (await CheckinRepository(bot.db).of_tandem(1, limit=1))[0]
    return message, checkin


async def test_a_new_tandem_is_asked_on_the_default_rhythm_from_the_next_week_on(bot):
    message, checkin = await first_checkin(bot)
    when = datetime.fromtimestamp(checkin.posted_at, UTC).astimezone(BERLIN)
    # every 2 weeks on Tuesday at 10:00, no earlier than a week after the start (1 December)
    assert (when.date().isoformat(), when.hour) == ("2026-12-08", 10)
    assert "Wittenberge" in message.body and "Bad Berleburg" in message.body
    assert set(message.reply.mentions) == {ANNA, BEN}
    assert "✅" in message.body and "⏳" in message.body and "🆘" in message.body
    # the bot offers the three answers as reactions on its own message
    offered = [(e, k) for r, e, k in bot.matrix.reactions if r == room_of(bot)]
    assert {k for _, k in offered} == {"✅", "⏳", "🆘"}
    assert {e for e, _ in offered} == {checkin.event_id}


async def test_the_suggested_module_matches_the_topic_and_changes_each_time(bot):
    await run_until(bot, datetime(2027, 1, 14, tzinfo=UTC))
    checkins = await CheckinRepository(bot.db).of_tandem(1, limit=10)
    modules = [c.module_id for c in reversed(checkins)]
    assert len(modules) == 3 and all(modules)
    assert all(a != b for a, b in itertools.pairwise(modules))


async def test_reactions_of_members_are_answers_others_and_unknown_emoji_are_ignored(bot):
    _, checkin = await first_checkin(bot)
    repo = CheckinRepository(bot.db)
    assert await react(bot, ANNA, checkin.event_id, "✅", "$r1")
    assert await react(bot, CARLA, checkin.event_id, "✅", "$r2")  # not in the tandem
    assert await react(bot, BEN, checkin.event_id, "🎉", "$r3")  # not one of the answers
    assert await react(bot, BEN, checkin.event_id, "⏳️", "$r4")  # with a variation selector
    assert not await react(bot, BEN, "$somethingelse", "✅", "$r5")
    assert await react(bot, ANNA, checkin.event_id, "✅", "$r1")  # a replayed sync: once
    answers = await repo.answers(checkin.id)
    assert [(a.user_id, a.answer) for a in answers] == [(ANNA, "done"), (BEN, "not_yet")]
    # a redaction of the reaction withdraws it
    await bot.dispatcher.redact(Redaction(ANNA, room_of(bot), "$x", "$r1"))
    assert [(a.user_id, a.answer) for a in await repo.answers(checkin.id)] == [(BEN, "not_yet")]


async def test_help_alerts_the_coordination_room_once_per_checkin(bot):
    _, checkin = await first_checkin(bot)
    await react(bot, ANNA, checkin.event_id, "🆘", "$h1")
    await react(bot, BEN, checkin.event_id, "🆘", "$h2")
    alerts = [m for m in bot.matrix.sent if m.room_id == "!coord:localhost"]
    assert len(alerts) == 1
    assert "Tandem Nr. 1" in alerts[0].body and "Wittenberge" in alerts[0].body
    assert f"https://matrix.to/#/{room_of(bot)}" in alerts[0].html
    assert (await CheckinRepository(bot.db).flags(1)).help_since is not None


async def test_a_threaded_reply_is_an_answer_with_a_note_and_its_edit_replaces_the_note(bot):
    _, checkin = await first_checkin(bot)
    room = room_of(bot)
    before = len(bot.matrix.sent)
    request = Request(
        sender=BEN,
        room_id=room,
        body="Wir treffen uns nächste Woche in Bad Berleburg.",
        event_id="$note1",
        thread_root=checkin.event_id,
        timestamp_ms=int(bot.clock.now().timestamp() * 1000),
    )
    assert await bot.dispatcher.handle(request, bot.matrix.send)
    assert len(bot.matrix.sent) == before  # recorded quietly, no answer in the thread
    edit = Request(
        sender=BEN, room_id=room, body="Wir treffen uns am Montag.", event_id="$e", replaces="$note1"
    )
    assert await bot.dispatcher.handle(edit, bot.matrix.send)
    [answer] = await CheckinRepository(bot.db).answers(checkin.id)
    assert (answer.answer, answer.note) == ("note", "Wir treffen uns am Montag.")
    # someone else's edit of the note changes nothing
    other = Request(sender=ANNA, room_id=room, body="gefälscht", event_id="$e2", replaces="$note1")
    await bot.dispatcher.handle(other, bot.matrix.send)
    assert (await CheckinRepository(bot.db).answers(checkin.id))[0].note == "Wir treffen uns am Montag."


async def test_one_reminder_in_the_thread_after_three_days_without_an_answer(bot):
    _, checkin = await first_checkin(bot)
    await run_until(bot, datetime(2026, 12, 19, 12, tzinfo=UTC))
    reminders = [m for m in bot.matrix.sent if m.reply.template == "checkin_reminder"]
    assert len(reminders) == 1
    assert reminders[0].reply.thread_root == checkin.event_id
    assert set(reminders[0].reply.mentions) == {ANNA, BEN}


async def test_no_reminder_when_a_member_answered(bot):
    _, checkin = await first_checkin(bot, until=datetime(2026, 12, 9, tzinfo=UTC))
    await react(bot, BEN, checkin.event_id, "⏳", "$a")
    await run_until(bot, datetime(2026, 12, 20, tzinfo=UTC))
    assert not [m for m in bot.matrix.sent if m.reply.template == "checkin_reminder"]


async def test_three_unanswered_checkins_flag_the_tandem_quiet_and_alert_once(bot):
    await run_until(bot, datetime(2027, 2, 20, tzinfo=UTC))
    quiet = [m for m in bot.matrix.sent if m.room_id == "!coord:localhost" and "still" in m.body]
    assert len(quiet) == 1
    assert (await CheckinRepository(bot.db).flags(1)).quiet_since is not None
    # an answer lifts the flag
    latest = (await CheckinRepository(bot.db).of_tandem(1, limit=1))[0]
    await react(bot, ANNA, latest.event_id, "✅", "$late")
    assert (await CheckinRepository(bot.db).flags(1)).quiet_since is None


async def test_paused_tandems_get_no_checkins_until_resumed_and_ended_ones_none(bot):
    room = room_of(bot)
    await bot.say("!tandem pausieren", sender=COORD, room_id=room, is_direct=False)
    await run_until(bot, datetime(2027, 1, 1, tzinfo=UTC))
    assert checkins_sent(bot, room) == []
    await bot.say("!tandem fortsetzen", sender=COORD, room_id=room, is_direct=False)
    await run_until(bot, datetime(2027, 1, 14, tzinfo=UTC))
    assert len(checkins_sent(bot, room)) == 1
    await bot.say("!tandem beenden", sender=COORD, room_id=room, is_direct=False)
    await run_until(bot, datetime(2027, 4, 1, tzinfo=UTC))
    assert len(checkins_sent(bot, room)) == 1


async def test_rhythm_commands_in_the_tandem_room(bot):
    room = room_of(bot)
    shown = await bot.text("!checkin", sender=ANNA, room_id=room, is_direct=False)
    assert "alle 2 Wochen am Dienstag um 10:00 Uhr" in shown
    assert "8. Dezember 2026" in shown
    changed = await bot.text(
        "!checkin rhythmus monatlich am ersten Montag 9:30", sender=BEN, room_id=room, is_direct=False
    )
    assert "jeden Monat am ersten Montag um 09:30 Uhr" in changed
    assert "7. Dezember 2026" in changed
    refused = await bot.text("!checkin rhythmus ab und zu", sender=BEN, room_id=room, is_direct=False)
    assert "„ab“" in refused and "alle 2 Wochen dienstags 10 Uhr" in refused
    # someone outside the tandem may not change it, and a member may not trigger one now
    assert "nur die beiden Beteiligten" in await bot.text(
        "!checkin pausieren", sender=CARLA, room_id=room, is_direct=False
    )
    denied = await bot.text("!checkin jetzt", sender=ANNA, room_id=room, is_direct=False)
    assert "Koordination" in denied or "coordinator" in denied
    paused = await bot.text("!checkin pausieren", sender=ANNA, room_id=room, is_direct=False)
    assert "pausiert" in paused
    await run_until(bot, datetime(2027, 1, 10, tzinfo=UTC))
    assert checkins_sent(bot, room) == []
    await bot.text("!checkin fortsetzen", sender=ANNA, room_id=room, is_direct=False)
    sent = await bot.say("!checkin jetzt", sender=COORD, room_id=room, is_direct=False)
    assert len([m for m in sent if m.reply.template == "checkin"]) == 1


async def test_english_rhythm_words_and_english_answers(tmp_path):
    bot = await make_local_bot(tmp_path, locale="en")
    try:
        await profiled(bot, (ANNA, "Wittenberge", []), (BEN, "Bad Berleburg", []))
        await bot.say(CREATE, sender=COORD)
        room = room_of(bot)
        changed = await bot.text(
            "!checkin rhythm every 2 weeks thursday 14:00", sender=ANNA, room_id=room, is_direct=False
        )
        assert "Thursday" in changed and "14:00" in changed
    finally:
        await bot.db.close()


async def test_report_lists_every_tandem_and_the_csv_opens_in_german_excel(bot):
    _, checkin = await first_checkin(bot)
    await react(bot, ANNA, checkin.event_id, "🆘", "$h")
    report = await bot.say("!checkin bericht", sender=COORD)
    [table] = [m for m in report if m.reply.template == "checkin_report"]
    assert "<table>" in table.html and "Wittenberge ⇄ Bad Berleburg" in table.html
    assert "🆘" in table.body
    await bot.say("!checkin bericht csv", sender=COORD)
    [(_, filename, data)] = bot.matrix.files
    assert filename == "tandems-2026-12-16.csv"
    assert data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:3] == ["Nr.", "Stadt A", "Stadt B"]
    assert rows[1][0] == "1" and rows[1][1] == "Wittenberge" and rows[1][-1] == "1"
    assert rows[1][7] == "help"
    # members may not see the report
    assert "Koordination" in await bot.text("!checkin bericht", sender=ANNA)


async def test_existing_tandems_get_the_default_rhythm_at_start(bot):
    await bot.db.execute("DELETE FROM schedules")
    from commands.checkins import give_every_tandem_a_rhythm

    await give_every_tandem_a_rhythm(bot.services)
    await bot.services.schedules.load()
    row = await bot.db.fetchone("SELECT count(*) FROM schedules WHERE kind = 'checkin'")
    assert row[0] == 1
    await run_until(bot, datetime(2026, 12, 9, tzinfo=UTC))
    assert len(checkins_sent(bot, room_of(bot))) == 1


def test_csv_cells_are_never_formulas():
    from commands.checkins import _cell

    assert _cell('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert [_cell(v) for v in ("+1", "-1", "@a", "Bad Tölz", 3)] == ["'+1", "'-1", "'@a", "Bad Tölz", "3"]


async def test_two_members_reacting_at_once_are_both_recorded(bot):
    _, checkin = await first_checkin(bot)
    await asyncio.gather(
        react(bot, ANNA, checkin.event_id, "✅", "$x1"), react(bot, BEN, checkin.event_id, "⏳", "$x2")
    )
    answers = await CheckinRepository(bot.db).answers(checkin.id)
    assert sorted((a.user_id, a.answer) for a in answers) == [(ANNA, "done"), (BEN, "not_yet")]


async def test_a_reaction_to_an_older_checkin_counts_for_that_checkin(bot):
    await run_until(bot, datetime(2026, 12, 30, tzinfo=UTC))  # 8 and 22 December
    older, newer = reversed(await CheckinRepository(bot.db).of_tandem(1, limit=2))
    assert await react(bot, ANNA, older.event_id, "✅", "$old")
    repo = CheckinRepository(bot.db)
    assert [a.answer for a in await repo.answers(older.id)] == ["done"]
    assert await repo.answers(newer.id) == []


async def test_a_room_the_bot_cannot_post_to_is_reported_once_and_not_retried(bot):
    room = room_of(bot)
    original = bot.matrix.send
    attempts = []

    async def refusing(reply, request=None):
        if reply.room_id == room:
            attempts.append(reply.template)
            raise MatrixError("cannot send: not in room", "M_FORBIDDEN")
        return await original(reply, request)

    bot.matrix.send = refusing
    await run_until(bot, datetime(2027, 3, 1, tzinfo=UTC))
    assert attempts == ["checkin"]  # the first refusal pauses the tandem's check-ins
    alerts = [m for m in bot.matrix.sent if m.room_id == "!coord:localhost"]
    assert len(alerts) == 1 and "nicht mehr schreiben" in alerts[0].body
    [schedule] = await bot.services.schedules.repo.of_subject("checkin", "1")
    assert schedule.state == "paused"
