"""Repositories of the community features: profiles, topic channels, tandems, the academy Space.

Each class is the only writer of its tables, except erasure of a person's data, which
``storage.personal_data`` does for every table at once. Times are passed in by the caller (the
handler's clock) and stored as ISO 8601 strings in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from storage.database import Database

OPEN_STATES = ("creating", "active", "paused")


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- profiles -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    user_id: str
    ags: str
    town: str
    kreis: str
    land: str
    population: int | None
    topics: tuple[str, ...]
    created_at: datetime
    updated_at: datetime


class ProfileRepository:
    """The only writer of ``profiles`` and ``profile_topics``."""

    def __init__(self, db: Database):
        self.db = db

    async def get(self, user_id: str) -> Profile | None:
        row = await self.db.fetchone("SELECT * FROM profiles WHERE user_id = ?", (user_id,))
        if row is None:
            return None
        topics = await self.db.fetchall(
            "SELECT topic_id FROM profile_topics WHERE user_id = ? ORDER BY added_at, topic_id", (user_id,)
        )
        return _profile(row, tuple(t[0] for t in topics))

    async def set_town(
        self,
        user_id: str,
        *,
        ags: str,
        town: str,
        kreis: str,
        land: str,
        population: int | None,
        now: datetime,
    ) -> None:
        await self.db.execute(
            "INSERT INTO profiles (user_id, ags, town, kreis, land, population, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(user_id) DO UPDATE SET ags = excluded.ags,"
            " town = excluded.town, kreis = excluded.kreis, land = excluded.land,"
            " population = excluded.population, updated_at = excluded.updated_at",
            (user_id, ags, town, kreis, land, population, _iso(now), _iso(now)),
        )

    async def add_topic(self, user_id: str, topic_id: str, now: datetime) -> bool:
        """False if the topic was already in the profile."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "INSERT OR IGNORE INTO profile_topics (user_id, topic_id, added_at) VALUES (?, ?, ?)",
                (user_id, topic_id, _iso(now)),
            )
            added = cur.rowcount > 0
            await conn.execute("UPDATE profiles SET updated_at = ? WHERE user_id = ?", (_iso(now), user_id))
        return added

    async def remove_topic(self, user_id: str, topic_id: str, now: datetime) -> bool:
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "DELETE FROM profile_topics WHERE user_id = ? AND topic_id = ?", (user_id, topic_id)
            )
            removed = cur.rowcount > 0
            await conn.execute("UPDATE profiles SET updated_at = ? WHERE user_id = ?", (_iso(now), user_id))
        return removed

    async def all_with_topics(self) -> list[Profile]:
        """Every profile with its topics, in two queries (used for tandem suggestions)."""
        rows = await self.db.fetchall("SELECT * FROM profiles ORDER BY user_id")
        topics: dict[str, list[str]] = {}
        for user_id, topic_id in await self.db.fetchall(
            "SELECT user_id, topic_id FROM profile_topics ORDER BY user_id, topic_id"
        ):
            topics.setdefault(user_id, []).append(topic_id)
        return [_profile(r, tuple(topics.get(r["user_id"], ()))) for r in rows]


def _profile(row, topics: tuple[str, ...]) -> Profile:
    return Profile(
        row["user_id"],
        row["ags"],
        row["town"],
        row["kreis"],
        row["land"],
        row["population"],
        topics,
        _parse(row["created_at"]),
        _parse(row["updated_at"]),
    )


# --- topic channels -----------------------------------------------------------------------


@dataclass(frozen=True)
class TopicChannel:
    id: int
    room_id: str
    name: str
    name_key: str
    topic_id: str | None
    description: str
    join_rule: str
    created_by: str | None
    created_at: datetime


