"""The scheduler runs housekeeping daily at 03:30 in the bot's time zone, across DST."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bot.scheduler import build_scheduler
from config.settings import Settings


async def _noop() -> None:
    return None


def test_housekeeping_runs_at_half_past_three_local_time_across_dst():
    scheduler = build_scheduler(Settings(), _noop)
    trigger = scheduler.get_job("housekeeping").trigger
    berlin = ZoneInfo("Europe/Berlin")
    # 03:30 on the day before summer time ends (25 October 2026, 03:00 → 02:00) and on that day
    before = datetime(2026, 10, 23, 12, 0, tzinfo=berlin)
    first = trigger.get_next_fire_time(None, before)
    second = trigger.get_next_fire_time(first, first.replace(hour=4))
    assert (first.hour, first.minute, first.day) == (3, 30, 24)
    assert (second.hour, second.minute, second.day) == (3, 30, 25)
    # the clock went back one hour in between: 25 real hours, offsets +2 then +1
    assert (second.astimezone(UTC) - first.astimezone(UTC)).total_seconds() == 25 * 3600
    assert first.utcoffset().total_seconds() == 7200 and second.utcoffset().total_seconds() == 3600
