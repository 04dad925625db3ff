"""Backups and restore of the bot's state: the database and nio's crypto store.

- ``BotLock``: a running bot holds an advisory lock (``flock``) on ``<database>.lock`` for its
  whole life. ``db restore`` takes the same lock and is refused while a bot holds it; a second
  bot on the same database is refused too. The kernel drops the lock when the process ends, so
  a crash never leaves a stale lock behind.
- ``take_backup``: one backup set, a folder named with its time in UTC
  (``2026-03-01T03-00-00Z``) holding the database and the crypto store, each copied with
  SQLite's online backup API (safe while the bot writes) and verified with
  ``PRAGMA integrity_check`` before the folder gets its final name. Only then are sets beyond
  the retention removed, oldest first.
- ``restore_backup``: with the bot stopped, puts a backup's database (and the crypto store
  beside it) in place. What was there is kept beside it as ``….before-restore-<time>``, never
  deleted.
- ``check_database``: integrity, foreign keys, schema version (``db check`` and the doctor).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import re
import shutil
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from storage.database import BackupFailed, DatabaseUnusable, backup_file, migration_modules, unusable

log = logging.getLogger(__name__)

SET_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z$")
CRYPTO = "crypto"


class BotRunning(DatabaseUnusable):
    """A kleinstadtbot is running on this database."""


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


class BotLock:
    """The advisory lock a running bot holds on its database (see the module docstring)."""

    def __init__(self, database: Path):
        self.path = lock_path(Path(database))
        self._file: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def acquire(self, doing: str = "start") -> BotLock:
        """Take the lock or raise ``BotRunning`` naming the process that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise BotRunning(
                f"database {self.path.with_suffix('')} is in use by a running kleinstadtbot ({holder}); "
                f"stop it first (e.g. `systemctl stop kleinstadtbot`), then {doing} again"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()}\n")
        handle.flush()
        self._file = handle
        return self

    def release(self) -> None:
        if self._file is not None:
            handle, self._file = self._file, None
            with contextlib.suppress(OSError):
                handle.truncate(0)
            handle.close()  # closing drops the flock

    def __enter__(self) -> BotLock:
        return self if self.held else self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def latest_schema_version() -> int:
    modules = migration_modules()
    return modules[-1][0] if modules else 0


def _connect_ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)


def integrity_problems(path: Path) -> list[str]:
    """What ``PRAGMA integrity_check`` finds in the SQLite file at ``path`` (empty: sound)."""
    try:
        conn = _connect_ro(path)
        try:
            rows = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        explained = unusable(path, exc)
        return [str(explained) if explained else f"{path}: {exc}"]
    return [] if rows == ["ok"] else [f"{path}: {row}" for row in rows[:10]]


def schema_version(path: Path) -> int | None:
    """The kleinstadtbot schema version of the database at ``path``; None if it has none."""
    conn = _connect_ro(path)
    try:
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    except sqlite3.OperationalError:
        return None
    finally:
        conn.close()
    return int(row[0]) if row and row[0] is not None else None


@dataclass(frozen=True)
class DatabaseCheck:
    path: Path
    problems: list[str]
    version: int | None
    latest: int

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.problems:
            return "; ".join(self.problems)
        if self.version is not None and self.version < self.latest:
            return (
                f"{self.path}: sound, schema version {self.version} (this kleinstadtbot migrates it "
                f"to {self.latest} at its next start)"
            )
        return f"{self.path}: sound, schema version {self.version}"


def check_database(path: Path) -> DatabaseCheck:
    """Integrity, foreign keys and schema version of a kleinstadtbot database file."""
    latest = latest_schema_version()
    if not path.is_file():
        return DatabaseCheck(path, [f"{path} does not exist"], None, latest)
    problems = integrity_problems(path)
    version = None
    if not problems:
        try:
            conn = _connect_ro(path)
            try:
                broken = conn.execute("PRAGMA foreign_key_check").fetchall()
            finally:
                conn.close()
            if broken:
                tables = sorted({r[0] for r in broken})
                problems.append(
                    f"{path}: {len(broken)} row(s) point to missing rows (in {', '.join(tables)})"
                )
            version = schema_version(path)
        except sqlite3.Error as exc:
            problems.append(str(unusable(path, exc) or f"{path}: {exc}"))
    if not problems and version is None:
        problems.append(f"{path} is an SQLite file but no kleinstadtbot database (no schema_version)")
    elif version is not None and version > latest:
        problems.append(
            f"{path} has schema version {version}, this kleinstadtbot knows only up to {latest}; "
            "use a newer kleinstadtbot or another backup"
        )
    return DatabaseCheck(path, problems, version, latest)


# --- backup sets ---------------------------------------------------------------------------------


