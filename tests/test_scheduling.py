"""The scheduling engine with an injected clock: calendar rules across DST, exactly-once delivery
across restarts and crashes, the grace window, missed occurrences, pause/resume/change."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from commands.context import Services
from commands.rhythm import Rhythm, RhythmError, parse_rhythm
from commands.scheduling import Occurrence, Scheduling
from config.settings import Settings
from storage.database import Database
from tests.local_bot import FakeClock, migrated_database

BERLIN = ZoneInfo("Europe/Berlin")


class Outbox:
    """Stands in for a family's delivery: records keys the way the homeserver deduplicates
    transaction IDs (a repeated key returns the first event, posts nothing)."""

    def __init__(self) -> None:
        self.events: dict[str, str] = {}
        self.calls: list[Occurrence] = []
        self.fail_next = 0

    async def __call__(self, services: Services, occurrence: Occurrence) -> str | None:
        self.calls.append(occurrence)
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("homeserver unreachable")
        return self.events.setdefault(occurrence.key, f"$event{len(self.events)}")

    def local_times(self) -> list[datetime]:
        return [c.due.astimezone(BERLIN) for c in self.calls]


async def engine(db: Database, clock: FakeClock, outbox: Outbox, **kwargs) -> Scheduling:
    services = Services(settings=Settings(), db=db, matrix=None, clock=clock)  # type: ignore[arg-type]
    scheduling = Scheduling(services, {"checkin": outbox}, **kwargs)
    await scheduling.load()
    return scheduling


async def run_until(scheduling: Scheduling, clock: FakeClock, end: datetime, step: float = 3600) -> None:
    """Move the clock in steps as the bot's loop would wake, delivering what is due."""
    while clock.now() < end:
        wake = scheduling.next_wake()
        target = min(end, datetime.fromtimestamp(wake, UTC)) if wake else end
        clock.advance(max(1.0, min(step, (target - clock.now()).total_seconds())))
        await scheduling.run_due()
        await scheduling.drain()


@pytest.fixture
async def db(tmp_path):
    database = await migrated_database(tmp_path / "bot.db")
    yield database
    await database.close()


def test_rhythms_in_german_and_english():
    assert parse_rhythm("alle 2 Wochen dienstags 10 Uhr") == Rhythm("weekly", 10, 0, 2, weekday=1)
    assert parse_rhythm("every 2 weeks tuesday 10:00") == Rhythm("weekly", 10, 0, 2, weekday=1)
    assert parse_rhythm("monatlich am ersten Montag 9:30") == Rhythm("monthly", 9, 30, 1, weekday=0, nth=1)
    assert parse_rhythm("monthly on the last friday at 4pm") == Rhythm("monthly", 16, 0, 1, weekday=4, nth=-1)
    assert parse_rhythm("wöchentlich mittwochs 14.30") == Rhythm("weekly", 14, 30, 1, weekday=2)
    assert parse_rhythm("every other week on thursday at 9am") == Rhythm("weekly", 9, 0, 2, weekday=3)
    assert parse_rhythm("monatlich am 15. um 9 Uhr") == Rhythm("monthly", 9, 0, 1, day=15)
    assert parse_rhythm("vierzehntägig freitags 8:15") == Rhythm("weekly", 8, 15, 2, weekday=4)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("dienstags", "no_time"),
        ("alle 2 Wochen 10 Uhr", "no_weekday"),
        ("täglich 10 Uhr", "unknown_word"),
        ("every 2 weeks tuesday 25:00", "bad_time"),
        ("alle 12 Wochen montags 9 Uhr", "bad_interval"),
        ("monatlich am 31. um 9 Uhr", "bad_day"),
        ("alle ² Wochen montags 9 Uhr", "unknown_word"),
        ("10 Uhr", "no_interval"),
    ],
)
def test_rhythms_that_are_refused_say_why(text, problem):
    with pytest.raises(RhythmError) as caught:
        parse_rhythm(text)
    assert caught.value.problem == problem


