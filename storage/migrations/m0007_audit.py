"""The audit trail: who did what as a coordinator (or as the operator on the server), and with
what outcome (``storage.audit``)."""

from storage.database import run_script

DESCRIPTION = "audit trail of coordinator and operator actions"


async def upgrade(conn) -> None:
    await run_script(
        conn,
        """
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY,
            at INTEGER NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '',
            outcome TEXT NOT NULL,
            result TEXT NOT NULL DEFAULT '',
            room_id TEXT
        );
        CREATE INDEX audit_log_at ON audit_log (at);
        """,
    )
