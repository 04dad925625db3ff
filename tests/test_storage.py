"""The database: pragmas, ordered migrations, rollback, version guard, online backup, runtime state."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from storage.database import (
    Database,
    DatabaseTooNew,
    DatabaseUnusable,
    Migration,
    discover_migrations,
    migration_modules,
    run_script,
)
from storage.runtime_state import RuntimeStateRepository, Session

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def db(tmp_path):
    database = await Database(tmp_path / "bot.db").open()
    yield database
    await database.close()


async def test_pragmas_are_in_effect(db):
    assert (await db.fetchone("PRAGMA journal_mode"))[0] == "wal"
    assert (await db.fetchone("PRAGMA foreign_keys"))[0] == 1
    assert (await db.fetchone("PRAGMA busy_timeout"))[0] == 5000


async def test_foreign_keys_are_enforced(tmp_path):
    async def create(conn):
        await run_script(
            conn,
            """
            CREATE TABLE parent (id INTEGER PRIMARY KEY);
            CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER NOT NULL REFERENCES parent(id));
        """,
        )

    database = await Database(tmp_path / "fk.db").open(migrate=False)
    try:
        await database.migrate([Migration(1, "fk tables", create)])
        with pytest.raises(sqlite3.IntegrityError):
            await database.execute("INSERT INTO child (id, parent) VALUES (1, 99)")
    finally:
        await database.close()


async def test_shipped_migrations_are_recorded_in_order(db):
    shipped = discover_migrations()
    assert [m.version for m in shipped] == list(range(1, len(shipped) + 1))
    rows = await db.fetchall("SELECT version, description FROM schema_version ORDER BY version")
    assert [(r[0], r[1]) for r in rows] == [(m.version, m.description) for m in shipped]
    assert await db.version() == len(shipped)
    # opening again applies nothing twice
    assert await db.migrate() == len(shipped)
    assert (await db.fetchone("SELECT count(*) FROM schema_version"))[0] == len(shipped)


async def test_only_the_pending_migrations_are_imported(tmp_path, monkeypatch):
    """A restart on an up-to-date database imports no migration module before it answers; one
    behind by some versions imports those only."""
    import sys

    path = tmp_path / "up-to-date.db"
    database = await Database(path).open(migrate=False)
    try:
        await database.migrate(until=2)
    finally:
        await database.close()

    def loaded() -> list[int]:
        return sorted(v for v, name in migration_modules() if name in sys.modules)

    for _, name in migration_modules():
        monkeypatch.delitem(sys.modules, name, raising=False)
    database = await Database(path).open()  # migrates from version 2 to the latest
    try:
        assert loaded() == list(range(3, len(migration_modules()) + 1))
        for _, name in migration_modules():
            monkeypatch.delitem(sys.modules, name, raising=False)
        assert await database.migrate() == len(migration_modules())
        assert loaded() == []
    finally:
        await database.close()


async def test_migrations_run_in_version_order_and_only_pending_ones(tmp_path):
    order: list[int] = []

    def step(version: int):
        async def upgrade(conn):
            order.append(version)
            await conn.execute(f"CREATE TABLE t{version} (x INTEGER)")

        return Migration(version, f"step {version}", upgrade)

    database = await Database(tmp_path / "m.db").open(migrate=False)
    try:
        assert await database.migrate([step(1), step(2)]) == 2
        assert await database.migrate([step(1), step(2), step(3)]) == 3
        assert order == [1, 2, 3]
        rows = await database.fetchall("SELECT version, description FROM schema_version ORDER BY version")
        assert [tuple(r) for r in rows] == [(1, "step 1"), (2, "step 2"), (3, "step 3")]
    finally:
        await database.close()


async def test_failing_migration_rolls_back_completely(tmp_path):
    async def good(conn):
        await conn.execute("CREATE TABLE kept (x INTEGER)")

    async def bad(conn):
        await run_script(
            conn,
            """
            CREATE TABLE half (x INTEGER);
            INSERT INTO half VALUES (1);
            INSERT INTO kept VALUES (42);
        """,
        )
        await conn.execute("INSERT INTO no_such_table VALUES (1)")

    database = await Database(tmp_path / "r.db").open(migrate=False)
    try:
        with pytest.raises(sqlite3.OperationalError):
            await database.migrate([Migration(1, "good", good), Migration(2, "bad", bad)])
        assert await database.version() == 1
        tables = {r[0] for r in await database.fetchall("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "kept" in tables and "half" not in tables
        assert [tuple(r) for r in await database.fetchall("SELECT count(*) FROM kept")] == [(0,)]
        # the connection is usable afterwards: no transaction left open
        assert await database.migrate([Migration(1, "good", good)]) == 1
    finally:
        await database.close()


async def test_database_newer_than_the_code_is_refused(tmp_path):
    async def noop(conn):
        await conn.execute("SELECT 1")

    path = tmp_path / "new.db"
    database = await Database(path).open(migrate=False)
    await database.migrate([Migration(1, "a", noop), Migration(2, "b", noop)])
    await database.close()
    older = await Database(path).open(migrate=False)
    try:
        with pytest.raises(DatabaseTooNew) as info:
            await older.migrate([Migration(1, "a", noop)])
        assert "schema version 2" in str(info.value) and "only up to 1" in str(info.value)
    finally:
        await older.close()


def test_run_script_rejects_an_incomplete_statement():
    async def go():
        database = await Database(":memory:").open(migrate=False)
        try:
            with pytest.raises(ValueError, match="incomplete SQL"):
                await run_script(database.conn, "CREATE TABLE a (x INTEGER);\nINSERT INTO a VALUES (1")
        finally:
            await database.close()

    asyncio.run(go())


async def test_online_backup_is_consistent_while_another_connection_writes(tmp_path):
    source = tmp_path / "live.db"
    database = await Database(source).open(migrate=False)
    await database.execute("CREATE TABLE pairs (a INTEGER NOT NULL, b INTEGER NOT NULL)")
    async with database.transaction() as conn:
        for i in range(2000):
            await conn.execute("INSERT INTO pairs VALUES (?, ?)", (i, -i))
    stop = asyncio.Event()

    async def writer() -> int:
        # every transaction inserts a pair of rows; a consistent copy has an even row count
        n = 0
        while not stop.is_set():
            async with database.transaction() as conn:
                await conn.execute("INSERT INTO pairs VALUES (?, ?)", (10_000 + n, 0))
                await conn.execute("INSERT INTO pairs VALUES (?, ?)", (-10_000 - n, 0))
            n += 1
            await asyncio.sleep(0)
        return n

    task = asyncio.create_task(writer())
    try:
        await asyncio.sleep(0.05)
        targets = [await database.backup(tmp_path / f"copy{i}.db") for i in range(3)]
    finally:
        stop.set()
        written = await task
        await database.close()
    assert written > 0
    for target in targets:
        copy = sqlite3.connect(target)
        try:
            assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            count, total = copy.execute("SELECT count(*), sum(a) FROM pairs").fetchone()
            assert count >= 2000 and count % 2 == 0
            assert total == sum(range(2000))  # each pair sums to 0: no half-written transaction
            assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        finally:
            copy.close()
        assert not target.with_name(target.name + ".partial").exists()


async def test_backup_of_a_missing_database_fails_clearly(tmp_path):
    from storage.database import backup_file

    with pytest.raises(DatabaseUnusable, match=r"none\.db does not exist"):
        backup_file(tmp_path / "none.db", tmp_path / "copy.db")
    assert list(tmp_path.iterdir()) == []


def _database_threads() -> int:
    import threading

    return sum("_connection_worker_thread" in t.name for t in threading.enumerate())


@pytest.mark.parametrize("kind, says", [("truncated", "is damaged"), ("text", "is not a database")])
async def test_an_unusable_file_is_explained_and_leaves_no_thread_behind(tmp_path, kind, says):
    path = tmp_path / "bot.db"
    if kind == "text":
        path.write_bytes(b"# notes, not a database\n" * 300)
    else:
        with sqlite3.connect(path) as conn:
            for i in range(20):
                conn.execute(f"CREATE TABLE t{i} (x TEXT)")
                conn.executemany(f"INSERT INTO t{i} VALUES (?)", [("x" * 500,)] * 40)
        conn.close()
        with path.open("r+b") as handle:
            handle.truncate(path.stat().st_size // 2)
    threads = _database_threads()
    with pytest.raises(DatabaseUnusable) as info:
        await Database(path).open()
    message = str(info.value)
    assert str(path) in message and says in message and "restore a backup" in message
    assert "\n" not in message
    # aiosqlite's worker thread ends: left running, it keeps the process alive after the error
    for _ in range(200):
        if _database_threads() == threads:
            break
        await asyncio.sleep(0.01)
    assert _database_threads() == threads


async def test_a_bug_in_sql_is_not_mistaken_for_a_bad_file(tmp_path):
    async def broken(conn):
        await conn.execute("SELECT * FROM no_such_table")

    database = await Database(tmp_path / "ok.db").open(migrate=False)
    try:
        with pytest.raises(sqlite3.OperationalError):
            await database.migrate([Migration(1, "broken", broken)])
    finally:
        await database.close()


async def test_cli_db_backup(tmp_path):
    import os

    source = tmp_path / "bot.db"
    database = await Database(source).open()
    repo = RuntimeStateRepository(database)
    await repo.save_sync_token("s123_token")
    await database.close()
    target = tmp_path / "backups" / "kopie.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLEINSTADTBOT_")}
    env["KLEINSTADTBOT_DATABASE"] = str(source)
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot.cli", "db", "backup", str(target)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert str(target) in result.stdout
    copy = sqlite3.connect(target)
    try:
        row = copy.execute("SELECT value FROM bot_state WHERE key='sync_token'").fetchone()
        assert row[0] == "s123_token"
    finally:
        copy.close()


# --- runtime state -----------------------------------------------------------------------------


async def test_session_is_tied_to_user_and_homeserver(db):
    repo = RuntimeStateRepository(db)
    assert await repo.load_session("@bot:example.org", "https://example.org") is None
    session = Session("@bot:example.org", "DEVICE1", "token-1", "https://example.org")
    await repo.save_session(session)
    assert await repo.load_session("@bot:example.org", "https://example.org") == session
    assert await repo.load_session("@other:example.org", "https://example.org") is None
    assert await repo.load_session("@bot:example.org", "https://other.example.org") is None
    await repo.save_session(Session("@bot:example.org", "DEVICE1", "token-2", "https://example.org"))
    again = await repo.load_session("@bot:example.org", "https://example.org")
    assert again is not None and again.access_token == "token-2"


async def test_sync_token_and_forget_session(db):
    repo = RuntimeStateRepository(db)
    assert await repo.sync_token() is None
    await repo.save_sync_token("s1")
    await repo.save_sync_token("s2")
    assert await repo.sync_token() == "s2"
    await repo.save_session(Session("@bot:x.org", "D", "t", "https://x.org"))
    await repo.forget_session()
    assert await repo.sync_token() is None
    assert await repo.load_session("@bot:x.org", "https://x.org") is None


async def test_mark_handled_only_once(db):
    repo = RuntimeStateRepository(db)
    assert not await repo.is_handled("$e1")
    assert await repo.mark_handled("$e1", "!r:x.org", 1000) is True
    assert await repo.mark_handled("$e1", "!r:x.org", 2000) is False
    assert await repo.is_handled("$e1")
    await repo.mark_handled("$e2", "!r:x.org", 5000)
    await repo.prune_handled(3000)
    assert not await repo.is_handled("$e1") and await repo.is_handled("$e2")


async def test_undecryptable_notice_is_claimed_once_per_room(db):
    repo = RuntimeStateRepository(db)
    assert await repo.claim_undecryptable_notice("!a:x.org", 1) is True
    assert await repo.claim_undecryptable_notice("!a:x.org", 2) is False
    assert await repo.claim_undecryptable_notice("!b:x.org", 3) is True
    assert await repo.undecryptable_noticed_rooms() == {"!a:x.org", "!b:x.org"}
    await repo.clear_undecryptable_notice("!a:x.org")
    assert await repo.undecryptable_noticed_rooms() == {"!b:x.org"}
    assert await repo.claim_undecryptable_notice("!a:x.org", 4) is True


async def test_room_joins(db):
    repo = RuntimeStateRepository(db)
    await repo.record_joins({"!a:x.org": 100})
    await repo.record_joins({"!a:x.org": 999, "!b:x.org": 200})  # the first join time stays
    await repo.record_joins({})
    assert await repo.all_joins() == {"!a:x.org": 100, "!b:x.org": 200}
    await repo.forget_room("!a:x.org")
    assert await repo.joined_at("!a:x.org") is None
