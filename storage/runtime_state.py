"""Runtime state of the Matrix bot: login session, sync token, handled events, room joins."""

from __future__ import annotations

import json
from dataclasses import dataclass

from storage.database import Database


@dataclass(frozen=True)
class Session:
    user_id: str
    device_id: str
    access_token: str
    homeserver: str


@dataclass(frozen=True)
class FirstSyncProgress:
    """Where a first start's first sync through sliding sync stood when the bot stopped cleanly:
    the live syncs' token (every batch up to it handled), the sliding-sync connection's position
    after the last page handed on, and the last room of the list that page covered."""

    live_token: str
    position: str
    end: int


class RuntimeStateRepository:
    """The only writer of ``bot_state``, ``handled_events``, ``room_joins``, ``undecryptable_notices``."""

    def __init__(self, db: Database):
        self.db = db

    async def _get(self, key: str) -> str | None:
        row = await self.db.fetchone("SELECT value FROM bot_state WHERE key = ?", (key,))
        return row[0] if row else None

    async def _set(self, key: str, value: str) -> None:
        await self.db.execute(
            "INSERT INTO bot_state (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = datetime('now')",
            (key, value),
        )

    # session ------------------------------------------------------------------------------
    async def load_session(self, user_id: str, homeserver: str) -> Session | None:
        raw = await self._get("session")
        if not raw:
            return None
        data = json.loads(raw)
        if data.get("user_id") != user_id or data.get("homeserver") != homeserver:
            return None
        return Session(**data)

    async def save_session(self, session: Session) -> None:
        await self._set("session", json.dumps(session.__dict__))

    async def forget_session(self) -> None:
        await self.db.execute(
            "DELETE FROM bot_state WHERE key IN ('session', 'sync_token', 'first_sync_progress')"
        )

    # sync -------------------------------------------------------------------------------
    async def sync_token(self) -> str | None:
        return await self._get("sync_token")

    async def save_sync_token(self, token: str) -> None:
        await self._set("sync_token", token)

    async def take_first_sync_progress(self) -> FirstSyncProgress | None:
        """The progress a clean stop left (``save_first_sync_progress``), removed as it is read:
        if this start does not stop cleanly either, the next one begins the first start anew."""
        raw = await self._get("first_sync_progress")
        if raw is None:
            return None
        await self.db.execute("DELETE FROM bot_state WHERE key = 'first_sync_progress'")
        data = json.loads(raw)
        return FirstSyncProgress(str(data["live_token"]), str(data["position"]), int(data["end"]))

    async def save_first_sync_progress(self, progress: FirstSyncProgress) -> None:
        await self._set("first_sync_progress", json.dumps(progress.__dict__))

    # handled events ---------------------------------------------------------------------
    async def is_handled(self, event_id: str) -> bool:
        row = await self.db.fetchone("SELECT 1 FROM handled_events WHERE event_id = ?", (event_id,))
        return row is not None

    async def mark_handled(self, event_id: str, room_id: str, now_ms: int) -> bool:
        """Record the event; False when it was recorded before (someone else answered it)."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "INSERT OR IGNORE INTO handled_events (event_id, room_id, handled_at) VALUES (?, ?, ?)",
                (event_id, room_id, now_ms),
            )
            return cur.rowcount == 1

    async def prune_handled(self, older_than_ms: int) -> None:
        await self.db.execute("DELETE FROM handled_events WHERE handled_at < ?", (older_than_ms,))

    # room joins -------------------------------------------------------------------------
    async def joined_at(self, room_id: str) -> int | None:
        row = await self.db.fetchone("SELECT joined_at FROM room_joins WHERE room_id = ?", (room_id,))
        return row[0] if row else None

    async def all_joins(self) -> dict[str, int]:
        rows = await self.db.fetchall("SELECT room_id, joined_at FROM room_joins")
        return {r[0]: r[1] for r in rows}

    async def record_joins(self, joins: dict[str, int]) -> None:
        """Many rooms at once (the first sync of a bot in many rooms): one transaction."""
        if not joins:
            return
        async with self.db.transaction() as conn:
            await conn.executemany(
                "INSERT OR IGNORE INTO room_joins (room_id, joined_at) VALUES (?, ?)",
                list(joins.items()),
            )

    async def forget_room(self, room_id: str) -> None:
        await self.db.execute("DELETE FROM room_joins WHERE room_id = ?", (room_id,))

    # undecryptable ----------------------------------------------------------------------
    async def claim_undecryptable_notice(self, room_id: str, now_ms: int) -> bool:
        """True the first time for a room: only then does the bot say it cannot decrypt."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "INSERT OR IGNORE INTO undecryptable_notices (room_id, noticed_at) VALUES (?, ?)",
                (room_id, now_ms),
            )
            return cur.rowcount == 1

    async def undecryptable_noticed_rooms(self) -> set[str]:
        rows = await self.db.fetchall("SELECT room_id FROM undecryptable_notices")
        return {r[0] for r in rows}

    async def clear_undecryptable_notice(self, room_id: str) -> None:
        await self.db.execute("DELETE FROM undecryptable_notices WHERE room_id = ?", (room_id,))

    # the bot's avatar ---------------------------------------------------------------------
    async def uploaded_avatar(self) -> tuple[str, str] | None:
        """(SHA-256 of the image, its mxc:// URI) of the avatar uploaded last, if any."""
        raw = await self._get("avatar")
        if not raw:
            return None
        data = json.loads(raw)
        return data["sha256"], data["mxc"]

    async def save_uploaded_avatar(self, sha256: str, mxc: str) -> None:
        await self._set("avatar", json.dumps({"sha256": sha256, "mxc": mxc}))