class TopicChannelRepository:
    """The only writer of ``topic_channels``."""

    def __init__(self, db: Database):
        self.db = db

    async def add(
        self,
        *,
        room_id: str,
        name: str,
        name_key: str,
        topic_id: str | None,
        description: str,
        join_rule: str,
        created_by: str,
        now: datetime,
    ) -> TopicChannel:
        await self.db.execute(
            "INSERT INTO topic_channels (room_id, name, name_key, topic_id, description, join_rule,"
            " created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (room_id, name, name_key, topic_id, description, join_rule, created_by, _iso(now)),
        )
        return await self.by_room(room_id)  # type: ignore[return-value]

    async def all(self) -> list[TopicChannel]:
        return [_channel(r) for r in await self.db.fetchall("SELECT * FROM topic_channels ORDER BY name")]

    async def by_room(self, room_id: str) -> TopicChannel | None:
        row = await self.db.fetchone("SELECT * FROM topic_channels WHERE room_id = ?", (room_id,))
        return _channel(row) if row else None

    async def find(self, *, name_key: str | None = None, topic_id: str | None = None) -> TopicChannel | None:
        if topic_id:
            row = await self.db.fetchone("SELECT * FROM topic_channels WHERE topic_id = ?", (topic_id,))
            if row:
                return _channel(row)
        if name_key:
            row = await self.db.fetchone("SELECT * FROM topic_channels WHERE name_key = ?", (name_key,))
            if row:
                return _channel(row)
        return None


def _channel(row) -> TopicChannel:
    return TopicChannel(
        row["id"],
        row["room_id"],
        row["name"],
        row["name_key"],
        row["topic_id"],
        row["description"],
        row["join_rule"],
        row["created_by"],
        _parse(row["created_at"]),
    )


# --- tandems ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TandemEvent:
    state: str
    actor: str | None
    note: str
    at: datetime


@dataclass(frozen=True)
class Tandem:
    id: int
    room_id: str | None
    user_a: str | None
    user_b: str | None
    ags_a: str
    ags_b: str
    town_a: str
    town_b: str
    kreis_a: str
    kreis_b: str
    topic_id: str | None
    topic_label: str
    state: str
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    history: tuple[TandemEvent, ...] = field(default=())

    @property
    def users(self) -> tuple[str, ...]:
        return tuple(u for u in (self.user_a, self.user_b) if u)

    def since(self, state: str) -> datetime:
        """When the tandem last entered ``state`` (its creation time if never recorded)."""
        for event in reversed(self.history):
            if event.state == state:
                return event.at
        return self.created_at


