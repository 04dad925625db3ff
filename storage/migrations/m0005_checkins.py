"""Tandem check-ins: each posted check-in, the answers of the tandem's members (reactions and
threaded replies), and the flags that alert the coordinators (quiet, help, room lost)."""

from storage.database import run_script

DESCRIPTION = "tandem check-ins, their answers and the tandems' alert flags"


async def upgrade(conn) -> None:
    await run_script(
        conn,
        """
        CREATE TABLE checkins (
            id INTEGER PRIMARY KEY,
            tandem_id INTEGER NOT NULL REFERENCES tandems (id) ON DELETE CASCADE,
            occurrence_key TEXT NOT NULL UNIQUE,
            room_id TEXT NOT NULL,
            event_id TEXT,
            module_id TEXT,
            posted_at INTEGER NOT NULL,
            reminder_event_id TEXT,
            reminded_at INTEGER
        );
        CREATE INDEX checkins_tandem ON checkins (tandem_id, posted_at);
        CREATE INDEX checkins_event ON checkins (event_id);
        CREATE TABLE checkin_answers (
            id INTEGER PRIMARY KEY,
            checkin_id INTEGER NOT NULL REFERENCES checkins (id) ON DELETE CASCADE,
            user_id TEXT NOT NULL,
            answer TEXT NOT NULL CHECK (answer IN ('done', 'not_yet', 'help', 'note')),
            source_event_id TEXT NOT NULL UNIQUE,
            note TEXT,
            answered_at INTEGER NOT NULL,
            withdrawn_at INTEGER
        );
        CREATE INDEX checkin_answers_checkin ON checkin_answers (checkin_id);
        CREATE INDEX checkin_answers_user ON checkin_answers (user_id);
        CREATE TABLE tandem_flags (
            tandem_id INTEGER PRIMARY KEY REFERENCES tandems (id) ON DELETE CASCADE,
            quiet_since INTEGER,
            quiet_alerted INTEGER NOT NULL DEFAULT 0,
            help_since INTEGER,
            room_lost_reported INTEGER NOT NULL DEFAULT 0
        );
        """,
    )
