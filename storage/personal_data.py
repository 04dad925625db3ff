"""Everything the bot stores about a person, declared in one place: what ``!profil export``
lists and what ``!profil löschen`` erases.

Every column of the database that can hold a person's Matrix ID is declared below with what
erasure does to it, and why (``tests/test_personal_data.py`` fails on a table with a text column
that is declared neither here nor in ``NOT_PERSONAL``, so a new table has to decide):

- ``ROW``: the row is about the person (their profile, their check-in answers): deleted.
- ``CLEAR``: the person takes part in something that also concerns others (one side of a
  tandem): the ID becomes NULL; the rest of the row (towns, topic) stays for the partner.
- ``PSEUDONYM``: the person *did* something that others rely on (created a tandem or channel,
  changed a tandem's state, recorded a town's central-place function): the audit trail keeps
  the record, with a pseudonym instead of the ID. The pseudonym (``erased-`` and 8 random hex
  digits) is drawn anew for each erasure and stored nowhere with the ID, so it cannot be traced
  back (a hash of the ID could be recomputed from a guessed ID); it still shows that several
  records were made by the same, now erased, person.
- ``MENTION``: free text written by anyone (notes, reasons, descriptions) that may contain the
  ID: every occurrence is replaced by the same pseudonym.

Erasure is one transaction. SQLite's ``secure_delete`` is on for it, and the write-ahead log is
checkpointed and truncated afterwards, so the erased values do not linger in free pages of the
database file or in old frames of the log. Backups taken before stay as they are.

This module writes across the repositories' tables on purpose: erasure must be complete and
atomic, and it is easier to check in one declaration than in one method per repository.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from storage.database import Database


class Erase(Enum):
    ROW = "row"
    CLEAR = "clear"
    PSEUDONYM = "pseudonym"
    MENTION = "mention"


@dataclass(frozen=True)
class PersonalColumn:
    table: str
    column: str
    erase: Erase
    why: str


PERSONAL_COLUMNS: tuple[PersonalColumn, ...] = (
    PersonalColumn("profiles", "user_id", Erase.ROW, "the person's profile (town, population)"),
    PersonalColumn("profile_topics", "user_id", Erase.ROW, "the topics in the person's profile"),
    PersonalColumn("tandems", "user_a", Erase.CLEAR, "one side of a tandem; the partner keeps it"),
    PersonalColumn("tandems", "user_b", Erase.CLEAR, "one side of a tandem; the partner keeps it"),
    PersonalColumn("tandems", "created_by", Erase.PSEUDONYM, "the coordinator who set the tandem up"),
    PersonalColumn("tandems", "topic_label", Erase.MENTION, "a topic typed by a coordinator"),
    PersonalColumn("tandem_events", "actor", Erase.PSEUDONYM, "who changed a tandem's state"),
    PersonalColumn("tandem_events", "note", Erase.MENTION, "why a creation failed (error text)"),
    PersonalColumn("topic_channels", "created_by", Erase.PSEUDONYM, "the coordinator who made it"),
    PersonalColumn("topic_channels", "name", Erase.MENTION, "a name typed by a coordinator"),
    PersonalColumn("topic_channels", "description", Erase.MENTION, "text typed by a coordinator"),
    PersonalColumn("central_places", "set_by", Erase.PSEUDONYM, "who recorded a town's status"),
    PersonalColumn("central_places", "reason", Erase.MENTION, "the reason given for it"),
    PersonalColumn("checkin_answers", "user_id", Erase.ROW, "the person's answers to check-ins"),
    PersonalColumn("checkin_answers", "note", Erase.MENTION, "notes by others may name the person"),
    PersonalColumn("schedules", "created_by", Erase.PSEUDONYM, "who set a rhythm"),
    PersonalColumn("schedules", "data", Erase.MENTION, "the schedule's settings (JSON)"),
    PersonalColumn("occurrences", "detail", Erase.MENTION, "what happened at a delivery"),
    PersonalColumn("broadcasts", "author", Erase.PSEUDONYM, "the coordinator who wrote a broadcast"),
    PersonalColumn("broadcasts", "text", Erase.MENTION, "a broadcast's text may name people"),
    PersonalColumn("broadcasts", "edited_text", Erase.MENTION, "its correction likewise"),
    PersonalColumn("broadcasts", "audience", Erase.MENTION, "the audience (JSON: a channel's name)"),
    PersonalColumn(
        "broadcast_deliveries",
        "target",
        Erase.PSEUDONYM,
        "a mayor a broadcast went to: the row stays, so a retraction still reaches that chat",
    ),
    PersonalColumn("broadcast_deliveries", "detail", Erase.MENTION, "the homeserver's error text"),
    PersonalColumn("direct_chats", "user_id", Erase.ROW, "the person's direct chat with the bot"),
    PersonalColumn("audit_log", "actor", Erase.PSEUDONYM, "the coordinator who did something"),
    PersonalColumn("audit_log", "detail", Erase.MENTION, "the arguments given (may name people)"),
)

# Tables and columns that hold no personal data, with the reason (checked by the test above).
NOT_PERSONAL: dict[str, str] = {
    "schema_version": "applied migrations",
    "bot_state": "the bot's own session and sync token",
    "handled_events": "event and room IDs of answered commands, not who sent them",
    "room_joins": "room IDs and when the bot joined",
    "undecryptable_notices": "room IDs",
    "municipalities": "the public municipality register",
    "municipality_register": "the register's edition",
    "academy_space": "the Space's room ID or alias",
    "checkins": "room and event IDs of posted check-ins",
    "tandem_flags": "numbers and times",
    "profiles.ags profiles.town profiles.kreis profiles.land profiles.created_at profiles.updated_at": (
        "part of the profile row, deleted with it"
    ),
    "profile_topics.topic_id profile_topics.added_at": "part of the row, deleted with it",
    "tandems.room_id tandems.ags_a tandems.ags_b tandems.town_a tandems.town_b tandems.kreis_a "
    "tandems.kreis_b tandems.topic_id tandems.state tandems.created_at tandems.updated_at": (
        "the towns and the tandem itself: the partner's record"
    ),
    "tandem_events.state tandem_events.at": "the tandem's history",
    "topic_channels.room_id topic_channels.name_key topic_channels.topic_id "
    "topic_channels.join_rule topic_channels.created_at": "the channel itself",
    "central_places.ags central_places.function central_places.set_at": "a town's status",
    "checkin_answers.answer checkin_answers.source_event_id": "part of the row, deleted with it",
    "schedules.kind schedules.subject schedules.rhythm schedules.timezone schedules.state": (
        "what is scheduled for a tandem or channel"
    ),
    "occurrences.state occurrences.event_id": "delivery bookkeeping",
    "broadcasts.state broadcasts.origin_room broadcasts.preview_event_id broadcasts.op "
    "broadcasts.progress_event_id": "a broadcast's state, rooms and events",
    "broadcast_deliveries.kind broadcast_deliveries.room_id broadcast_deliveries.state "
    "broadcast_deliveries.event_id broadcast_deliveries.reason": "delivery bookkeeping",
    "broadcast_deliveries.label": "a tandem's towns, a channel's name or a mayor's town (public names)",
    "direct_chats.room_id": "part of the row, deleted with it",
    "audit_log.action audit_log.outcome audit_log.result audit_log.room_id": (
        "what was done and how it ended: the audit trail"
    ),
}


def new_pseudonym() -> str:
    return f"erased-{secrets.token_hex(4)}"


@dataclass
class Erasure:
    """What an erasure changed (rowids per table and action) and the pseudonym it used."""

    pseudonym: str
    rows: dict[tuple[str, Erase], set[int]] = field(default_factory=dict)

    def _rows(self, table: str, actions: tuple[Erase, ...] = tuple(Erase)) -> set[int]:
        return set().union(*(ids for (t, a), ids in self.rows.items() if t == table and a in actions))

    def count(self, table: str) -> int:
        """How many rows of ``table`` were deleted or changed."""
        return len(self._rows(table))

    def kept_with_pseudonym(self, *leave_out: str) -> int:
        """Rows that stay, with a pseudonym where the ID was (tables in ``leave_out`` aside)."""
        tables = {t for t, _ in self.rows} - set(leave_out)
        return sum(
            len(self._rows(t, (Erase.PSEUDONYM, Erase.MENTION)) - self._rows(t, (Erase.ROW,))) for t in tables
        )

    @property
    def total(self) -> int:
        return sum(self.count(t) for t in {t for t, _ in self.rows})


@dataclass(frozen=True)
class StoredRecord:
    """One row that holds the person's ID, as the export lists it: where, in what role, and
    the row's other values (the ID itself left out)."""

    table: str
    column: str
    erase: Erase
    values: dict[str, Any]


