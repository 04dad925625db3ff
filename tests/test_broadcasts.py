"""Broadcasts without a homeserver (``!rundschreiben`` on the local bot with a fake clock): the
preview, confirmation by command and by the author's ✅, audiences and their counts, bad input
with nothing stored, the schedule, failures with reasons and the retry, corrections and
retractions in every room once, pins, progress edited in place, and resuming after a stop."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime

import pytest

from commands.broadcast_delivery import Deliveries, deliveries, resume_unfinished
from commands.context import MatrixError, Reaction
from commands.moments import MomentError, parse_moment
from storage.broadcasts import BroadcastRepository
from storage.community import ProfileRepository, TandemRepository
from tests.local_bot import make_local_bot
from tests.test_checkins import run_until
from tests.test_tandems import ANNA, BEN, CARLA, COORD

OTHER_COORD = "@zweite-koordination:localhost"
TEXT = "**Einladung** zur Transferwerkstatt am 10. Dezember.\n\n- Anmeldung bis Freitag\n- [Programm](https://example.org/programm)"


@pytest.fixture
async def bot(tmp_path):
    local = await make_local_bot(
        tmp_path, coordinators=[COORD, OTHER_COORD], rate_limit={"commands": 1000, "window_seconds": 60}
    )
    local.clock.current = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # Tuesday, 10:00 in Berlin
    profiles = ProfileRepository(local.db)  # written directly: the town index takes seconds to build
    for user, ags, town in ((ANNA, "12070424", "Wittenberge"), (BEN, "05970008", "Bad Berleburg"),
                            (CARLA, "16072018", "Sonneberg")):  # fmt: skip
        await profiles.set_town(
            user, ags=ags, town=town, kreis="Kreis", land="Land", population=20_000, now=local.clock.now()
        )
        await profiles.add_topic(user, "innenstadt", local.clock.now())
    # tandems written directly too (the command's welcome loads the module library)
    tandems = TandemRepository(local.db)
    for a, b, state in ((ANNA, BEN, "active"), (ANNA, CARLA, "paused"), (BEN, CARLA, "ended")):
        number = await tandems.start(
            user_a=a, user_b=b, ags_a="1", ags_b="2", town_a=a[1:5].title(), town_b=b[1:5].title(),
            kreis_a="K", kreis_b="K", topic_id="innenstadt", topic_label="Innenstadt", created_by=COORD,
            now=local.clock.now(),
        )  # fmt: skip
        room_id = await local.matrix.create_room(name=f"Tandem {number}", invite=[a, b], encrypted=True)
        await tandems.set_room(number, room_id, local.clock.now())
        await tandems.set_state(number, state, actor=COORD, now=local.clock.now())
    await local.say("!thema anlegen Innenstadt", sender=COORD)
    await local.say("!thema anlegen Wohnen", sender=COORD)
    yield local
    await deliveries(local.services).wait()
    await local.db.close()


def rooms(bot, prefix: str) -> list[str]:
    return [r.room_id for r in bot.matrix.rooms.values() if r.name.startswith(prefix)]


def announcements(bot, room_id: str | None = None) -> list:
    return [
        m
        for m in bot.matrix.sent
        if m.reply.template == "broadcast" and m.replaces is None and room_id in (None, m.room_id)
    ]


async def compose(bot, line: str, text: str = TEXT, sender: str = COORD):
    messages = await bot.say(f"!rundschreiben {line}\n{text}", sender=sender)
    previews = [m for m in messages if m.reply.template == "broadcast_preview"]
    return (previews[0] if previews else None), messages


async def sent(bot, number: int) -> None:
    await bot.say(f"!rundschreiben senden {number}", sender=COORD)
    await deliveries(bot.services).wait()


async def test_the_preview_shows_the_announcement_as_rooms_get_it_with_counts_and_a_number(bot):
    preview, _ = await compose(bot, "alle")
    assert preview is not None
    assert "Vorschau: Rundschreiben Nr. 1" in preview.body
    # one active tandem (paused and ended ones only when asked), two channels, three mayors
    assert "1 Tandem-Raum, 2 Themenkanäle, 3 Direktnachrichten" in preview.body
    assert "zusammen 6 Räume" in preview.body
    assert "✅" in preview.body and "!rundschreiben senden 1" in preview.body
    # the bot offers both answers on its preview
    assert {emoji for _, event, emoji in bot.matrix.reactions if event == preview.event_id} == {"✅", "❌"}
    assert announcements(bot) == []  # nothing sent before confirmation
    await sent(bot, 1)
    delivered = announcements(bot)
    assert len(delivered) == 6
    # the announcement in the preview is the same markup each room received
    between = preview.html.split("<hr>")[1].strip()
    assert all(m.html == between for m in delivered)
    assert "<strong>Einladung</strong>" in between and '<a href="https://example.org/programm">' in between
    assert "<li>Anmeldung bis Freitag</li>" in between
    assert all(m.reply.paced for m in delivered)


async def test_markdown_is_safe_html_raw_html_escaped_and_only_web_links(bot):
    text = "<img src=x onerror=alert(1)> [böse](javascript:alert(1)) [mail](mailto:a@b.de) <https://matrix.to/#/#raum:localhost>"
    await compose(bot, "tandems", text)
    await sent(bot, 1)
    [message] = announcements(bot)
    assert "<img" not in message.html and "&lt;img src=x onerror=alert(1)&gt;" in message.html
    assert re.findall(r'href="([^"]*)"', message.html) == ["https://matrix.to/#/#raum:localhost"]


async def test_audiences_paused_and_ended_tandems_only_when_asked(bot):
    active, paused, ended = rooms(bot, "Tandem")
    preview, _ = await compose(bot, "tandems mit pausierten und beendeten")
    assert "3 Tandem-Räume" in preview.body
    await sent(bot, 1)
    assert {m.room_id for m in announcements(bot)} == {active, paused, ended}
    preview, _ = await compose(bot, "thema Wohnen")
    assert "1 Themenkanal" in preview.body
    await sent(bot, 2)
    [wohnen] = rooms(bot, "Wohnen")
    assert [m.room_id for m in announcements(bot)][3:] == [wohnen]
    # a channel named by its topic, then a time: the time is read as a time
    preview, _ = await compose(bot, "thema innenstadt am 3.12. um 9 Uhr")
    assert "1 Themenkanal" in preview.body and "Versand am 3. Dezember 2026, 09:00 Uhr" in preview.body
    # English words name the same audiences
    preview, _ = await compose(bot, "channels")
    assert "2 Themenkanäle" in preview.body


async def test_mayors_get_a_direct_message_in_their_existing_chat_or_a_new_one(bot):
    existing = await bot.matrix.create_room(name="", invite=[ANNA])
    bot.matrix.join(existing, ANNA)
    preview, _ = await compose(bot, "bürgermeister")
    assert "3 Direktnachrichten an Bürgermeisterinnen und Bürgermeister" in preview.body
    await sent(bot, 1)
    by_room = {m.room_id for m in announcements(bot)}
    assert existing in by_room and len(by_room) == 3
    new_rooms = by_room - {existing}
    for room_id in new_rooms:
        room = bot.matrix.rooms[room_id]
        assert room.encrypted and len(room.invited & {BEN, CARLA}) == 1
    chats = await BroadcastRepository(bot.db).direct_chats()
    assert chats[ANNA] == existing and set(chats) == {ANNA, BEN, CARLA}
    # the next broadcast uses the recorded chats; one a person left is replaced by a new one
    bot.matrix.leave(chats[BEN], BEN)
    await compose(bot, "bürgermeister", "Zweite Mitteilung")
    await sent(bot, 2)
    second = {m.room_id for m in announcements(bot)} - by_room
    assert len(second) == 1 and BEN in bot.matrix.rooms[second.pop()].invited
    assert len([m for m in announcements(bot) if m.room_id == existing]) == 2


async def test_bad_input_gets_a_clear_answer_with_an_example_and_nothing_is_stored(bot):
    cases = [
        ("tandems", "Es fehlt der Text", ""),
        ("", "Es fehlt noch eine Angabe", TEXT),
        ("pausierte", "an wen das Rundschreiben geht", TEXT),
        ("vielleicht alle", "„vielleicht“ versteht der Bot in der ersten Zeile nicht", TEXT),
        ("thema Raumfahrt", "Einen Themenkanal „Raumfahrt“ gibt es nicht", TEXT),
        ("themen pausierte", "nur zusammen mit", TEXT),
        ("tandems am 30.11. um 9 Uhr", "in der Vergangenheit", TEXT),
        ("tandems am 3.12.", "auch die Uhrzeit", TEXT),
        ("tandems am 31.2. um 9", "Dieses Datum gibt es nicht", TEXT),
        ("tandems", "zu lang für eine Matrix-Nachricht", "Wort " * 14_000),
    ]
    for line, expected, text in cases:
        answer = "\n".join(m.body for m in await bot.say(f"!rundschreiben {line}\n{text}", sender=COORD))
        assert expected in answer, (line, answer)
        assert "Es wurde nichts gesendet" in answer or "Vorschau" not in answer
    answer = await bot.text("!rundschreiben thema Raumfahrt\nText", sender=COORD)
    names = sorted(
        r.name for r in bot.matrix.rooms.values() if r.name and not r.name.startswith(("Tandem", "Klein"))
    )
    assert f"Themenkanäle: {', '.join(names)}" in answer
    example = await bot.text("!rundschreiben quatsch\nText", sender=COORD)
    assert "!rundschreiben tandems am 3.12. um 9 Uhr" in example
    # no recipients: the paused tandem's room is the only one, and it is not asked for
    await bot.db.execute("UPDATE tandems SET state = 'paused' WHERE id = 1")
    assert "ginge an niemanden" in await bot.text("!rundschreiben tandems\nText", sender=COORD)
    assert (await bot.db.fetchone("SELECT count(*) FROM broadcasts"))[0] == 0
    assert announcements(bot) == []


async def test_a_text_just_under_the_event_limit_is_accepted(bot):
    # the text stands twice in the event (HTML and plain) and grows by a third when encrypted
    preview, _ = await compose(bot, "tandems", "Wort " * 4_000)
    assert preview is not None
    size = bot.matrix.event_bytes(preview.reply.__class__("broadcast", {"text": "Wort " * 4_000}))
    assert 50_000 < size <= 65_536


async def test_members_are_refused_and_an_english_name_works_for_coordinators(bot):
    refused = await bot.text(f"!rundschreiben tandems\n{TEXT}", sender=ANNA)
    assert "Koordination" in refused or "coordinator" in refused
    assert (await bot.db.fetchone("SELECT count(*) FROM broadcasts"))[0] == 0
    await compose(bot, "tandems")
    await bot.say("!broadcast send 1", sender=ANNA)
    assert announcements(bot) == []
    await bot.say(f"!broadcast tandems tomorrow 9am\n{TEXT}", sender=COORD)
    row = await bot.db.fetchone("SELECT send_at FROM broadcasts WHERE id = 2")
    assert datetime.fromtimestamp(row[0], UTC) == datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


async def reaction(bot, sender: str, target: str, key: str, event_id: str) -> bool:
    return await bot.dispatcher.react(Reaction(sender, "!dm:localhost", event_id, target, key, 0))


async def test_a_check_mark_by_the_author_confirms_anyone_elses_does_nothing(bot):
    preview, _ = await compose(bot, "tandems")
    assert await reaction(bot, OTHER_COORD, preview.event_id, "✅", "$r1")
    assert await reaction(bot, ANNA, preview.event_id, "✅", "$r2")
    await deliveries(bot.services).wait()
    assert announcements(bot) == []
    assert await reaction(bot, COORD, preview.event_id, "✅️", "$r3")  # with a variation selector
    await deliveries(bot.services).wait()
    assert len(announcements(bot)) == 1
    # the same reaction again (a replayed sync) or the command afterwards sends nothing more
    assert await reaction(bot, COORD, preview.event_id, "✅", "$r3")
    assert "kein offener Entwurf" in await bot.text("!rundschreiben senden 1", sender=COORD)
    await deliveries(bot.services).wait()
    assert len(announcements(bot)) == 1
    assert not await reaction(bot, COORD, "$not-a-preview", "✅", "$r4")


async def test_a_cross_cancels_and_only_the_author_confirms_by_command(bot):
    preview, _ = await compose(bot, "tandems")
    assert "nur diese Person" in await bot.text("!rundschreiben senden 1", sender=OTHER_COORD)
    await reaction(bot, COORD, preview.event_id, "❌", "$x1")
    assert (await BroadcastRepository(bot.db).get(1)).state == "cancelled"
    assert "kein offener Entwurf" in await bot.text("!rundschreiben senden 1", sender=COORD)
    assert announcements(bot) == []


async def test_drafts_expire(bot):
    await compose(bot, "tandems")
    bot.clock.advance(25 * 3600)
    assert "verfallen" in await bot.text("!rundschreiben senden 1", sender=COORD)
    assert announcements(bot) == []
    assert "(verfallen)" in await bot.text("!rundschreiben liste", sender=COORD)


async def test_a_scheduled_broadcast_goes_once_at_its_time_and_can_be_cancelled(bot):
    await compose(bot, "tandems am 3.12. um 9 Uhr")
    answer = await bot.text("!rundschreiben senden 1", sender=COORD)
    assert "geplant für 3. Dezember 2026, 09:00 Uhr" in answer
    await compose(bot, "themen", "Zweite")
    await bot.say("!rundschreiben senden 2 morgen 8 Uhr", sender=COORD)
    listing = await bot.text("!rundschreiben liste", sender=COORD)
    assert "Nr. 1 am 3. Dezember 2026, 09:00 Uhr" in listing and "Nr. 2 am 2. Dezember 2026" in listing
    # a scheduled one may be called off by any coordinator
    assert "ist verworfen" in await bot.text("!rundschreiben abbrechen 2", sender=OTHER_COORD)
    assert (await BroadcastRepository(bot.db).get(2)).state == "cancelled"
    await run_until(bot, datetime(2026, 12, 3, 7, 59, tzinfo=UTC))
    await deliveries(bot.services).wait()
    assert announcements(bot) == []
    await run_until(bot, datetime(2026, 12, 4, tzinfo=UTC))
    await deliveries(bot.services).wait()
    [only] = announcements(bot)
    assert only.room_id == rooms(bot, "Tandem")[0]
    # replaying the occurrence (a restart before it was confirmed) starts nothing again
    await bot.services.schedules.replay_pending()
    await bot.services.schedules.drain()
    await deliveries(bot.services).wait()
    assert len(announcements(bot)) == 1


async def test_failures_are_reported_in_plain_words_and_retry_sends_only_those(bot):
    tandem = rooms(bot, "Tandem")[0]
    innenstadt, wohnen = rooms(bot, "Innenstadt")[0], rooms(bot, "Wohnen")[0]
    bot.matrix.refuse[innenstadt] = "M_FORBIDDEN"
    bot.matrix.refuse[wohnen] = "M_NOT_FOUND"
    await compose(bot, "tandems themen")
    await sent(bot, 1)
    [report] = [m for m in bot.matrix.sent if m.reply.template == "broadcast_report"]
    assert "1 zugestellt, 0 übersprungen, 2 fehlgeschlagen" in report.body
    names = {r.room_id: r.name for r in bot.matrix.rooms.values()}
    assert f"Themenkanal {names[innenstadt]}: der Bot darf in diesem Raum nicht schreiben" in report.body
    assert f"Themenkanal {names[wohnen]}: den Raum gibt es nicht mehr" in report.body
    assert "!rundschreiben wiederholen 1" in report.body
    status = await bot.text("!rundschreiben status 1", sender=COORD)
    assert "1 zugestellt" in status and "2 fehlgeschlagen" in status
    del bot.matrix.refuse[innenstadt]
    await bot.say("!rundschreiben wiederholen 1", sender=COORD)
    await deliveries(bot.services).wait()
    assert sorted(m.room_id for m in announcements(bot)) == sorted([tandem, innenstadt])
    counts = await BroadcastRepository(bot.db).counts(1)
    assert (counts.sent, counts.failed) == (2, 1)


async def test_corrections_and_retraction_reach_every_room_once_and_pins_follow(bot):
    channels = rooms(bot, "Innenstadt") + rooms(bot, "Wohnen")
    bot.matrix.refuse["never"] = "M_FORBIDDEN"
    await compose(bot, "themen tandems anheften")
    await sent(bot, 1)
    originals = {m.room_id: m.event_id for m in announcements(bot)}
    assert len(originals) == 3
    for room_id in channels:
        assert bot.matrix.rooms[room_id].state[("m.room.pinned_events", "")]["pinned"] == [originals[room_id]]
    assert ("m.room.pinned_events", "") not in bot.matrix.rooms[rooms(bot, "Tandem")[0]].state
    correction = "!rundschreiben ändern 1\nDie Transferwerkstatt ist am **11. Dezember**."
    answer = await bot.text(correction, sender=COORD)
    assert "Korrektur" in answer
    await deliveries(bot.services).wait()
    edits = [m for m in bot.matrix.sent if m.reply.template == "broadcast" and m.replaces]
    assert sorted((m.room_id, m.replaces) for m in edits) == sorted(originals.items())
    assert all("11. Dezember" in m.body for m in edits)
    # the edit pass resumed after a stop edits nothing twice
    await BroadcastRepository(bot.db).update(1, op_done=0)
    await resume_unfinished(bot.services)
    await deliveries(bot.services).wait()
    assert len([m for m in bot.matrix.sent if m.reply.template == "broadcast" and m.replaces]) == 3
    await bot.say("!rundschreiben zurückziehen 1", sender=COORD)
    await deliveries(bot.services).wait()
    assert sorted(bot.matrix.redactions) == sorted(originals.items())
    for room_id in channels:
        assert bot.matrix.rooms[room_id].state[("m.room.pinned_events", "")]["pinned"] == []
    status = await bot.text("!rundschreiben status 1", sender=COORD)
    assert "zurückgezogen" in status and "einmal korrigiert" in status
    assert "zurückgezogen" in await bot.text("!rundschreiben ändern 1\nNeu", sender=COORD)


async def test_progress_is_one_message_edited_in_place_at_least_every_tenth(bot):
    for i in range(20):
        await bot.say(f"!thema anlegen Kanal{i:02d}", sender=COORD)
    await compose(bot, "themen")
    seen: list[int] = []
    original = Deliveries._maybe_report

    async def watch(self, work):
        seen.append(work.done)
        await original(self, work)

    Deliveries._maybe_report = watch  # type: ignore[method-assign]
    try:
        await sent(bot, 1)
    finally:
        Deliveries._maybe_report = original  # type: ignore[method-assign]
    progress = [m for m in bot.matrix.sent if m.reply.template == "broadcast_progress"]
    first, *edits = progress
    assert first.replaces is None and len(edits) >= 7
    assert all(m.replaces == first.event_id for m in edits)
    shown = [int(re.search(r": (\d+) von 22", m.body).group(1)) for m in progress]
    assert shown[0] == 0 and shown[-1] == 22 and "fertig" in edits[-1].body
    assert all(0 < b - a <= 3 for a, b in itertools.pairwise(shown[:-1]))  # 10 % of 22, rounded up
    assert shown[-1] - shown[-2] <= 3
    assert seen  # every finished room was looked at
    assert len([m for m in bot.matrix.sent if m.reply.template == "broadcast_report"]) == 1


async def test_a_stopped_broadcast_resumes_and_no_room_gets_it_twice(bot):
    for i in range(12):
        await bot.say(f"!thema anlegen Kanal{i:02d}", sender=COORD)
    await compose(bot, "themen")
    posted: list[str] = []
    original_send = bot.matrix.send

    class Killed(BaseException):
        """The process dies (nothing after this point runs)."""

    async def send_and_stop(reply, request=None):
        event_id = await original_send(reply, request)
        if reply.template == "broadcast":
            posted.append(reply.room_id)
            if len(posted) == 5:  # the process dies after the homeserver took the 5th
                raise Killed
        return event_id

    bot.matrix.send = send_and_stop
    bot.services.settings.broadcasts.concurrency = 1
    await bot.say("!rundschreiben senden 1", sender=COORD)
    await deliveries(bot.services).wait()
    bot.matrix.send = original_send
    counts = await BroadcastRepository(bot.db).counts(1)
    assert counts.sent == 4 and counts.pending == 10  # the 5th went out, unrecorded
    # a new process: the start-up hook resumes, the 5th is sent again with the same key
    bot.services.cache.clear()
    assert await resume_unfinished(bot.services) == 1
    await deliveries(bot.services).wait()
    per_room: dict[str, int] = {}
    for m in announcements(bot):
        per_room[m.room_id] = per_room.get(m.room_id, 0) + 1
    assert len(per_room) == 14 and set(per_room.values()) == {1}
    assert (await BroadcastRepository(bot.db).get(1)).state == "done"


async def test_retracting_while_sending_stops_what_is_not_out(bot):
    for i in range(6):
        await bot.say(f"!thema anlegen Kanal{i:02d}", sender=COORD)
    await compose(bot, "themen")
    original_send = bot.matrix.send
    count = 0

    async def send_then_retract(reply, request=None):
        nonlocal count
        event_id = await original_send(reply, request)
        if reply.template == "broadcast":
            count += 1
            if count == 2:
                await bot.say("!rundschreiben zurückziehen 1", sender=COORD)
        return event_id

    bot.matrix.send = send_then_retract
    bot.services.settings.broadcasts.concurrency = 1
    await sent(bot, 1)
    counts = await BroadcastRepository(bot.db).counts(1)
    assert counts.sent == 2 and counts.skipped == 6 and counts.redacted == 2
    assert len(bot.matrix.redactions) == 2
    # each pass has its own progress message, edited in place
    progress = [m for m in bot.matrix.sent if m.reply.template == "broadcast_progress"]
    posted = [m for m in progress if m.replaces is None]
    assert len(posted) == 2 and "Rücknahme" in posted[1].body
    assert {m.replaces for m in progress if m.replaces} <= {p.event_id for p in posted}


async def test_a_broadcast_confirmed_for_later_without_its_schedule_gets_it_at_start(bot):
    from commands.broadcasts import resume_broadcasts

    await compose(bot, "tandems morgen 9 Uhr")
    repo = BroadcastRepository(bot.db)
    await repo.move(1, ["draft"], "scheduled", confirmed_at=0)  # the crash came before the schedule
    await resume_broadcasts(bot.services)
    assert (await repo.get(1)).schedule_id is not None
    await run_until(bot, datetime(2026, 12, 2, 9, tzinfo=UTC))
    await deliveries(bot.services).wait()
    assert len(announcements(bot)) == 1


def test_moments_in_german_and_english():
    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    expected = datetime(2026, 12, 3, 9, 0, tzinfo=berlin)
    for text in (
        "am 3.12. um 9 Uhr",
        "2026-12-03 09:00",
        "3.12.2026 9:00",
        "am 3. Dezember um 9 Uhr",
        "on 3 December at 9am",
        "December 3rd 9:00",
        "Thursday 9am",
        "übermorgen 9 Uhr",
    ):
        assert parse_moment(text, now, berlin) == expected, text
    assert parse_moment("um 12 am 3.12.", now, berlin).hour == 12  # German "am", not a.m.
    assert parse_moment("am 15.1. um 9", now, berlin).year == 2027  # the next 15 January
    for text, problem in (
        ("am 30.11. um 9 Uhr", "past"),
        ("um 9 Uhr", "past"),
        ("am 3.12.", "no_time"),
        ("am 31.2. um 9", "bad_date"),
        ("nächste Woche", "unknown_word"),
        ("2028-01-01 09:00", "too_far"),
        ("heute 25 Uhr", "bad_time"),
    ):
        with pytest.raises(MomentError) as found:
            parse_moment(text, now, berlin)
        assert found.value.problem == problem, text


def test_a_send_the_homeserver_refuses_is_classified():
    from commands.broadcast_delivery import reason_of

    assert reason_of(MatrixError("User @b:x not in room !r:x", "M_FORBIDDEN")) == ("not_in_room", False)
    assert reason_of(MatrixError("You don't have permission to post", "M_FORBIDDEN")) == ("forbidden", False)
    assert reason_of(MatrixError("Unknown room", "M_NOT_FOUND")) == ("room_gone", False)
    assert reason_of(MatrixError("sending failed after 4 attempts", None))[1] is True
