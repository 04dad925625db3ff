"""Calendar rules for scheduled work: "every 2 weeks on Tuesday at 10:00" in a time zone.

A ``Rhythm`` is a calendar rule, never an offset: its occurrences are computed by APScheduler's
triggers (calendar interval for weeks, cron for months) in the rule's time zone, so a 10:00 rule
stays at 10:00 local time across the daylight-saving changes. ``parse_rhythm`` reads the words
people write, in German and English; anything it cannot read is refused with a reason, never
guessed.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from commands.parsing import is_digits

if TYPE_CHECKING:
    from apscheduler.triggers.base import BaseTrigger

Kind = Literal["weekly", "monthly", "once"]
WEEKDAYS_CRON = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ORDINALS_CRON = {1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 5: "5th", -1: "last"}
MONTH_STEPS = (1, 2, 3, 4, 6, 12)
# Weekly rules count their weeks from a Monday; equal rules share one trigger (see ``_trigger``).
WEEKS_EPOCH = date(2020, 1, 6)


class RhythmError(ValueError):
    """Words that do not make a rhythm; ``problem`` is a key for the reply template."""

    def __init__(self, problem: str, **detail: Any):
        super().__init__(problem)
        self.problem = problem
        self.detail = detail


@dataclass(frozen=True)
class Rhythm:
    """``weekly``: every ``interval`` weeks on ``weekday`` (0 = Monday), counted from the week of
    ``anchor``; ``monthly``: every ``interval`` months on the ``nth`` weekday (-1 = last) or on
    ``day`` of the month; ``once``: at ``at`` (local date and time)."""

    kind: Kind
    hour: int = 10
    minute: int = 0
    interval: int = 1
    weekday: int | None = None
    nth: int | None = None
    day: int | None = None
    anchor: str | None = None  # ISO date: weekly rules count their weeks from here
    at: str | None = None  # ISO local date-time of a one-off

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None}, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> Rhythm:
        return cls(**json.loads(raw))

    def anchored(self, today: date) -> Rhythm:
        """A weekly rule counts its weeks from the first matching weekday on or after ``today``.
        The anchor is stored as the earliest equivalent date after ``WEEKS_EPOCH`` (the same
        weekday, a whole number of intervals earlier), so equal rhythms compare equal."""
        if self.kind != "weekly" or self.weekday is None:
            return self
        first = today + timedelta(days=(self.weekday - today.weekday()) % 7)
        weeks = ((first - WEEKS_EPOCH).days // 7) % self.interval
        anchor = WEEKS_EPOCH + timedelta(weeks=weeks, days=self.weekday)
        return Rhythm(**{**asdict(self), "anchor": anchor.isoformat()})

    def next_after(self, previous: datetime | None, now: datetime, tz: str) -> datetime | None:
        """The first occurrence after ``previous`` (the last one due) that is not before ``now``
        when ``previous`` is None; timezone-aware, in ``tz``. None: no more occurrences."""
        return next_fire(self.to_json(), tz, previous, now)


@lru_cache(maxsize=512)
def _trigger(rule: str, tz: str) -> BaseTrigger:
    """Triggers are built once per distinct rule: a cron trigger costs about 2 KB and 0.25 ms,
    and thousands of tandems share a handful of rhythms. APScheduler's triggers are imported
    with the first: the scheduling engine starts after the first answers."""
    from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.date import DateTrigger

    r = Rhythm.from_json(rule)
    zone = ZoneInfo(tz)
    if r.kind == "weekly":
        anchor = date.fromisoformat(r.anchor) if r.anchor else WEEKS_EPOCH
        if r.weekday is not None:
            anchor += timedelta(days=(r.weekday - anchor.weekday()) % 7)
        return CalendarIntervalTrigger(
            weeks=r.interval, hour=r.hour, minute=r.minute, start_date=anchor, timezone=zone
        )
    if r.kind == "monthly":
        month = "*" if r.interval == 1 else f"1/{r.interval}"
        if r.day is not None:
            day: str = str(r.day)
        else:
            day = f"{ORDINALS_CRON[r.nth or 1]} {WEEKDAYS_CRON[r.weekday or 0]}"
        return CronTrigger(month=month, day=day, hour=r.hour, minute=r.minute, timezone=zone)
    if r.at is None:
        raise ValueError("a one-off rhythm needs a time")
    return DateTrigger(datetime.fromisoformat(r.at).replace(tzinfo=zone), timezone=zone)


def next_fire(rule: str, tz: str, previous: datetime | None, now: datetime) -> datetime | None:
    trigger = _trigger(rule, tz)
    if previous is None:
        # APScheduler's calendar interval answers its start date for a first call, whatever
        # ``now`` is: walk forward to the first occurrence at or after now.
        candidate = trigger.get_next_fire_time(None, now)
        while candidate is not None and candidate < now:
            candidate = trigger.get_next_fire_time(candidate, now)
        return candidate
    nxt = trigger.get_next_fire_time(previous, previous)
    # a DateTrigger or a cron trigger may answer ``previous`` itself
    while nxt is not None and nxt <= previous:
        nxt = trigger.get_next_fire_time(nxt, nxt + timedelta(seconds=1))
    return nxt


# --- reading what people write ----------------------------------------------------------------

WEEKDAY_WORDS = {
    0: ("montag", "montags", "mo", "monday", "mondays", "mon"),
    1: ("dienstag", "dienstags", "di", "tuesday", "tuesdays", "tue", "tues"),
    2: ("mittwoch", "mittwochs", "mi", "wednesday", "wednesdays", "wed"),
    3: ("donnerstag", "donnerstags", "do", "thursday", "thursdays", "thu", "thurs"),
    4: ("freitag", "freitags", "fr", "friday", "fridays", "fri"),
    5: ("samstag", "samstags", "sonnabend", "sa", "saturday", "saturdays", "sat"),
    6: ("sonntag", "sonntags", "so", "sunday", "sundays", "sun"),
}
WEEKDAY_OF = {word: day for day, words in WEEKDAY_WORDS.items() for word in words}
NUMBER_WORDS = {
    "ein": 1, "einen": 1, "eine": 1, "one": 1, "zwei": 2, "two": 2, "drei": 3, "three": 3,
    "vier": 4, "four": 4, "fünf": 5, "five": 5, "sechs": 6, "six": 6,
}  # fmt: skip
ORDINAL_WORDS = {
    "ersten": 1, "erste": 1, "erster": 1, "1.": 1, "first": 1, "1st": 1,
    "zweiten": 2, "zweite": 2, "zweiter": 2, "2.": 2, "second": 2, "2nd": 2,
    "dritten": 3, "dritte": 3, "dritter": 3, "3.": 3, "third": 3, "3rd": 3,
    "vierten": 4, "vierte": 4, "vierter": 4, "4.": 4, "fourth": 4, "4th": 4,
    "letzten": -1, "letzte": -1, "letzter": -1, "last": -1,
}  # fmt: skip
FILLER = {"am", "um", "jeden", "jede", "jedes", "on", "at", "the", "every", "each", "alle", "im", "in", "uhr"}
TIME = re.compile(r"^([0-9]{1,2})(?:[:.]([0-9]{2}))?(am|pm|h|uhr)?$")
DAY_OF_MONTH = re.compile(r"^([0-9]{1,2})(?:\.|st|nd|rd|th)$")


def _ascii_int(word: str) -> int | None:
    return int(word) if is_digits(word) else None


def parse_rhythm(text: str) -> Rhythm:
    """Read a rhythm: ``alle 2 Wochen dienstags 10 Uhr``, ``monatlich am ersten Montag 9:30``,
    ``every 2 weeks tuesday 10:00``, ``monthly on the last friday at 9am``, ``wöchentlich
    mittwochs 14:30``, ``monatlich am 15. um 9 Uhr``. Raises ``RhythmError`` otherwise."""
    words = [w for w in re.split(r"[\s,]+", text.lower().strip()) if w]
    if not words:
        raise RhythmError("empty")
    kind: Kind | None = None
    interval: int | None = None
    weekday = nth = day = hour = minute = None
    pending_number: int | None = None
    i = 0
    while i < len(words):
        word = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else ""
        number = NUMBER_WORDS.get(word, _ascii_int(word))
        if word in ("wöchentlich", "weekly", "woche", "week"):
            kind, interval = "weekly", interval or pending_number or 1
        elif word in ("wochen", "weeks"):
            kind, interval = "weekly", pending_number or 1
        elif word in ("zweiwöchentlich", "vierzehntägig", "14-tägig", "biweekly", "fortnightly"):
            kind, interval = "weekly", 2
        elif word in ("other", "zweite") and nxt in ("week", "woche"):
            kind, interval = "weekly", 2
            i += 1
        elif word in ("monatlich", "monthly", "monat", "month"):
            kind, interval = "monthly", interval or pending_number or 1
        elif word in ("monate", "months"):
            kind, interval = "monthly", pending_number or 1
        elif word in ORDINAL_WORDS and (nxt in WEEKDAY_OF or word in ("last", "letzten")):
            nth = ORDINAL_WORDS[word]
        elif word in WEEKDAY_OF:
            weekday = WEEKDAY_OF[word]
        elif number is not None and nxt in ("wochen", "weeks", "monate", "months"):
            pending_number = number
        elif (m := DAY_OF_MONTH.match(word)) and kind == "monthly" and nth is None:
            day = int(m.group(1))
        elif (m := TIME.match(word)) and hour is None:
            hour, minute = int(m.group(1)), int(m.group(2) or 0)
            suffix = m.group(3) or (nxt if nxt in ("am", "pm", "uhr") else None)
            if suffix == "pm" and hour < 12:
                hour += 12
            elif suffix == "am" and hour == 12:
                hour = 0
            if suffix in ("am", "pm") and m.group(3) is None:
                i += 1
        elif word not in FILLER:
            raise RhythmError("unknown_word", word=word)
        i += 1
    if kind is None:
        kind = "weekly" if weekday is not None else None
    if kind is None:
        raise RhythmError("no_interval")
    if hour is None or minute is None:
        raise RhythmError("no_time")
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise RhythmError("bad_time", hour=hour, minute=minute)
    interval = interval or 1
    if kind == "weekly":
        if weekday is None:
            raise RhythmError("no_weekday")
        if not 1 <= interval <= 8:
            raise RhythmError("bad_interval", interval=interval)
        return Rhythm("weekly", hour, minute, interval, weekday=weekday)
    if interval not in MONTH_STEPS:
        raise RhythmError("bad_interval", interval=interval)
    if day is not None:
        if not 1 <= day <= 28:
            raise RhythmError("bad_day", day=day)
        return Rhythm("monthly", hour, minute, interval, day=day)
    if weekday is None:
        raise RhythmError("no_weekday")
    return Rhythm("monthly", hour, minute, interval, weekday=weekday, nth=nth or 1)


def describe(r: Rhythm) -> dict[str, Any]:
    """Data for templates: what the rule says, without words (templates word it per locale)."""
    return {
        "kind": r.kind,
        "interval": r.interval,
        "weekday": r.weekday,
        "nth": r.nth,
        "day": r.day,
        "time": time(r.hour, r.minute),
        "at": r.at,
    }
