"""Scheduled work: calendar rules per subject (a tandem's check-ins, a channel's excerpts) and
every occurrence, recorded before it is delivered (the key of exactly-once delivery)."""

from storage.database import run_script

DESCRIPTION = "schedules and their occurrences"


async def upgrade(conn) -> None:
    await run_script(
        conn,
        """
        CREATE TABLE schedules (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            subject TEXT NOT NULL,
            rhythm TEXT NOT NULL,
            timezone TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'paused', 'ended')),
            next_due INTEGER,
            last_due INTEGER,
            missed INTEGER NOT NULL DEFAULT 0,
            data TEXT NOT NULL DEFAULT '{}',
            created_by TEXT,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        );
        CREATE INDEX schedules_subject ON schedules (kind, subject);
        CREATE INDEX schedules_due ON schedules (next_due) WHERE state = 'active';
        CREATE TABLE occurrences (
            schedule_id INTEGER NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
            due INTEGER NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'missed', 'failed')),
            recorded_at INTEGER NOT NULL,
            delivered_at INTEGER,
            event_id TEXT,
            detail TEXT,
            PRIMARY KEY (schedule_id, due)
        );
        CREATE INDEX occurrences_pending ON occurrences (state) WHERE state = 'pending';
        """,
    )
