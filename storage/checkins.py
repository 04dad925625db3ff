"""The repository of tandem check-ins: the only writer of ``checkins``, ``checkin_answers`` and
``tandem_flags``. Times are whole seconds since the epoch (UTC), as in ``storage.schedules``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage.database import Database

ANSWERS = ("done", "not_yet", "help", "note")


@dataclass(frozen=True)
class Checkin:
    id: int
    tandem_id: int
    occurrence_key: str
    room_id: str
    event_id: str | None
    module_id: str | None
    posted_at: int
    reminder_event_id: str | None
    reminded_at: int | None


@dataclass(frozen=True)
class Answer:
    checkin_id: int
    user_id: str
    answer: str
    source_event_id: str
    note: str | None
    answered_at: int


@dataclass(frozen=True)
class Flags:
    quiet_since: int | None = None
    quiet_alerted: bool = False
    help_since: int | None = None
    room_lost_reported: bool = False


CHECKIN_COLUMNS = (
    "id, tandem_id, occurrence_key, room_id, event_id, module_id, posted_at, reminder_event_id, reminded_at"
)


def _checkin(row: Any) -> Checkin:
    return Checkin(*row)


class CheckinRepository:
    def __init__(self, db: Database):
        self.db = db

    async def record(
        self, *, tandem_id: int, key: str, room_id: str, module_id: str | None, now: int
    ) -> Checkin:
        """The check-in of occurrence ``key``, recorded before it is posted (once per key)."""
        await self.db.execute(
            "INSERT OR IGNORE INTO checkins (tandem_id, occurrence_key, room_id, module_id, posted_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (tandem_id, key, room_id, module_id, now),
        )
        row = await self.db.fetchone(
            f"SELECT {CHECKIN_COLUMNS} FROM checkins WHERE occurrence_key = ?", (key,)
        )
        assert row is not None
        return _checkin(row)

    async def posted(self, checkin_id: int, event_id: str | None) -> None:
        await self.db.execute("UPDATE checkins SET event_id = ? WHERE id = ?", (event_id, checkin_id))

    async def reminded(self, checkin_id: int, event_id: str | None, now: int) -> None:
        await self.db.execute(
            "UPDATE checkins SET reminder_event_id = ?, reminded_at = ? WHERE id = ?",
            (event_id, now, checkin_id),
        )

    async def get(self, checkin_id: int) -> Checkin | None:
        row = await self.db.fetchone(f"SELECT {CHECKIN_COLUMNS} FROM checkins WHERE id = ?", (checkin_id,))
        return _checkin(row) if row else None

    async def by_event(self, event_id: str) -> Checkin | None:
        """The check-in posted as ``event_id`` (or whose reminder that is)."""
        row = await self.db.fetchone(
            f"SELECT {CHECKIN_COLUMNS} FROM checkins WHERE event_id = ? OR reminder_event_id = ?",
            (event_id, event_id),
        )
        return _checkin(row) if row else None

    async def of_tandem(self, tandem_id: int, limit: int = 10) -> list[Checkin]:
        """The latest check-ins of a tandem, newest first."""
        rows = await self.db.fetchall(
            f"SELECT {CHECKIN_COLUMNS} FROM checkins WHERE tandem_id = ? AND event_id IS NOT NULL"
            " ORDER BY posted_at DESC, id DESC LIMIT ?",
            (tandem_id, limit),
        )
        return [_checkin(r) for r in rows]

    async def answer(
        self,
        checkin: Checkin,
        *,
        user_id: str,
        answer: str,
        source_event_id: str,
        note: str | None,
        now: int,
    ) -> bool:
        """Record one answer; the same source event twice (a replayed sync) is recorded once."""
        if answer not in ANSWERS:
            raise ValueError(answer)
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT OR IGNORE INTO checkin_answers (checkin_id, user_id, answer, source_event_id,"
                " note, answered_at) VALUES (?, ?, ?, ?, ?, ?)",
                (checkin.id, user_id, answer, source_event_id, note, now),
            )
            return cursor.rowcount == 1

    async def withdraw(self, source_event_id: str, now: int) -> Answer | None:
        """A redacted reaction withdraws its answer. Returns the answer withdrawn, if any."""
        row = await self.db.fetchone(
            "SELECT checkin_id, user_id, answer, source_event_id, note, answered_at FROM checkin_answers"
            " WHERE source_event_id = ? AND withdrawn_at IS NULL",
            (source_event_id,),
        )
        if row is None:
            return None
        await self.db.execute(
            "UPDATE checkin_answers SET withdrawn_at = ? WHERE source_event_id = ?", (now, source_event_id)
        )
        return Answer(*row)

    async def edit_note(self, source_event_id: str, user_id: str, note: str) -> bool:
        """An edited threaded reply replaces the note it recorded (only its author can edit)."""
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE checkin_answers SET note = ? WHERE source_event_id = ? AND user_id = ?"
                " AND answer = 'note' AND withdrawn_at IS NULL",
                (note, source_event_id, user_id),
            )
            return cursor.rowcount == 1

    async def answers(self, checkin_id: int) -> list[Answer]:
        """The answers standing (not withdrawn), oldest first."""
        rows = await self.db.fetchall(
            "SELECT checkin_id, user_id, answer, source_event_id, note, answered_at FROM checkin_answers"
            " WHERE checkin_id = ? AND withdrawn_at IS NULL ORDER BY answered_at, id",
            (checkin_id,),
        )
        return [Answer(*r) for r in rows]

    async def flags(self, tandem_id: int) -> Flags:
        row = await self.db.fetchone(
            "SELECT quiet_since, quiet_alerted, help_since, room_lost_reported FROM tandem_flags"
            " WHERE tandem_id = ?",
            (tandem_id,),
        )
        if row is None:
            return Flags()
        return Flags(row[0], bool(row[1]), row[2], bool(row[3]))

    async def set_flags(self, tandem_id: int, **fields: Any) -> None:
        allowed = {"quiet_since", "quiet_alerted", "help_since", "room_lost_reported"}
        if not fields or set(fields) - allowed:
            raise ValueError(f"unknown flags {sorted(set(fields) - allowed)}")
        columns = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        updates = ", ".join(f"{name} = excluded.{name}" for name in fields)
        await self.db.execute(
            f"INSERT INTO tandem_flags (tandem_id, {columns}) VALUES (?, {marks})"
            f" ON CONFLICT(tandem_id) DO UPDATE SET {updates}",
            (tandem_id, *fields.values()),
        )
