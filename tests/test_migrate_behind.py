"""Migrations running behind the runtime's start (``Database.migrate_behind``): queries wait for
them, so none reads a table that is not there yet, and their failure reaches every query."""

from __future__ import annotations

import asyncio

import pytest

import storage.database
from storage.database import Database, Migration, discover_migrations


async def test_a_query_during_the_migrations_waits_for_them(tmp_path):
    db = await Database(tmp_path / "bot.db").open(migrate=False)
    try:
        await db.migrate(until=1)
        db.migrate_behind()
        behind = db.migrating
        assert behind is not None and not behind.done()
        # the register's table is created and filled by migration 2, which has not run yet
        row = await db.fetchone("SELECT count(*) FROM municipalities")
        assert behind.done() and behind.result() == len(discover_migrations())
        assert row is not None and row[0] > 10_000
        await db.execute("DELETE FROM central_places")  # writes wait the same way (none waiting now)
    finally:
        await db.close()


async def test_a_failed_migration_behind_fails_every_query(tmp_path, monkeypatch):
    async def broken(conn) -> None:
        await conn.execute("CREATE TABLE half_done (id INTEGER)")
        raise RuntimeError("migration 2 broke")

    real = discover_migrations()

    def two(after: int = 0, until: int | None = None, modules: object = None) -> list[Migration]:
        steps = [real[0], Migration(2, "broken", broken)]
        return [m for m in steps if after < m.version and (until is None or m.version <= until)]

    monkeypatch.setattr(storage.database, "discover_migrations", two)
    db = await Database(tmp_path / "bot.db").open(migrate=False)
    try:
        await db.migrate(until=1)
        db.migrate_behind()
        behind = db.start_behind()
        with pytest.raises(RuntimeError, match="migration 2 broke"):
            await db.fetchone("SELECT 1")
        with pytest.raises(RuntimeError, match="migration 2 broke"):
            async with db.transaction():
                pass
        await asyncio.wait([behind])
        assert await db.version() == 1  # rolled back: the next start tries again
        assert await db.conn.execute_fetchall("SELECT name FROM sqlite_master WHERE name = 'half_done'") == []
    finally:
        await db.close()


async def test_migrations_left_for_later_start_with_the_first_query(tmp_path):
    db = await Database(tmp_path / "bot.db").open(migrate=False)
    try:
        await db.migrate(until=1)
        db.migrate_behind(start=False)
        await asyncio.sleep(0.05)
        assert db.migrating is None and await db.version() == 1  # nothing asked yet
        assert await db.fetchone("SELECT count(*) FROM central_places") is not None
        assert db.migrating is not None and await db.version() == len(discover_migrations())
    finally:
        await db.close()


async def test_the_runtime_tables_do_not_start_them(tmp_path):
    db = await Database(tmp_path / "bot.db").open(migrate=False)
    try:
        await db.migrate(until=1)
        db.migrate_behind(start=False)
        runtime = db.first_tables()
        await runtime.execute("INSERT INTO room_joins (room_id, joined_at) VALUES ('!r', 1)")
        assert (await runtime.fetchone("SELECT count(*) FROM room_joins"))[0] == 1
        assert db.migrating is None  # still waiting for a query that needs them
        await db.fetchone("SELECT count(*) FROM tandems")
        assert runtime.migrating is not None and runtime.migrating.done()
    finally:
        await db.close()