def set_name(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")


def backup_sets(directory: Path) -> list[Path]:
    """Complete backup sets in ``directory``, oldest first."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_dir() and SET_NAME.match(p.name))


def take_backup(database: Path, crypto_dir: Path | None, directory: Path, keep: int, now: datetime) -> Path:
    """One verified backup set (see the module docstring); returns its folder. Raises
    ``BackupFailed`` (or ``DatabaseUnusable`` for a database that cannot be read); a failed set
    leaves nothing behind and removes no older set."""
    final = directory / set_name(now)
    partial = directory / (final.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        copies = [backup_file(database, partial / database.name)]
        if crypto_dir is not None and crypto_dir.is_dir():
            for store in sorted(crypto_dir.glob("*.db")):
                copies.append(backup_file(store, partial / CRYPTO / store.name))
        for copy in copies:
            problems = integrity_problems(copy)
            if problems:
                raise BackupFailed(f"the backup {copy} failed its integrity check: {problems[0]}")
        if final.exists():  # two backups within one second: keep the first
            shutil.rmtree(partial)
            return final
        partial.rename(final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    for old in backup_sets(directory)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
        log.info("backup %s removed (keeping the newest %d)", old.name, keep)
    return final


@dataclass
class ScheduledBackups:
    """The daily backup job (``bot.scheduler``) and what metrics and the doctor read of it."""

    database: Path
    crypto_dir: Path | None
    directory: Path
    keep: int
    succeeded: int = 0
    failed: int = 0
    last_success: datetime | None = None
    last_set: Path | None = None
    last_error: str | None = None
    _running: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def run(self, now: datetime | None = None) -> Path | None:
        """Take one backup set; failures are logged and counted, never raised (a job)."""
        async with self._running:
            moment = now or datetime.now(UTC)
            try:
                made = await asyncio.to_thread(
                    take_backup, self.database, self.crypto_dir, self.directory, self.keep, moment
                )
            except (BackupFailed, DatabaseUnusable, OSError, sqlite3.Error) as exc:
                self.failed += 1
                self.last_error = str(exc)
                log.error("scheduled backup failed: %s", exc)
                return None
            self.succeeded += 1
            self.last_success, self.last_set, self.last_error = moment, made, None
            log.info("backup written to %s", made)
            return made


# --- restore -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Restored:
    database: Path
    kept: list[Path]  # what was in place before, moved aside
    crypto: bool  # the crypto store was restored too
    version: int


def _move_aside(path: Path, stamp: str, kept: list[Path]) -> None:
    if path.exists():
        target = path.with_name(f"{path.name}.before-restore-{stamp}")
        path.rename(target)
        kept.append(target)


def restore_backup(
    source: Path, database: Path, crypto_dir: Path | None, *, with_crypto: bool = True, now: datetime
) -> Restored:
    """Put the backup ``source`` in place of ``database`` (and the crypto store beside the
    backup in place of ``crypto_dir``), with no bot running (``BotRunning`` otherwise)."""
    source = source.resolve()
    if source.is_dir():  # a backup set's folder names its database
        candidates = [p for p in source.glob("*.db")]
        if len(candidates) != 1:
            raise DatabaseUnusable(
                f"{source} holds {len(candidates)} databases; name the .db file to restore"
            )
        source = candidates[0]
    with BotLock(database).acquire(doing="restore"):
        check = check_database(source)
        if not check.ok:
            raise DatabaseUnusable(f"backup not restored: {check.problems[0]}")
        assert check.version is not None
        crypto_source = source.parent / CRYPTO
        restore_crypto = with_crypto and crypto_dir is not None and crypto_source.is_dir()
        if restore_crypto:
            for store in crypto_source.glob("*.db"):
                problems = integrity_problems(store)
                if problems:
                    raise DatabaseUnusable(f"backup not restored: crypto store {problems[0]}")
        stamp = set_name(now)
        database.parent.mkdir(parents=True, exist_ok=True)
        incoming = database.with_name(database.name + ".restoring")
        incoming.unlink(missing_ok=True)
        backup_file(source, incoming)  # a consistent copy first: nothing is moved if this fails
        kept: list[Path] = []
        for suffix in ("", "-wal", "-shm", "-journal"):  # a stale log must not meet the new file
            _move_aside(database.with_name(database.name + suffix), stamp, kept)
        incoming.rename(database)
        if restore_crypto:
            assert crypto_dir is not None
            _move_aside(crypto_dir, stamp, kept)
            crypto_dir.mkdir(parents=True)
            for store in sorted(crypto_source.glob("*.db")):
                backup_file(store, crypto_dir / store.name)
        _note_restore(database, source, now)
        return Restored(database, kept, restore_crypto, check.version)


def _note_restore(database: Path, source: Path, now: datetime) -> None:
    """An audit entry in the restored database, where it has the audit trail already."""
    conn = sqlite3.connect(database)
    try:
        with conn:
            conn.execute(
                "INSERT INTO audit_log (at, actor, action, detail, outcome, result) "
                "VALUES (?, 'operator', 'db restore', json_object('from', ?), 'answered', 'restored')",
                (int(now.timestamp()), str(source)),
            )
    except sqlite3.OperationalError:
        pass  # a backup from before the audit trail: migrations add it at the next start
    finally:
        conn.close()
