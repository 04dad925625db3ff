"""The repository of scheduled work: the only writer of ``schedules`` and ``occurrences``.

Times are whole seconds since the epoch (UTC): the engine compares and sorts them constantly,
and 10,000 schedules load in one query at start.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from storage.database import Database

COLUMNS = "id, kind, subject, rhythm, timezone, state, next_due, last_due, missed, data, created_by"


@dataclass(frozen=True)
class Schedule:
    id: int
    kind: str
    subject: str
    rhythm: str  # the calendar rule as JSON (commands.rhythm.Rhythm)
    timezone: str
    state: str
    next_due: int | None
    last_due: int | None
    missed: int
    data: dict[str, Any] = field(default_factory=dict)
    created_by: str | None = None


def _schedule(row: Any) -> Schedule:
    return Schedule(
        id=row[0],
        kind=row[1],
        subject=row[2],
        rhythm=row[3],
        timezone=row[4],
        state=row[5],
        next_due=row[6],
        last_due=row[7],
        missed=row[8],
        data=json.loads(row[9]),
        created_by=row[10],
    )


class ScheduleRepository:
    def __init__(self, db: Database):
        self.db = db

    async def add(
        self,
        *,
        kind: str,
        subject: str,
        rhythm: str,
        timezone: str,
        next_due: int | None,
        now: int,
        data: dict[str, Any] | None = None,
        created_by: str | None = None,
    ) -> int:
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO schedules (kind, subject, rhythm, timezone, next_due, data, created_by,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (kind, subject, rhythm, timezone, next_due, json.dumps(data or {}), created_by, now, now),
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

    async def get(self, schedule_id: int) -> Schedule | None:
        row = await self.db.fetchone(f"SELECT {COLUMNS} FROM schedules WHERE id = ?", (schedule_id,))
        return _schedule(row) if row else None

    async def of_subject(self, kind: str, subject: str, *, open_only: bool = True) -> list[Schedule]:
        states = "('active', 'paused')" if open_only else "('active', 'paused', 'ended')"
        rows = await self.db.fetchall(
            f"SELECT {COLUMNS} FROM schedules WHERE kind = ? AND subject = ? AND state IN {states}"
            " ORDER BY id",
            (kind, subject),
        )
        return [_schedule(r) for r in rows]

    async def of_kind(self, kind: str, *, open_only: bool = True) -> list[Schedule]:
        states = "('active', 'paused')" if open_only else "('active', 'paused', 'ended')"
        rows = await self.db.fetchall(
            f"SELECT {COLUMNS} FROM schedules WHERE kind = ? AND state IN {states} ORDER BY id", (kind,)
        )
        return [_schedule(r) for r in rows]

    async def due_times(self) -> list[tuple[int, int]]:
        """(next_due, id) of every active schedule with a next occurrence: the engine's agenda."""
        rows = await self.db.fetchall(
            "SELECT next_due, id FROM schedules WHERE state = 'active' AND next_due IS NOT NULL"
        )
        return [(r[0], r[1]) for r in rows]

    async def update(self, schedule_id: int, now: int, **fields: Any) -> None:
        allowed = {"rhythm", "timezone", "state", "next_due", "last_due", "missed", "data"}
        if not fields or set(fields) - allowed:
            raise ValueError(f"cannot update {sorted(set(fields) - allowed)}")
        if "data" in fields:
            fields["data"] = json.dumps(fields["data"])
        assignments = ", ".join(f"{name} = ?" for name in fields)
        await self.db.execute(
            f"UPDATE schedules SET {assignments}, updated_at = ? WHERE id = ?",
            (*fields.values(), now, schedule_id),
        )

    async def record(
        self,
        schedule: Schedule,
        *,
        due: int | None,
        missed: list[int],
        next_due: int | None,
        now: int,
    ) -> bool:
        """In one transaction: the missed occurrences, the occurrence ``due`` as pending, and
        the schedule moved on to ``next_due``. Returns False when ``due`` was recorded before
        (a replay: the caller delivers it again only if it is still pending)."""
        async with self.db.transaction() as conn:
            if missed:
                await conn.executemany(
                    "INSERT OR IGNORE INTO occurrences (schedule_id, due, state, recorded_at)"
                    " VALUES (?, ?, 'missed', ?)",
                    [(schedule.id, m, now) for m in missed],
                )
            fresh = True
            if due is not None:
                cursor = await conn.execute(
                    "INSERT OR IGNORE INTO occurrences (schedule_id, due, state, recorded_at)"
                    " VALUES (?, ?, 'pending', ?)",
                    (schedule.id, due, now),
                )
                fresh = cursor.rowcount == 1
            last = due if due is not None else (missed[-1] if missed else schedule.last_due)
            # a rule without further occurrences (a one-off) has ended
            await conn.execute(
                "UPDATE schedules SET next_due = ?, last_due = ?, missed = missed + ?, updated_at = ?,"
                " state = CASE WHEN ? IS NULL THEN 'ended' ELSE state END WHERE id = ?",
                (next_due, last, len(missed), now, next_due, schedule.id),
            )
            return fresh

    async def occurrence_state(self, schedule_id: int, due: int) -> str | None:
        row = await self.db.fetchone(
            "SELECT state FROM occurrences WHERE schedule_id = ? AND due = ?", (schedule_id, due)
        )
        return row[0] if row else None

    async def delivered(self, schedule_id: int, due: int, event_id: str | None, now: int) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE occurrences SET state = 'delivered', delivered_at = ?, event_id = ?"
                " WHERE schedule_id = ? AND due = ?",
                (now, event_id, schedule_id, due),
            )
            await conn.execute("UPDATE schedules SET missed = 0 WHERE id = ?", (schedule_id,))

    async def failed(self, schedule_id: int, due: int, detail: str, now: int) -> None:
        await self.db.execute(
            "UPDATE occurrences SET state = 'failed', detail = ?, delivered_at = ?"
            " WHERE schedule_id = ? AND due = ?",
            (detail[:500], now, schedule_id, due),
        )

    async def pending(self) -> list[tuple[int, int]]:
        """(schedule_id, due) of occurrences recorded but not confirmed delivered: a crash
        between recording and sending, or during the send."""
        rows = await self.db.fetchall(
            "SELECT schedule_id, due FROM occurrences WHERE state = 'pending' ORDER BY due"
        )
        return [(r[0], r[1]) for r in rows]

    async def occurrences(self, schedule_id: int, limit: int = 20) -> list[dict[str, Any]]:
        rows = await self.db.fetchall(
            "SELECT due, state, delivered_at, event_id, detail FROM occurrences WHERE schedule_id = ?"
            " ORDER BY due DESC LIMIT ?",
            (schedule_id, limit),
        )
        return [
            {"due": r[0], "state": r[1], "delivered_at": r[2], "event_id": r[3], "detail": r[4]} for r in rows
        ]
