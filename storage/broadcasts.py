"""The repository of broadcasts: the only writer of ``broadcasts``, ``broadcast_deliveries`` (the
outbox) and ``direct_chats``. Times are whole seconds since the epoch (UTC), as in
``storage.schedules``.

A broadcast moves draft → (scheduled →) sending → done, or ends as cancelled or expired. Its
outbox has one row per recipient room, written in the same transaction that starts the sending,
before anything is sent; each row then moves pending → sent / failed / skipped. A sent row also
records which version of the text its room shows (0: the original, n: the n-th correction) and
whether it was redacted, so corrections and retractions resume after a restart like sending.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from storage.database import Database

OPEN = ("draft", "scheduled", "sending")
COLUMNS = (
    "id, author, audience, text, pin, state, origin_room, preview_event_id, send_at, schedule_id,"
    " version, edited_text, retracted_at, op, op_done, progress_event_id, retries, created_at,"
    " expires_at, confirmed_at, started_at, finished_at"
)
DELIVERY_COLUMNS = (
    "id, broadcast_id, kind, target, label, room_id, state, event_id, reason, detail, attempts,"
    " sent_at, version, redacted_at, pinned"
)


@dataclass(frozen=True)
class Broadcast:
    id: int
    author: str
    audience: dict[str, Any]
    text: str  # Markdown as the coordinator wrote it
    pin: bool
    state: str
    origin_room: str  # where it was composed: preview, progress and report go there
    preview_event_id: str | None
    send_at: int | None
    schedule_id: int | None
    version: int  # 0: the original text; n: the n-th correction (``edited_text``)
    edited_text: str | None
    retracted_at: int | None
    op: str | None  # the work of the last pass over the outbox: send, retry-N, edit-N, retract
    op_done: bool
    progress_event_id: str | None  # the progress message of ``op``, edited in place
    retries: int
    created_at: int
    expires_at: int
    confirmed_at: int | None
    started_at: int | None
    finished_at: int | None

    @property
    def current_text(self) -> str:
        return self.edited_text if self.version and self.edited_text is not None else self.text


def _broadcast(row: Any) -> Broadcast:
    values = list(row)
    values[2] = json.loads(values[2])
    values[4] = bool(values[4])
    values[14] = bool(values[14])
    return Broadcast(*values)


@dataclass(frozen=True)
class Delivery:
    """One row of the outbox: a recipient room of a broadcast."""

    id: int
    broadcast_id: int
    kind: str  # tandem, channel, mayor
    target: str  # the tandem's or channel's number, the mayor's Matrix ID
    label: str  # what reports show: the towns, the channel's name, the mayor's town
    room_id: str | None  # a mayor's direct chat is found or made when the row is sent
    state: str
    event_id: str | None
    reason: str | None  # why it failed or was skipped, as a code the templates word
    detail: str | None
    attempts: int  # sends that ended (sent or failed), retries included
    sent_at: int | None
    version: int
    redacted_at: int | None
    pinned: bool | None


def _delivery(row: Any) -> Delivery:
    values = list(row)
    values[14] = None if values[14] is None else bool(values[14])
    return Delivery(*values)


@dataclass(frozen=True)
class Recipient:
    kind: str
    target: str
    label: str
    room_id: str | None


@dataclass
class Counts:
    pending: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    redacted: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.pending + self.sent + self.failed + self.skipped


class BroadcastRepository:
    def __init__(self, db: Database):
        self.db = db

    # --- broadcasts ---------------------------------------------------------------------------

    async def create(
        self,
        *,
        author: str,
        audience: dict[str, Any],
        text: str,
        pin: bool,
        origin_room: str,
        send_at: int | None,
        now: int,
        expires_at: int,
    ) -> Broadcast:
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO broadcasts (author, audience, text, pin, origin_room, send_at, created_at,"
                " expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (author, json.dumps(audience, sort_keys=True), text, int(pin), origin_room, send_at, now,
                 expires_at),
            )  # fmt: skip
            assert cursor.lastrowid is not None
            broadcast_id = cursor.lastrowid
        found = await self.get(broadcast_id)
        assert found is not None
        return found

    async def get(self, broadcast_id: int) -> Broadcast | None:
        row = await self.db.fetchone(f"SELECT {COLUMNS} FROM broadcasts WHERE id = ?", (broadcast_id,))
        return _broadcast(row) if row else None

    async def by_preview(self, event_id: str) -> Broadcast | None:
        row = await self.db.fetchone(
            f"SELECT {COLUMNS} FROM broadcasts WHERE preview_event_id = ?", (event_id,)
        )
        return _broadcast(row) if row else None

    async def update(self, broadcast_id: int, **fields: Any) -> None:
        allowed = {
            "preview_event_id", "send_at", "schedule_id", "version", "edited_text", "retracted_at", "op",
            "op_done", "progress_event_id", "retries", "confirmed_at", "started_at", "finished_at",
        }  # fmt: skip
        if not fields or set(fields) - allowed:
            raise ValueError(f"cannot update {sorted(set(fields) - allowed)}")
        assignments = ", ".join(f"{name} = ?" for name in fields)
        await self.db.execute(
            f"UPDATE broadcasts SET {assignments} WHERE id = ?", (*fields.values(), broadcast_id)
        )

    async def move(self, broadcast_id: int, before: Iterable[str], after: str, **fields: Any) -> bool:
        """Change the state from one of ``before`` to ``after`` (and ``fields``) in one step;
        False if the broadcast was in another state (a confirmation by command and by reaction
        at once, or a replayed one, moves it once)."""
        states = tuple(before)
        assignments = "".join(f", {name} = ?" for name in fields)
        marks = ", ".join("?" for _ in states)
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                f"UPDATE broadcasts SET state = ?{assignments} WHERE id = ? AND state IN ({marks})",
                (after, *fields.values(), broadcast_id, *states),
            )
            return cursor.rowcount == 1

    async def start(
        self, broadcast_id: int, before: Iterable[str], recipients: list[Recipient], now: int
    ) -> bool:
        """Start sending: the outbox rows and the state ``sending`` in one transaction, before
        anything is sent. False if the broadcast was not in one of ``before`` (started already)."""
        states = tuple(before)
        marks = ", ".join("?" for _ in states)
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                f"UPDATE broadcasts SET state = 'sending', started_at = ?, op = 'send', op_done = 0,"
                f" progress_event_id = NULL WHERE id = ? AND state IN ({marks})",
                (now, broadcast_id, *states),
            )
            if cursor.rowcount != 1:
                return False
            seen: set[str] = set()
            rows = []
            for r in recipients:
                duplicate = r.room_id is not None and r.room_id in seen
                if r.room_id is not None:
                    seen.add(r.room_id)
                state, reason = ("skipped", "duplicate") if duplicate else ("pending", None)
                rows.append((broadcast_id, r.kind, r.target, r.label, r.room_id, state, reason))
            await conn.executemany(
                "INSERT OR IGNORE INTO broadcast_deliveries (broadcast_id, kind, target, label, room_id,"
                " state, reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            return True

    async def recent(self, limit: int = 10) -> list[Broadcast]:
        rows = await self.db.fetchall(f"SELECT {COLUMNS} FROM broadcasts ORDER BY id DESC LIMIT ?", (limit,))
        return [_broadcast(r) for r in rows]

    async def in_state(self, *states: str) -> list[Broadcast]:
        marks = ", ".join("?" for _ in states)
        rows = await self.db.fetchall(
            f"SELECT {COLUMNS} FROM broadcasts WHERE state IN ({marks}) ORDER BY id", states
        )
        return [_broadcast(r) for r in rows]

    async def unfinished(self) -> list[Broadcast]:
        """Broadcasts whose last pass over the outbox did not finish (a stop or a crash)."""
        rows = await self.db.fetchall(
            f"SELECT {COLUMNS} FROM broadcasts WHERE op_done = 0 AND state IN ('sending', 'done') ORDER BY id"
        )
        return [_broadcast(r) for r in rows]

    async def expire_drafts(self, now: int) -> int:
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE broadcasts SET state = 'expired' WHERE state = 'draft' AND expires_at <= ?", (now,)
            )
            return cursor.rowcount

    # --- the outbox ---------------------------------------------------------------------------

    async def deliveries(self, broadcast_id: int, *states: str) -> list[Delivery]:
        where = ""
        params: tuple[Any, ...] = (broadcast_id,)
        if states:
            where = f" AND state IN ({', '.join('?' for _ in states)})"
            params += states
        rows = await self.db.fetchall(
            f"SELECT {DELIVERY_COLUMNS} FROM broadcast_deliveries WHERE broadcast_id = ?{where} ORDER BY id",
            params,
        )
        return [_delivery(r) for r in rows]

    async def delivery_by_event(self, event_id: str) -> Delivery | None:
        row = await self.db.fetchone(
            f"SELECT {DELIVERY_COLUMNS} FROM broadcast_deliveries WHERE event_id = ?", (event_id,)
        )
        return _delivery(row) if row else None

    async def counts(self, broadcast_id: int) -> Counts:
        counts = Counts()
        for state, kind, redacted, number in await self.db.fetchall(
            "SELECT state, kind, redacted_at IS NOT NULL, count(*) FROM broadcast_deliveries"
            " WHERE broadcast_id = ? GROUP BY state, kind, redacted_at IS NOT NULL",
            (broadcast_id,),
        ):
            setattr(counts, state, getattr(counts, state) + number)
            if state != "skipped":
                counts.by_kind[kind] = counts.by_kind.get(kind, 0) + number
            if redacted:
                counts.redacted += number
        return counts

    async def set_room(self, delivery_id: int, room_id: str) -> None:
        await self.db.execute(
            "UPDATE broadcast_deliveries SET room_id = ? WHERE id = ?", (room_id, delivery_id)
        )

    async def sent(self, delivery_id: int, event_id: str | None, version: int, now: int) -> None:
        await self.db.execute(
            "UPDATE broadcast_deliveries SET state = 'sent', event_id = ?, version = ?, sent_at = ?,"
            " reason = NULL, detail = NULL, attempts = attempts + 1 WHERE id = ?",
            (event_id, version, now, delivery_id),
        )

    async def failed(self, delivery_id: int, reason: str, detail: str | None) -> None:
        await self.db.execute(
            "UPDATE broadcast_deliveries SET state = 'failed', reason = ?, detail = ?,"
            " attempts = attempts + 1 WHERE id = ?",
            (reason, (detail or "")[:500] or None, delivery_id),
        )

    async def skipped(self, delivery_id: int, reason: str) -> None:
        await self.db.execute(
            "UPDATE broadcast_deliveries SET state = 'skipped', reason = ?"
            " WHERE id = ? AND state = 'pending'",
            (reason, delivery_id),
        )

    async def edited(self, delivery_id: int, version: int) -> None:
        await self.db.execute(
            "UPDATE broadcast_deliveries SET version = ? WHERE id = ?", (version, delivery_id)
        )

    async def redacted(self, delivery_id: int, now: int) -> None:
        await self.db.execute(
            "UPDATE broadcast_deliveries SET redacted_at = ? WHERE id = ?", (now, delivery_id)
        )

    async def pinned(self, delivery_id: int, pinned: bool) -> None:
        await self.db.execute(
            "UPDATE broadcast_deliveries SET pinned = ? WHERE id = ?", (int(pinned), delivery_id)
        )

    async def retry_failed(self, broadcast_id: int) -> int:
        """Failed rows back to pending (the others stay as they are). Returns how many."""
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE broadcast_deliveries SET state = 'pending', reason = NULL, detail = NULL"
                " WHERE broadcast_id = ? AND state = 'failed'",
                (broadcast_id,),
            )
            return cursor.rowcount

    # --- direct chats -------------------------------------------------------------------------

    async def direct_chat(self, user_id: str) -> str | None:
        row = await self.db.fetchone("SELECT room_id FROM direct_chats WHERE user_id = ?", (user_id,))
        return row[0] if row else None

    async def direct_chats(self) -> dict[str, str]:
        return {r[0]: r[1] for r in await self.db.fetchall("SELECT user_id, room_id FROM direct_chats")}

    async def record_direct_chat(self, user_id: str, room_id: str, now: int) -> None:
        await self.db.execute(
            "INSERT INTO direct_chats (user_id, room_id, recorded_at) VALUES (?, ?, ?)"
            " ON CONFLICT(user_id) DO UPDATE SET room_id = excluded.room_id,"
            " recorded_at = excluded.recorded_at",
            (user_id, room_id, now),
        )

    async def forget_direct_chat(self, user_id: str, room_id: str) -> None:
        await self.db.execute(
            "DELETE FROM direct_chats WHERE user_id = ? AND room_id = ?", (user_id, room_id)
        )
