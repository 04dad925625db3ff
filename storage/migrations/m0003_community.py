"""Community tables: profiles with topics, topic channels, tandems with their history, the Space.

Profiles keep a copy of the town's AGS, name, Kreis, Land and population instead of a foreign
key to ``municipalities`` (migration 0002), so the two features do not depend on each other.
"""

from storage.database import run_script

DESCRIPTION = "community: profiles, topic channels, tandems with state history, academy Space"


async def upgrade(conn) -> None:
    await run_script(
        conn,
        """
        CREATE TABLE profiles (
            user_id TEXT PRIMARY KEY,
            ags TEXT NOT NULL,
            town TEXT NOT NULL,
            kreis TEXT NOT NULL DEFAULT '',
            land TEXT NOT NULL DEFAULT '',
            population INTEGER,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX profiles_ags ON profiles (ags);
        CREATE TABLE profile_topics (
            user_id TEXT NOT NULL REFERENCES profiles (user_id) ON DELETE CASCADE,
            topic_id TEXT NOT NULL,
            added_at TEXT NOT NULL,
            PRIMARY KEY (user_id, topic_id)
        );
        CREATE INDEX profile_topics_topic ON profile_topics (topic_id);
        CREATE TABLE topic_channels (
            id INTEGER PRIMARY KEY,
            room_id TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            name_key TEXT NOT NULL UNIQUE,
            topic_id TEXT,
            description TEXT NOT NULL DEFAULT '',
            join_rule TEXT NOT NULL,
            created_by TEXT,
            created_at TEXT NOT NULL
        );
        -- A tandem is recorded in state 'creating' before its room exists and before any invite
        -- goes out; 'failed' keeps the record of a room that was cleaned up.
        CREATE TABLE tandems (
            id INTEGER PRIMARY KEY,
            room_id TEXT UNIQUE,
            user_a TEXT,
            user_b TEXT,
            ags_a TEXT NOT NULL,
            ags_b TEXT NOT NULL,
            town_a TEXT NOT NULL,
            town_b TEXT NOT NULL,
            kreis_a TEXT NOT NULL DEFAULT '',
            kreis_b TEXT NOT NULL DEFAULT '',
            topic_id TEXT,
            topic_label TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('creating', 'active', 'paused', 'ended', 'failed')),
            created_by TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX tandems_state ON tandems (state);
        CREATE INDEX tandems_user_a ON tandems (user_a);
        CREATE INDEX tandems_user_b ON tandems (user_b);
        CREATE TABLE tandem_events (
            id INTEGER PRIMARY KEY,
            tandem_id INTEGER NOT NULL REFERENCES tandems (id) ON DELETE CASCADE,
            state TEXT NOT NULL,
            actor TEXT,
            note TEXT NOT NULL DEFAULT '',
            at TEXT NOT NULL
        );
        CREATE INDEX tandem_events_tandem ON tandem_events (tandem_id);
        CREATE TABLE academy_space (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            room_id TEXT NOT NULL,
            configured TEXT,
            created_by_bot INTEGER NOT NULL,
            recorded_at TEXT NOT NULL
        );
        """,
    )
