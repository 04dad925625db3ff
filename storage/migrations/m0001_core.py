"""Core tables of the Matrix runtime: session, sync position, handled events, notices."""

from storage.database import run_script

DESCRIPTION = "core runtime state: session, sync token, handled events"


async def upgrade(conn) -> None:
    await run_script(
        conn,
        """
        CREATE TABLE bot_state (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_at TEXT NOT NULL DEFAULT (datetime('now'))
        );
        -- Commands already answered (by event ID): the last guard against a double answer
        -- when a sync batch is replayed after a crash between answering and saving the token.
        CREATE TABLE handled_events (
            event_id TEXT PRIMARY KEY,
            room_id TEXT NOT NULL,
            handled_at INTEGER NOT NULL
        );
        CREATE INDEX handled_events_age ON handled_events (handled_at);
        -- When the bot joined a room: older events there are history, not commands.
        CREATE TABLE room_joins (
            room_id TEXT PRIMARY KEY,
            joined_at INTEGER NOT NULL
        );
        -- Rooms already told once that a message could not be decrypted.
        CREATE TABLE undecryptable_notices (
            room_id TEXT PRIMARY KEY,
            noticed_at INTEGER NOT NULL
        );
        """,
    )
