"""A lost session (the homeserver no longer takes the bot's token) is nobody's failure: the
dispatcher does not answer it with the error notice nor count the command as handled, and
scheduled work and broadcasts stay pending and go out once the bot has logged in again."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import commands.broadcast_delivery as broadcast_delivery
import commands.scheduling as scheduling
from commands.broadcast_delivery import deliveries
from commands.context import Request, SessionLost
from commands.rhythm import parse_rhythm
from storage.broadcasts import BroadcastRepository
from tests.local_bot import FakeClock
from tests.test_broadcasts import announcements, bot, compose  # noqa: F401 (the fixture)
from tests.test_scheduling import Outbox, db, engine  # noqa: F401 (the fixture)
from tests.test_tandems import COORD

MAYOR = "@buergermeisterin:localhost"


def lost() -> SessionLost:
    return SessionLost("cannot send: Invalid access token passed.", "M_UNKNOWN_TOKEN")


async def test_a_lost_session_while_answering_is_raised_without_the_error_notice(local_bot):
    tried: list[str] = []
    handled: list[object] = []
    local_bot.dispatcher.listeners.append(handled.append)

    async def send(reply):
        tried.append(reply.template)
        raise lost()

    request = Request(MAYOR, "!dm:localhost", "!ping", event_id="$ping", timestamp_ms=1, is_direct=True)
    with pytest.raises(SessionLost):
        await local_bot.dispatcher.handle(request, send)
    assert tried == ["ping"]  # the answer only: no "error_internal" notice was tried
    assert handled == []  # not counted or audited as a handled (failed) command


async def test_a_lost_session_inside_a_handler_and_in_plain_text_is_raised(local_bot, declare):
    async def needs_the_homeserver(ctx):
        raise lost()  # say, creating a room

    declare("sitzung_test", summary="braucht den Homeserver")(needs_the_homeserver)
    tried: list[str] = []

    async def send(reply):
        tried.append(reply.template)
        raise lost()

    for body in ("!sitzung_test", "Wer darf mitmachen?"):
        request = Request(MAYOR, "!dm:localhost", body, event_id="$e", timestamp_ms=1, is_direct=True)
        with pytest.raises(SessionLost):
            await local_bot.dispatcher.handle(request, send)
    assert "error_internal" not in tried


async def test_a_broadcast_send_in_a_lost_session_stays_pending_and_goes_out_afterwards(bot, monkeypatch):  # noqa: F811
    """Every send fails while the session is lost (longer than the transient rounds a row may
    fail); no row is marked failed, and each room gets the announcement once afterwards."""
    monkeypatch.setattr(broadcast_delivery, "SESSION_PAUSE", 0.01)
    await compose(bot, "tandems themen")
    original_send = bot.matrix.send
    refused: list[str] = []

    async def send(reply, request=None):
        if reply.template == "broadcast" and len(refused) < 8:
            refused.append(reply.room_id)
            raise lost()
        return await original_send(reply, request)

    bot.matrix.send = send
    await bot.say("!rundschreiben senden 1", sender=COORD)
    await deliveries(bot.services).wait()
    assert len(refused) == 8
    per_room: dict[str, int] = {}
    for message in announcements(bot):
        per_room[message.room_id] = per_room.get(message.room_id, 0) + 1
    assert len(per_room) == 3 and set(per_room.values()) == {1}
    counts = await BroadcastRepository(bot.db).counts(1)
    assert (counts.sent, counts.failed, counts.pending) == (3, 0, 0)
    [report] = [m for m in bot.matrix.sent if m.reply.template == "broadcast_report"]
    assert "3 zugestellt, 0 übersprungen, 0 fehlgeschlagen" in report.body


class LostOutbox(Outbox):
    """The homeserver refuses the bot's token for the first ``lost`` deliveries."""

    def __init__(self, lost: int) -> None:
        super().__init__()
        self.lost = lost

    async def __call__(self, services, occurrence):
        if self.lost:
            self.lost -= 1
            self.calls.append(occurrence)
            raise lost()
        return await super().__call__(services, occurrence)


async def test_a_check_in_in_a_lost_session_stays_pending_and_is_delivered_afterwards(db, monkeypatch):  # noqa: F811
    monkeypatch.setattr(scheduling, "SESSION_PAUSE", 0.01)
    clock = FakeClock(datetime(2026, 12, 1, 8, 0, tzinfo=UTC))
    outbox = LostOutbox(lost=3)
    engine_ = await engine(db, clock, outbox)
    schedule = await engine_.add("checkin", "t", parse_rhythm("wöchentlich dienstags 10 Uhr"))
    clock.advance(3600 + 60)
    assert await engine_.run_due() == 1
    await engine_.drain()
    assert len({c.key for c in outbox.calls}) == 1 and len(outbox.calls) == 4  # the same key each time
    assert len(outbox.events) == 1
    [occurrence] = await engine_.repo.occurrences(schedule.id)
    assert occurrence["state"] == "delivered"


async def test_a_check_in_still_refused_at_a_stop_stays_pending_for_the_next_start(db, monkeypatch):  # noqa: F811
    monkeypatch.setattr(scheduling, "SESSION_PAUSE", 3600)
    clock = FakeClock(datetime(2026, 12, 1, 8, 0, tzinfo=UTC))
    outbox = LostOutbox(lost=1)
    first = await engine(db, clock, outbox)
    await first.add("checkin", "t", parse_rhythm("wöchentlich dienstags 10 Uhr"))
    clock.advance(3600 + 60)
    await first.run_due()
    while not outbox.calls:  # the first attempt was refused; the retry waits
        await scheduling.asyncio.sleep(0.01)
    await first.stop()  # e.g. a configured access_token that is no longer valid ends the process
    assert await first.repo.pending() != []
    second = await engine(db, clock, outbox)
    assert await second.replay_pending() == 1
    await second.drain()
    assert len(outbox.events) == 1 and await second.repo.pending() == []


async def test_a_lost_session_is_not_taken_for_a_rooms_refusal_by_a_command(local_bot):
    """Handlers that handle a room's refusal (``MatrixError``: not a member, unknown user) do
    not swallow a lost session: before, ``user_exists`` failing that way made the tandem
    command answer that the partner does not exist. Now nothing is answered or made, and the
    command is replayed after the new login."""
    from tests.test_tandems import ANNA, BEN, CREATE, profiled

    await profiled(local_bot, (ANNA, "Wittenberge", ["Innenstadt"]), (BEN, "Bad Berleburg", ["Innenstadt"]))
    sent: list[str] = []
    original_send = local_bot.matrix.send

    async def send(reply, request=None):
        sent.append(reply.template)
        return await original_send(reply, request)

    async def user_exists(user_id):
        raise lost()

    local_bot.matrix.send = send
    local_bot.matrix.user_exists = user_exists
    with pytest.raises(SessionLost):
        await local_bot.say(CREATE, sender=COORD)
    assert "tandem_problem" not in sent
    assert await local_bot.db.fetchone("SELECT 1 FROM tandems") is None
