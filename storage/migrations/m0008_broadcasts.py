"""Coordinator broadcasts: each announcement with its audience and text, its outbox (one row per
broadcast and recipient room, written before anything is sent; the transaction ID of each send
derives from the row), and the direct chats the bot knows per person."""

from storage.database import run_script

DESCRIPTION = "broadcasts, their outbox and the bot's direct chats"


async def upgrade(conn) -> None:
    await run_script(
        conn,
        """
        CREATE TABLE broadcasts (
            id INTEGER PRIMARY KEY,
            author TEXT NOT NULL,
            audience TEXT NOT NULL,
            text TEXT NOT NULL,
            pin INTEGER NOT NULL DEFAULT 0,
            state TEXT NOT NULL DEFAULT 'draft'
                CHECK (state IN ('draft', 'scheduled', 'sending', 'done', 'cancelled', 'expired')),
            origin_room TEXT NOT NULL,
            preview_event_id TEXT,
            send_at INTEGER,
            schedule_id INTEGER,
            version INTEGER NOT NULL DEFAULT 0,
            edited_text TEXT,
            retracted_at INTEGER,
            op TEXT,
            op_done INTEGER NOT NULL DEFAULT 1,
            progress_event_id TEXT,
            retries INTEGER NOT NULL DEFAULT 0,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            confirmed_at INTEGER,
            started_at INTEGER,
            finished_at INTEGER
        );
        CREATE INDEX broadcasts_preview ON broadcasts (preview_event_id);
        CREATE INDEX broadcasts_open ON broadcasts (state) WHERE state IN ('draft', 'scheduled', 'sending');
        CREATE TABLE broadcast_deliveries (
            id INTEGER PRIMARY KEY,
            broadcast_id INTEGER NOT NULL REFERENCES broadcasts (id) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('tandem', 'channel', 'mayor')),
            target TEXT NOT NULL,
            label TEXT NOT NULL,
            room_id TEXT,
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'sent', 'failed', 'skipped')),
            event_id TEXT,
            reason TEXT,
            detail TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            sent_at INTEGER,
            version INTEGER NOT NULL DEFAULT 0,
            redacted_at INTEGER,
            pinned INTEGER,
            UNIQUE (broadcast_id, kind, target)
        );
        CREATE INDEX broadcast_deliveries_state ON broadcast_deliveries (broadcast_id, state);
        CREATE TABLE direct_chats (
            user_id TEXT PRIMARY KEY,
            room_id TEXT NOT NULL,
            recorded_at INTEGER NOT NULL
        );
        """,
    )