class TandemRepository:
    """The only writer of ``tandems`` and ``tandem_events``."""

    def __init__(self, db: Database):
        self.db = db

    async def start(
        self,
        *,
        user_a: str,
        user_b: str,
        ags_a: str,
        ags_b: str,
        town_a: str,
        town_b: str,
        kreis_a: str,
        kreis_b: str,
        topic_id: str | None,
        topic_label: str,
        created_by: str,
        now: datetime,
    ) -> int:
        """Record a tandem in state 'creating' (before its room exists). Returns its ID."""
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "INSERT INTO tandems (user_a, user_b, ags_a, ags_b, town_a, town_b, kreis_a, kreis_b,"
                " topic_id, topic_label, state, created_by, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'creating', ?, ?, ?)",
                (
                    user_a,
                    user_b,
                    ags_a,
                    ags_b,
                    town_a,
                    town_b,
                    kreis_a,
                    kreis_b,
                    topic_id,
                    topic_label,
                    created_by,
                    _iso(now),
                    _iso(now),
                ),
            )
            tandem_id = cur.lastrowid
            assert tandem_id is not None  # an INSERT into a rowid table always has one
            await conn.execute(
                "INSERT INTO tandem_events (tandem_id, state, actor, note, at)"
                " VALUES (?, 'creating', ?, '', ?)",
                (tandem_id, created_by, _iso(now)),
            )
        return tandem_id

    async def set_room(self, tandem_id: int, room_id: str, now: datetime) -> None:
        await self.db.execute(
            "UPDATE tandems SET room_id = ?, updated_at = ? WHERE id = ?", (room_id, _iso(now), tandem_id)
        )

    async def set_state(
        self, tandem_id: int, state: str, *, actor: str | None, now: datetime, note: str = ""
    ) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE tandems SET state = ?, updated_at = ? WHERE id = ?", (state, _iso(now), tandem_id)
            )
            await conn.execute(
                "INSERT INTO tandem_events (tandem_id, state, actor, note, at) VALUES (?, ?, ?, ?, ?)",
                (tandem_id, state, actor, note, _iso(now)),
            )

    async def get(self, tandem_id: int) -> Tandem | None:
        row = await self.db.fetchone("SELECT * FROM tandems WHERE id = ?", (tandem_id,))
        return await self._with_history(row) if row else None

    async def by_room(self, room_id: str) -> Tandem | None:
        row = await self.db.fetchone("SELECT * FROM tandems WHERE room_id = ?", (room_id,))
        return await self._with_history(row) if row else None

    async def list(self, state: str | None = None, user_id: str | None = None) -> list[Tandem]:
        sql, params = "SELECT * FROM tandems WHERE state != 'failed'", list[str]()
        if state:
            sql, params = sql + " AND state = ?", [*params, state]
        if user_id:
            sql, params = sql + " AND (user_a = ? OR user_b = ?)", [*params, user_id, user_id]
        rows = await self.db.fetchall(sql + " ORDER BY id", tuple(params))
        return [_tandem(r) for r in rows]

    async def open_between(self, user_a: str, user_b: str) -> Tandem | None:
        row = await self.db.fetchone(
            f"SELECT * FROM tandems WHERE state IN {OPEN_STATES} AND"
            " ((user_a = ? AND user_b = ?) OR (user_a = ? AND user_b = ?)) ORDER BY id LIMIT 1",
            (user_a, user_b, user_b, user_a),
        )
        return _tandem(row) if row else None

    async def pairing_history(self) -> tuple[set[tuple[str, str]], set[frozenset[str]]]:
        """(user, topic) with an open tandem, and every pair (users and AGS) that ever had one."""
        active: set[tuple[str, str]] = set()
        past: set[frozenset[str]] = set()
        for r in await self.db.fetchall(
            "SELECT user_a, user_b, ags_a, ags_b, topic_id, state FROM tandems WHERE state != 'failed'"
        ):
            if r["state"] in OPEN_STATES and r["topic_id"]:
                for user in (r["user_a"], r["user_b"]):
                    if user:
                        active.add((user, r["topic_id"]))
            if r["user_a"] and r["user_b"]:
                past.add(frozenset((r["user_a"], r["user_b"])))
            past.add(frozenset(("ags:" + r["ags_a"], "ags:" + r["ags_b"])))
        return active, past

    async def _with_history(self, row) -> Tandem:
        events = await self.db.fetchall(
            "SELECT state, actor, note, at FROM tandem_events WHERE tandem_id = ? ORDER BY id", (row["id"],)
        )
        history = tuple(TandemEvent(e["state"], e["actor"], e["note"], _parse(e["at"])) for e in events)
        return _tandem(row, history)


def _tandem(row, history: tuple[TandemEvent, ...] = ()) -> Tandem:
    return Tandem(
        row["id"],
        row["room_id"],
        row["user_a"],
        row["user_b"],
        row["ags_a"],
        row["ags_b"],
        row["town_a"],
        row["town_b"],
        row["kreis_a"],
        row["kreis_b"],
        row["topic_id"],
        row["topic_label"],
        row["state"],
        row["created_by"],
        _parse(row["created_at"]),
        _parse(row["updated_at"]),
        history,
    )


# --- the academy Space --------------------------------------------------------------------


@dataclass(frozen=True)
class SpaceRecord:
    room_id: str
    configured: str | None
    created_by_bot: bool


class SpaceRepository:
    """The only writer of ``academy_space`` (one row)."""

    def __init__(self, db: Database):
        self.db = db

    async def get(self) -> SpaceRecord | None:
        row = await self.db.fetchone("SELECT room_id, configured, created_by_bot FROM academy_space")
        return SpaceRecord(row[0], row[1], bool(row[2])) if row else None

    async def record(
        self, room_id: str, *, configured: str | None, created_by_bot: bool, now: datetime
    ) -> None:
        await self.db.execute(
            "INSERT INTO academy_space (id, room_id, configured, created_by_bot, recorded_at)"
            " VALUES (1, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET room_id = excluded.room_id,"
            " configured = excluded.configured, created_by_bot = excluded.created_by_bot,"
            " recorded_at = excluded.recorded_at",
            (room_id, configured, int(created_by_bot), _iso(now)),
        )