async def test_a_ten_o_clock_rule_stays_at_ten_local_time_across_both_dst_changes(db):
    clock = FakeClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    outbox = Outbox()
    scheduling = await engine(db, clock, outbox)
    await scheduling.add("checkin", "tandem-1", parse_rhythm("alle 2 Wochen dienstags 10 Uhr"))
    # a year in one test: summer time starts on 29 March 2026 and ends on 25 October 2026
    await run_until(scheduling, clock, datetime(2027, 3, 1, tzinfo=UTC), step=6 * 3600)
    times = outbox.local_times()
    assert len(times) == 26
    assert {(t.hour, t.minute, t.weekday()) for t in times} == {(10, 0, 1)}
    offsets = {t.utcoffset() for t in times}
    assert offsets == {timedelta(hours=1), timedelta(hours=2)}
    assert all((b - a) == timedelta(weeks=2) for a, b in itertools.pairwise(times))
    # each was delivered on time, once
    assert len({c.key for c in outbox.calls}) == 26
    assert not any(c.late for c in outbox.calls)


async def test_monthly_first_monday_in_the_zone(db):
    clock = FakeClock(datetime(2026, 10, 20, tzinfo=UTC))
    outbox = Outbox()
    scheduling = await engine(db, clock, outbox)
    await scheduling.add("checkin", "t", parse_rhythm("monatlich am ersten Montag 9:30"))
    await run_until(scheduling, clock, datetime(2027, 1, 10, tzinfo=UTC))
    assert [t.strftime("%Y-%m-%d %H:%M") for t in outbox.local_times()] == [
        "2026-11-02 09:30",
        "2026-12-07 09:30",
        "2027-01-04 09:30",
    ]


async def test_a_restart_between_due_time_and_delivery_delivers_late_once(db, tmp_path):
    clock = FakeClock(datetime(2026, 12, 1, 8, 0, tzinfo=UTC))  # Tuesday, 09:00 in Berlin
    outbox = Outbox()
    first = await engine(db, clock, outbox)
    await first.add("checkin", "t", parse_rhythm("wöchentlich dienstags 10 Uhr"))
    # the bot is down from 09:00 to 12:00 local time; the 10:00 occurrence is due meanwhile
    clock.advance(3 * 3600)
    second = await engine(db, clock, outbox)  # a new process: the agenda comes from the database
    await second.run_due()
    await second.drain()
    assert len(outbox.calls) == 1
    assert outbox.calls[0].late and outbox.calls[0].missed == 0
    assert outbox.local_times()[0].hour == 10
    # nothing more until next week
    await second.run_due()
    await second.drain()
    assert len(outbox.calls) == 1
    assert datetime.fromtimestamp(second.next_wake() or 0, UTC).astimezone(BERLIN).day == 8


async def test_a_crash_after_recording_before_sending_sends_once(db):
    clock = FakeClock(datetime(2026, 12, 1, 8, 0, tzinfo=UTC))
    outbox = Outbox()
    first = await engine(db, clock, outbox)
    await first.add("checkin", "t", parse_rhythm("wöchentlich dienstags 10 Uhr"))
    clock.advance(3600 + 60)
    due = first._agenda[0]
    schedule = await first.repo.get(due[1])
    assert schedule is not None
    occurrence = await first._advance(schedule, clock.now())  # recorded as pending ...
    assert occurrence is not None
    # ... and the process dies before the send. The restarted engine replays it with its key.
    second = await engine(db, clock, outbox)
    assert await second.replay_pending() == 1
    await second.drain()
    assert [c.key for c in outbox.calls] == [occurrence.key]
    # a second restart finds nothing pending: delivered is confirmed
    third = await engine(db, clock, outbox)
    assert await third.replay_pending() == 0
    await third.run_due()
    await third.drain()
    assert len(outbox.calls) == 1


async def test_a_crash_during_the_send_replays_with_the_same_key(db):
    clock = FakeClock(datetime(2026, 12, 1, 8, 0, tzinfo=UTC))
    outbox = Outbox()
    first = await engine(db, clock, outbox)
    await first.add("checkin", "t", parse_rhythm("wöchentlich dienstags 10 Uhr"))
    clock.advance(3600 + 60)
    schedule = await first.repo.get(first._agenda[0][1])
    assert schedule is not None
    occurrence = await first._advance(schedule, clock.now())
    assert occurrence is not None
    await outbox(first.services, occurrence)  # the homeserver got it; the confirmation was lost
    second = await engine(db, clock, outbox)
    await second.replay_pending()
    await second.drain()
    # the same key twice: the homeserver's transaction cache posts it once
    assert [c.key for c in outbox.calls] == [occurrence.key, occurrence.key]
    assert len(outbox.events) == 1


