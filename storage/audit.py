"""The audit trail: every coordinator action (and every operator action on the server that
changes what users see) with who, when, what and the outcome. The only writer of ``audit_log``.

- ``actor``: the Matrix ID of the coordinator, or ``operator`` for the command line on the
  server. ``!profil löschen`` puts a pseudonym in its place (``storage.personal_data``:
  PSEUDONYM), so the trail stays complete and shows which entries one erased person made.
- ``action``: what was done, as the command's words in English (``tandem pause``) or the
  command line's (``data import-central-places``).
- ``detail``: the arguments as given, as JSON. A message argument (a broadcast's text) is kept
  as its length, not its text. Matrix IDs in it are replaced by the same pseudonym on erasure
  (MENTION).
- ``outcome``: ``answered`` (the command ran; ``result`` says what the bot answered),
  ``refused`` (the sender lacked the role), ``usage_error``, ``rate_limited`` or ``failed``.
- ``result``: the names of the messages the bot answered with (``tandem_paused``,
  ``tandem_not_found``), so "answered" tells whether the action took place.

Entries are never changed or deleted by the bot; the operator may prune old ones with SQL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from storage.database import Database

OPERATOR = "operator"
OUTCOMES = ("answered", "refused", "usage_error", "rate_limited", "failed")


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime  # UTC
    actor: str
    action: str
    detail: dict[str, Any]
    outcome: str
    result: tuple[str, ...]
    room_id: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "detail": self.detail,
            "outcome": self.outcome,
            "result": list(self.result),
            "room_id": self.room_id,
        }


def _entry(row: Any) -> AuditEntry:
    try:
        detail = json.loads(row[4]) if row[4] else {}
    except ValueError:  # written by hand, or pseudonymised into something else
        detail = {"text": row[4]}
    return AuditEntry(
        id=row[0],
        at=datetime.fromtimestamp(row[1], UTC),
        actor=row[2],
        action=row[3],
        detail=detail if isinstance(detail, dict) else {"value": detail},
        outcome=row[5],
        result=tuple(r for r in row[6].split(",") if r),
        room_id=row[7],
    )


class AuditRepository:
    def __init__(self, db: Database):
        self.db = db

    async def record(
        self,
        *,
        actor: str,
        action: str,
        outcome: str,
        at: datetime,
        detail: dict[str, Any] | None = None,
        result: tuple[str, ...] | list[str] = (),
        room_id: str | None = None,
    ) -> int:
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO audit_log (at, actor, action, detail, outcome, result, room_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    int(at.timestamp()),
                    actor,
                    action,
                    json.dumps(detail or {}, ensure_ascii=False, sort_keys=True),
                    outcome,
                    ",".join(dict.fromkeys(result)),
                    room_id,
                ),
            )
            return cur.lastrowid or 0

    async def recent(self, limit: int = 20, before_id: int | None = None) -> list[AuditEntry]:
        """The newest entries first."""
        rows = await self.db.fetchall(
            "SELECT id, at, actor, action, detail, outcome, result, room_id FROM audit_log "
            "WHERE id < ? ORDER BY id DESC LIMIT ?",
            (before_id if before_id is not None else 2**62, limit),
        )
        return [_entry(r) for r in rows]

    async def count(self) -> int:
        row = await self.db.fetchone("SELECT count(*) FROM audit_log")
        return int(row[0]) if row else 0
