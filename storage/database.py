"""The aiosqlite database: connection settings, ordered migrations and online backup."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import pkgutil
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

log = logging.getLogger(__name__)

Upgrade = Callable[[aiosqlite.Connection], Awaitable[None]]


class DatabaseUnusable(RuntimeError):
    """The database file cannot be used as it is. The message is one line for the operator:
    what is wrong, which file, and what to do."""


class DatabaseTooNew(DatabaseUnusable):
    """The database was written by a newer kleinstadtbot than this one."""


# SQLite's primary result codes (``sqlite3.Error.sqlite_errorname`` without extended suffixes)
# that mean the file itself is the problem, not the SQL, with what the operator should do.
_FILE_PROBLEMS = {
    "SQLITE_NOTADB": "is not a database (wrong file, or overwritten); restore a backup or set "
    "`database` to the right file",
    "SQLITE_CORRUPT": "is damaged (truncated or overwritten); restore a backup, or move the file "
    "away to start with an empty database",
    "SQLITE_BUSY": "is locked by another process; stop the other process (a second kleinstadtbot, "
    "or a tool holding the file open) and start again",
    "SQLITE_LOCKED": "is locked by another process; stop the other process (a second kleinstadtbot, "
    "or a tool holding the file open) and start again",
    "SQLITE_CANTOPEN": "cannot be opened; check that its folder exists and that the bot's user may "
    "read and write there",
    "SQLITE_PERM": "cannot be opened; check that the bot's user may read and write it",
    "SQLITE_READONLY": "is read-only; give the bot's user write access to the file and its folder",
    "SQLITE_FULL": "cannot grow: the disk is full; free some space and start again",
    "SQLITE_IOERR": "cannot be read or written (input/output error); check the disk, or restore a "
    "backup on another one",
}


def unusable(path: Path | str, exc: BaseException) -> DatabaseUnusable | None:
    """The operator's explanation of ``exc`` if it says the database file cannot be used
    (damaged, not a database, locked, unreadable); None for any other error (a bug)."""
    if isinstance(exc, DatabaseUnusable):
        return exc
    if isinstance(exc, PermissionError | IsADirectoryError | NotADirectoryError):
        return DatabaseUnusable(
            f"database {path} cannot be created or opened ({exc.strerror}); check "
            "the path and that the bot's user may write there"
        )
    if not isinstance(exc, sqlite3.Error):
        return None
    name = getattr(exc, "sqlite_errorname", None) or ""
    primary = "_".join(name.split("_")[:2])  # SQLITE_IOERR_SHORT_READ -> SQLITE_IOERR
    if primary not in _FILE_PROBLEMS:
        return None
    return DatabaseUnusable(f"database {path} {_FILE_PROBLEMS[primary]} (SQLite: {exc})")


PAGE_CACHE_KIB = 512
_MIGRATING: ContextVar[bool] = ContextVar("migrating", default=False)  # inside migrate_behind's task


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    upgrade: Upgrade


async def run_script(conn: aiosqlite.Connection, script: str) -> None:
    """Run several statements inside the current transaction.

    ``executescript`` would COMMIT first and break the one-transaction-per-migration rule.
    """
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            if statement.strip():
                await conn.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement: {statement.strip()[:80]}")


def migration_modules() -> list[tuple[int, str]]:
    """The version and module name of every ``storage/migrations/mNNNN_name.py``, in order,
    numbered 1..n without gaps. Nothing is imported."""
    from storage import migrations as package

    found = sorted(
        (int(info.name[1:5]), f"{package.__name__}.{info.name}")
        for info in pkgutil.iter_modules(package.__path__)
        if info.name.startswith("m") and info.name[1:5].isdigit()
    )
    versions = [version for version, _ in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 1..n without gaps, found {versions}")
    return found


def discover_migrations(
    after: int = 0, until: int | None = None, modules: list[tuple[int, str]] | None = None
) -> list[Migration]:
    """The migrations after version ``after`` (and up to ``until``), each module with its
    DESCRIPTION and ``upgrade(conn)``. The modules of the other versions are not imported: a
    restart on an up-to-date database imports none before its first answer. ``modules``: those
    ``migration_modules`` found, if the caller has them already."""
    found = []
    for version, name in migration_modules() if modules is None else modules:
        if version <= after or (until is not None and version > until):
            continue
        module = importlib.import_module(name)
        found.append(Migration(version, module.DESCRIPTION, module.upgrade))
    return found


class Database:
    """One aiosqlite connection with WAL, foreign keys and a busy timeout.

    aiosqlite runs every statement on one worker thread, so statements never interleave;
    ``transaction()`` additionally serialises multi-statement units of work between tasks.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path) if str(path) != ":memory:" else Path(":memory:")
        self._conn: aiosqlite.Connection | None = None
        self._tx_lock = asyncio.Lock()
        self._behind: asyncio.Future[int] | None = None  # migrations running beside the caller
        self._pending = False  # migrations left behind: queries wait for them

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("database is not open")
        return self._conn

    async def open(self, migrate: bool = True) -> Database:
        """Connect, set the pragmas and (by default) migrate.

        A file that cannot be used (damaged, not a database, locked by another process,
        unreadable) raises ``DatabaseUnusable`` with one line for the operator, and the
        connection is closed first: aiosqlite's worker thread would otherwise keep the
        process alive after the error."""
        try:
            await self._open(migrate)
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await self.close()
            explained = unusable(self.path, exc)
            if explained is not None and explained is not exc:
                raise explained from None
            raise
        return self

    async def _open(self, migrate: bool) -> None:
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = await aiosqlite.connect(str(self.path), isolation_level=None)
        self._conn.row_factory = aiosqlite.Row
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA foreign_keys=ON",
            "PRAGMA busy_timeout=5000",
            # The database is a few megabytes and the kernel caches the file: SQLite's own page
            # cache (2 MB by default) is kept small. Loading the register on a fresh database
            # would otherwise leave 2 MB more resident for good.
            f"PRAGMA cache_size=-{PAGE_CACHE_KIB}",
        ):
            await self._conn.execute(pragma)
        if migrate:
            await self.migrate()

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()

    async def __aenter__(self) -> Database:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- migrations -----------------------------------------------------------------------

    async def version(self) -> int:
        await self.conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version INTEGER PRIMARY KEY, description TEXT NOT NULL,"
            " applied_at TEXT NOT NULL DEFAULT (datetime('now')))"
        )
        async with self.conn.execute("SELECT max(version) FROM schema_version") as cur:
            row = await cur.fetchone()
        return (row[0] if row else None) or 0

    async def migrate(self, migrations: list[Migration] | None = None, until: int | None = None) -> int:
        """Apply pending migrations (all, or up to ``until``), each in its own transaction.
        Returns the version reached. A file that cannot be used raises ``DatabaseUnusable``."""
        try:
            return await self._migrate(migrations, until)
        except sqlite3.Error as exc:
            explained = unusable(self.path, exc)
            if explained is None:
                raise
            raise explained from None

    async def _migrate(self, migrations: list[Migration] | None, until: int | None) -> int:
        current = await self.version()
        if migrations is None:  # the shipped ones: only the pending modules are imported
            modules = migration_modules()
            self._known_up_to(current, modules[-1][0] if modules else 0)
            migrations = discover_migrations(after=current, until=until, modules=modules)
        else:
            self._known_up_to(current, migrations[-1].version if migrations else 0)
        for migration in migrations:
            if migration.version <= current:
                continue
            if until is not None and migration.version > until:
                break
            log.info("migrating database to version %d: %s", migration.version, migration.description)
            async with self.transaction() as conn:
                await migration.upgrade(conn)
                await conn.execute(
                    "INSERT INTO schema_version (version, description) VALUES (?, ?)",
                    (migration.version, migration.description),
                )
            current = migration.version
        return current

    def _known_up_to(self, current: int, latest: int) -> None:
        if current > latest:
            raise DatabaseTooNew(
                f"database {self.path} has schema version {current}, this kleinstadtbot knows "
                f"only up to {latest}; use a newer kleinstadtbot or restore a backup"
            )

    def migrate_behind(self, start: bool = True) -> None:
        """Leave the pending migrations to a task beside the caller. Until they are done, every
        query waits for them (and fails with their error if they fail), so nothing reads a table
        that is not there yet; what needs no query goes on meanwhile. The runtime answers its
        first commands so (loading the register into a fresh database is half a second of CPU).
        ``start`` False: they start with the first query (or ``start_behind``), not now."""
        self._pending = True
        if start:
            self.start_behind()

    def start_behind(self) -> asyncio.Future[int]:
        """The task of the migrations left behind, started now if it has not been."""
        if self._behind is None:

            async def migrate() -> int:
                _MIGRATING.set(True)  # this task's own queries do not wait for themselves
                return await self.migrate()

            self._behind = asyncio.ensure_future(migrate())
        return self._behind

    def first_tables(self) -> Database:
        """This database (the same connection, state and lock) for the runtime's own tables,
        which migration 1 makes before anything else: its queries never wait for migrations
        left behind, so recording a join or an answer does not start them early."""
        view = _FirstTables.__new__(_FirstTables)
        view.__dict__ = self.__dict__  # shared, also what is opened or set later
        return view

    @property
    def migrating(self) -> asyncio.Future[int] | None:
        """The migrations running behind (``migrate_behind``), once started."""
        return self._behind

    async def _schema(self) -> None:
        """Wait for migrations left behind (``migrate_behind``), starting them if they wait."""
        if not self._pending or _MIGRATING.get():
            return
        await asyncio.shield(self.start_behind())  # raises their error
        self._pending = False

    # --- units of work --------------------------------------------------------------------

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any exception."""
        await self._schema()
        async with self._tx_lock:
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise
            else:
                await self.conn.execute("COMMIT")

    async def execute(self, sql: str, params: tuple | dict = ()) -> None:
        """One statement in its own transaction (autocommit)."""
        await self._schema()
        async with self._tx_lock:
            await self.conn.execute(sql, params)

    async def fetchone(self, sql: str, params: tuple | dict = ()) -> aiosqlite.Row | None:
        await self._schema()
        async with self.conn.execute(sql, params) as cur:
            return await cur.fetchone()

    async def fetchall(self, sql: str, params: tuple | dict = ()) -> list[aiosqlite.Row]:
        await self._schema()
        async with self.conn.execute(sql, params) as cur:
            return list(await cur.fetchall())

    # --- backup ---------------------------------------------------------------------------

    async def backup(self, target: str | Path) -> Path:
        """A consistent copy through SQLite's online backup API, safe while the bot runs."""
        return await asyncio.to_thread(backup_file, self.path, Path(target))