async def test_occurrences_beyond_the_grace_window_are_missed_not_sent_in_a_burst(db):
    clock = FakeClock(datetime(2026, 12, 1, 8, 0, tzinfo=UTC))
    outbox = Outbox()
    first = await engine(db, clock, outbox, grace=timedelta(hours=6))
    schedule = await first.add("checkin", "t", parse_rhythm("wöchentlich dienstags 10 Uhr"))
    # down for three weeks and a day: 1, 8 and 15 December are missed; 22 December is the next
    clock.advance(21 * 24 * 3600 + 3 * 3600)  # Tuesday 22 December, 12:00 local: 2 h late
    second = await engine(db, clock, outbox, grace=timedelta(hours=6))
    await second.run_due()
    await second.drain()
    assert len(outbox.calls) == 1
    delivered = outbox.calls[0]
    assert delivered.due.astimezone(BERLIN).date().isoformat() == "2026-12-22"
    assert delivered.late and delivered.missed == 3
    states = [o["state"] for o in await second.repo.occurrences(schedule.id)]
    assert states == ["delivered", "missed", "missed", "missed"]
    # the next one counts from zero again
    await run_until(second, clock, datetime(2026, 12, 30, tzinfo=UTC))
    assert outbox.calls[-1].missed == 0 and len(outbox.calls) == 2


async def test_everything_older_than_the_grace_window_is_missed_and_the_next_is_planned(db):
    clock = FakeClock(datetime(2026, 12, 1, 8, 0, tzinfo=UTC))
    outbox = Outbox()
    first = await engine(db, clock, outbox)
    schedule = await first.add("checkin", "t", parse_rhythm("wöchentlich dienstags 10 Uhr"))
    clock.advance(2 * 24 * 3600)  # Thursday: Tuesday's 10:00 is 2 days old
    second = await engine(db, clock, outbox)
    await second.run_due()
    await second.drain()
    assert outbox.calls == []
    reloaded = await second.repo.get(schedule.id)
    assert reloaded is not None and reloaded.missed == 1
    assert datetime.fromtimestamp(reloaded.next_due or 0, UTC).astimezone(BERLIN).day == 8


async def test_pause_resume_change_and_end(db):
    clock = FakeClock(datetime(2026, 12, 1, 8, 0, tzinfo=UTC))
    outbox = Outbox()
    scheduling = await engine(db, clock, outbox)
    schedule = await scheduling.add("checkin", "t", parse_rhythm("wöchentlich dienstags 10 Uhr"))
    schedule = await scheduling.pause(schedule)
    await run_until(scheduling, clock, datetime(2026, 12, 20, tzinfo=UTC))
    assert outbox.calls == []
    schedule = await scheduling.resume(schedule)
    schedule = await scheduling.change(schedule, parse_rhythm("wöchentlich donnerstags 15 Uhr"))
    await run_until(scheduling, clock, datetime(2026, 12, 28, tzinfo=UTC))
    assert [(t.day, t.hour) for t in outbox.local_times()] == [(24, 15)]
    await scheduling.end(schedule)
    await run_until(scheduling, clock, datetime(2027, 2, 1, tzinfo=UTC))
    assert len(outbox.calls) == 1


async def test_run_now_is_an_extra_occurrence_with_its_own_key(db):
    clock = FakeClock(datetime(2026, 12, 1, 8, 0, tzinfo=UTC))
    outbox = Outbox()
    scheduling = await engine(db, clock, outbox)
    schedule = await scheduling.add("checkin", "t", parse_rhythm("wöchentlich dienstags 10 Uhr"))
    await scheduling.run_now(schedule)
    await run_until(scheduling, clock, datetime(2026, 12, 2, tzinfo=UTC))
    assert len(outbox.calls) == 2 and len({c.key for c in outbox.calls}) == 2


async def test_a_failed_delivery_is_recorded_and_the_rhythm_goes_on(db):
    clock = FakeClock(datetime(2026, 12, 1, 8, 0, tzinfo=UTC))
    outbox = Outbox()
    outbox.fail_next = 1
    scheduling = await engine(db, clock, outbox)
    schedule = await scheduling.add("checkin", "t", parse_rhythm("wöchentlich dienstags 10 Uhr"))
    await run_until(scheduling, clock, datetime(2026, 12, 9, tzinfo=UTC))
    states = [(o["state"], bool(o["detail"])) for o in await scheduling.repo.occurrences(schedule.id)]
    assert states == [("delivered", False), ("failed", True)]


async def test_an_unknown_kind_is_refused(db):
    scheduling = await engine(db, FakeClock(), Outbox())
    with pytest.raises(ValueError, match="no scheduled work"):
        await scheduling.add("nonsense", "t", parse_rhythm("wöchentlich dienstags 10 Uhr"))
