"""Reading a point in time as people write it: ``am 3.12. um 9 Uhr``, ``2026-12-03 09:00``,
``morgen 14:30``, ``on 3 December at 9am``, ``tomorrow 9:00``.

Used where a coordinator names one moment (a broadcast's sending time). The words are read in
the bot's time zone; what the reader cannot read, a date without a time, and a moment that is
not in the future are refused with a reason, never guessed. A date without a year is the next
such date, unless that date lies less than ``RECENT_DAYS`` back: then it was meant for this year
and is refused as past.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from commands.context import Services

RECENT_DAYS = 30
MAX_AHEAD_DAYS = 366

MONTHS = {
    1: ("januar", "jänner", "jan", "january"),
    2: ("februar", "feb", "february"),
    3: ("märz", "maerz", "mär", "mrz", "march", "mar"),
    4: ("april", "apr"),
    5: ("mai", "may"),
    6: ("juni", "jun", "june"),
    7: ("juli", "jul", "july"),
    8: ("august", "aug"),
    9: ("september", "sep", "sept"),
    10: ("oktober", "okt", "october", "oct"),
    11: ("november", "nov"),
    12: ("dezember", "dez", "december", "dec"),
}
MONTH_OF = {word: month for month, words in MONTHS.items() for word in words}
WEEKDAYS = {
    0: ("montag", "monday", "mon"),
    1: ("dienstag", "tuesday", "tue"),
    2: ("mittwoch", "wednesday", "wed"),
    3: ("donnerstag", "thursday", "thu"),
    4: ("freitag", "friday", "fri"),
    5: ("samstag", "sonnabend", "saturday", "sat"),
    6: ("sonntag", "sunday", "sun"),
}
WEEKDAY_OF = {word: day for day, words in WEEKDAYS.items() for word in words}
RELATIVE = {"heute": 0, "today": 0, "morgen": 1, "tomorrow": 1, "übermorgen": 2}
FILLER = {"am", "um", "on", "at", "the", "den", "dem", "of", "uhr", "o'clock", "ab", "from"}

ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:t(\d{1,2}):(\d{2})(?::(\d{2}))?)?$")
GERMAN_DATE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{2}|\d{4})?$")  # 3.12. / 3.12.2026 / 3.12.26
DAY = re.compile(r"^(\d{1,2})(?:\.|st|nd|rd|th)?$")  # the 3 in "3. Dezember", "December 3rd"
YEAR = re.compile(r"^\d{4}$")
TIME = re.compile(r"^(\d{1,2})(?:[:.](\d{2})(?::(\d{2}))?)?(am|pm|h|uhr)?$")


class MomentError(ValueError):
    """Words that do not name a moment; ``problem`` is a key for the reply template."""

    def __init__(self, problem: str, **detail: Any):
        super().__init__(problem)
        self.problem = problem
        self.detail = detail


def looks_like_moment(word: str) -> bool:
    """Whether a moment could start with ``word`` (to tell it from other words on a line)."""
    word = word.lower().rstrip(",")
    return (
        word in ("am", "um", "on", "at")
        or word in RELATIVE
        or word in WEEKDAY_OF
        or word in MONTH_OF
        or (word[:1].isascii() and word[:1].isdigit())
    )


def _ascii_int(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise MomentError("unknown_word", word=text)
    return int(text)


def parse_moment(text: str, now: datetime, zone: ZoneInfo) -> datetime:
    """The moment ``text`` names, timezone-aware in ``zone``; later than ``now``."""
    words = [w for w in re.split(r"[\s,]+", text.lower().strip()) if w]
    if not words:
        raise MomentError("empty")
    today = now.astimezone(zone).date()
    day: date | None = None
    year_given = True
    hour = minute = None
    second = 0
    parts: dict[str, int] = {}
    i = 0
    while i < len(words):
        word = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if m := ISO.match(word):
            day = _date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            if m.group(4):
                hour, minute, second = int(m.group(4)), int(m.group(5)), int(m.group(6) or 0)
        elif m := GERMAN_DATE.match(word):
            year = m.group(3)
            year_given = year is not None
            full = (2000 + int(year) if len(year) == 2 else int(year)) if year else today.year
            day = _date(full, int(m.group(2)), int(m.group(1)))
        elif word in RELATIVE:
            day = today + timedelta(days=RELATIVE[word])
        elif word in WEEKDAY_OF:
            parts["weekday"] = WEEKDAY_OF[word]
        elif word.rstrip(".") in MONTH_OF:
            parts["month"] = MONTH_OF[word.rstrip(".")]
            if (m := DAY.match(nxt)) and "day" not in parts:  # "December 3rd"
                parts["day"] = int(m.group(1))
                i += 1
        elif (m := DAY.match(word)) and nxt.rstrip(".") in MONTH_OF and "day" not in parts:
            parts["day"] = int(m.group(1))  # "3. Dezember", "3 December"
        elif YEAR.match(word) and "month" in parts:
            parts["year"] = int(word)
        elif (m := TIME.match(word)) and hour is None:
            hour, minute, second = int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0)
            after = words[i + 2] if i + 2 < len(words) else ""
            german_am = nxt == "am" and bool(after) and looks_like_moment(after)  # "um 12 am 3.12."
            suffix = m.group(4) or (nxt if nxt in ("am", "pm") and not german_am else None)
            if suffix in ("am", "pm"):
                if not 1 <= hour <= 12:
                    raise MomentError("bad_time", hour=hour, minute=minute)
                hour = hour % 12 + (12 if suffix == "pm" else 0)
                if m.group(4) is None:
                    i += 1
        elif word not in FILLER:
            raise MomentError("unknown_word", word=word)
        i += 1
    if "month" in parts:
        if "day" not in parts:
            raise MomentError("no_day")
        year_given = "year" in parts
        day = _date(parts.get("year", today.year), parts["month"], parts["day"])
    if hour is None or minute is None:
        raise MomentError("no_time")
    if not (0 <= hour <= 23 and 0 <= minute <= 59 and 0 <= second <= 59):
        raise MomentError("bad_time", hour=hour, minute=minute)
    clock = time(hour, minute, second)
    if "weekday" in parts and day is None:
        day = today + timedelta(days=(parts["weekday"] - today.weekday()) % 7)
        if datetime.combine(day, clock, zone) <= now:
            day += timedelta(days=7)
    day = day or today
    moment = datetime.combine(day, clock, zone)
    if not year_given and moment <= now and (today - day).days >= RECENT_DAYS:
        moment = datetime.combine(_date(day.year + 1, day.month, day.day), clock, zone)
    if moment <= now:
        raise MomentError("past", moment=moment)
    if moment - now > timedelta(days=MAX_AHEAD_DAYS):
        raise MomentError("too_far", moment=moment)
    return moment


def _date(year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise MomentError("bad_date", day=day, month=month, year=year) from None


def epoch_now(services: Services) -> int:
    """Now as the whole seconds since the epoch that the repositories store."""
    return int(services.clock.now().timestamp())


def local_moment(services: Services, seconds: int | None) -> datetime | None:
    """A stored moment (seconds since the epoch) in the bot's time zone; None stays None."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).astimezone(services.settings.tz)