class PersonalData:
    """Export and erasure of everything declared in ``PERSONAL_COLUMNS``."""

    def __init__(self, db: Database):
        self.db = db

    async def _present(self) -> list[PersonalColumn]:
        """The declared columns that exist in this database (a table may come with a later
        migration than this code knows of, or not yet)."""
        columns: set[tuple[str, str]] = set()
        for (table,) in await self.db.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'"):
            for row in await self.db.fetchall(f'PRAGMA table_info("{table}")'):
                columns.add((table, row["name"]))
        return [c for c in PERSONAL_COLUMNS if (c.table, c.column) in columns]

    async def export(self, user_id: str) -> list[StoredRecord]:
        """Every row that holds ``user_id`` in a declared column, in declaration order."""
        found: list[StoredRecord] = []
        for c in await self._present():
            where = f'instr("{c.column}", ?) > 0' if c.erase is Erase.MENTION else f'"{c.column}" = ?'
            rows = await self.db.fetchall(f'SELECT * FROM "{c.table}" WHERE {where}', (user_id,))
            for row in rows:
                pairs = zip(row.keys(), tuple(row), strict=True)  # a Row iterates over values
                values = {k: v for k, v in pairs if k != c.column and v is not None}
                if c.erase is Erase.MENTION:
                    values[c.column] = row[c.column]
                found.append(StoredRecord(c.table, c.column, c.erase, values))
        return found

    async def erase(self, user_id: str) -> Erasure:
        """Delete or pseudonymise every trace of ``user_id`` (see the module docstring)."""
        erasure = Erasure(new_pseudonym())
        present = await self._present()
        await self.db.execute("PRAGMA secure_delete = ON")
        try:
            async with self.db.transaction() as conn:
                for c in present:
                    table, column = f'"{c.table}"', f'"{c.column}"'
                    where = f"instr({column}, ?) > 0" if c.erase is Erase.MENTION else f"{column} = ?"
                    async with conn.execute(f"SELECT rowid FROM {table} WHERE {where}", (user_id,)) as cur:
                        rowids = {r[0] for r in await cur.fetchall()}
                    if not rowids:
                        continue
                    erasure.rows.setdefault((c.table, c.erase), set()).update(rowids)
                    params: tuple[str, ...]
                    if c.erase is Erase.ROW:
                        change, params = "DELETE FROM {table}", ()
                    elif c.erase is Erase.CLEAR:
                        change, params = "UPDATE {table} SET {column} = NULL", ()
                    elif c.erase is Erase.PSEUDONYM:
                        change, params = "UPDATE {table} SET {column} = ?", (erasure.pseudonym,)
                    else:
                        change = "UPDATE {table} SET {column} = replace({column}, ?, ?)"
                        params = (user_id, erasure.pseudonym)
                    sql = change.format(table=table, column=column) + f" WHERE {where}"
                    await conn.execute(sql, (*params, user_id))
        finally:
            await self.db.execute("PRAGMA secure_delete = OFF")
        if erasure.total:
            # old page images in the log would still hold the values: copy the log into the
            # (now overwritten) pages of the database file and empty it
            await self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return erasure