class _FirstTables(Database):
    """``Database.first_tables``: queries that never wait for migrations left behind."""

    async def _schema(self) -> None:
        return None


class BackupFailed(RuntimeError):
    """The backup could not be written (the source database was fine)."""


def backup_file(source: Path, target: Path) -> Path:
    """Copy the database at ``source`` to ``target`` with the online backup API.

    Opens its own connection, so it works from a second process while the bot writes.
    A source that cannot be used raises ``DatabaseUnusable``, a target that cannot be written
    ``BackupFailed``; both with a one-line message, and no partial file is left behind.
    """
    if not source.is_file():
        raise DatabaseUnusable(
            f"database {source} does not exist; check `database` in the config "
            "(or KLEINSTADTBOT_DATABASE) and the working directory"
        )
    target = target.resolve()
    partial = target.with_name(target.name + ".partial")
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
        src.execute("SELECT count(*) FROM sqlite_master").fetchone()  # a database at all?
    except sqlite3.Error as exc:
        raise unusable(source, exc) or exc from None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        dst = sqlite3.connect(partial)
        try:
            # one step: a copy in steps starts over whenever the bot writes in between
            src.backup(dst, pages=-1)
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
        partial.replace(target)
    except (OSError, sqlite3.Error) as exc:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise BackupFailed(f"the backup to {target} failed: {exc}") from None
    finally:
        src.close()
    return target
