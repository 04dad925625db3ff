"""Backups and restore without a homeserver: backup sets named with their time and verified,
retention, failures counted, ``db restore`` refused while a bot holds the database, ``db check``."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.scheduler import build_scheduler
from config.settings import Settings
from storage.backups import (
    BotLock,
    BotRunning,
    ScheduledBackups,
    backup_sets,
    check_database,
    restore_backup,
    take_backup,
)
from storage.database import DatabaseUnusable
from tests.local_bot import migrated_database

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def _crypto(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    store = folder / "@bot:localhost_DEVICE.db"
    with sqlite3.connect(store) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS accounts (user_id TEXT, device_id TEXT, account BLOB)")
        conn.execute("INSERT INTO accounts VALUES ('@bot:localhost', 'DEVICE', x'00')")
    return store


async def test_a_backup_set_holds_the_database_and_the_crypto_store_named_with_its_time(tmp_path):
    db = await migrated_database(tmp_path / "bot.db")
    crypto = _crypto(tmp_path / "crypto").parent
    try:
        await db.execute("INSERT INTO bot_state (key, value) VALUES ('marker', 'before')")
        made = take_backup(db.path, crypto, tmp_path / "backups", keep=3, now=T0)
        await db.execute("UPDATE bot_state SET value = 'after' WHERE key = 'marker'")  # the bot goes on
    finally:
        await db.close()
    assert made.name == "2026-03-01T02-00-00Z"
    assert sorted(p.relative_to(made).as_posix() for p in made.rglob("*.db")) == [
        "bot.db",
        "crypto/@bot:localhost_DEVICE.db",
    ]
    with sqlite3.connect(made / "bot.db") as conn:
        assert conn.execute("SELECT value FROM bot_state WHERE key = 'marker'").fetchone() == ("before",)
    assert check_database(made / "bot.db").ok
    assert not list((tmp_path / "backups").glob("*.partial"))


async def test_retention_keeps_the_newest_sets(tmp_path):
    db = await migrated_database(tmp_path / "bot.db")
    await db.close()
    for day in range(5):
        take_backup(db.path, None, tmp_path / "backups", keep=3, now=T0 + timedelta(days=day))
    assert [p.name[:10] for p in backup_sets(tmp_path / "backups")] == [
        "2026-03-03",
        "2026-03-04",
        "2026-03-05",
    ]


async def test_a_failed_backup_is_counted_logged_and_removes_nothing(tmp_path, caplog):
    db = await migrated_database(tmp_path / "bot.db")
    await db.close()
    jobs = ScheduledBackups(db.path, None, tmp_path / "backups", keep=1)
    assert await jobs.run(T0) is not None
    (tmp_path / "bot.db").write_bytes(b"not a database at all" * 100)  # the source is damaged now
    for suffix in ("-wal", "-shm"):
        Path(str(tmp_path / "bot.db") + suffix).unlink(missing_ok=True)
    assert await jobs.run(T0 + timedelta(days=1)) is None
    assert (jobs.succeeded, jobs.failed) == (1, 1)
    assert "scheduled backup failed" in caplog.text and "restore a backup" in (jobs.last_error or "")
    assert [p.name for p in backup_sets(tmp_path / "backups")] == ["2026-03-01T02-00-00Z"]  # kept


def test_a_damaged_copy_is_not_kept(tmp_path, monkeypatch):
    import storage.backups as backups

    source = tmp_path / "bot.db"
    with sqlite3.connect(source) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER)")
    monkeypatch.setattr(backups, "integrity_problems", lambda path: [f"{path}: page 3 is never used"])
    with pytest.raises(backups.BackupFailed, match="integrity check"):
        take_backup(source, None, tmp_path / "backups", keep=3, now=T0)
    assert backup_sets(tmp_path / "backups") == [] and not list((tmp_path / "backups").iterdir())


def test_the_backup_job_runs_daily_at_the_configured_time(tmp_path):
    settings = Settings(database=tmp_path / "bot.db", backup={"time": "4:15", "keep": 2})
    jobs = ScheduledBackups(settings.database, settings.crypto_dir, settings.backup_dir, settings.backup.keep)

    async def housekeeping() -> None: ...

    scheduler = build_scheduler(settings, housekeeping, jobs)
    job = scheduler.get_job("backup")
    assert job is not None and str(job.trigger) == "cron[hour='4', minute='15']"
    assert settings.backup_dir == tmp_path / "backups"
    assert build_scheduler(settings, housekeeping).get_job("backup") is None


def test_backup_settings_are_checked():
    from config.settings import ConfigError, load_settings

    with pytest.raises(ConfigError) as error:
        load_settings(None, backup={"time": "25:00", "keep": 0}, metrics={"address": "localhost"})
    text = "\n".join(error.value.problems)
    assert "backup.time: expected a time of day as HH:MM" in text
    assert "backup.keep" in text and "metrics.address: expected an IP address" in text


async def test_restore_is_refused_while_a_bot_holds_the_database(tmp_path):
    db = await migrated_database(tmp_path / "bot.db")
    await db.close()
    made = take_backup(db.path, None, tmp_path / "backups", keep=3, now=T0)
    lock = BotLock(db.path).acquire()
    try:
        with pytest.raises(
            BotRunning, match=r"in use by a running kleinstadtbot \(process \d+\).*stop it first"
        ):
            restore_backup(made / "bot.db", db.path, None, now=T0)
        # and from another process, as the operator would run it: exit status 4, one line
        result = subprocess.run(  # noqa: ASYNC221 (the operator's second process)
            [sys.executable, "-m", "bot.cli", "db", "restore", str(made / "bot.db")],
            cwd=ROOT,
            env={**os.environ, "KLEINSTADTBOT_DATABASE": str(db.path)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 4, result.stderr
        assert f"process {os.getpid()}" in result.stderr and "stop it first" in result.stderr
        # a second bot is refused the same way
        with pytest.raises(BotRunning):
            BotLock(db.path).acquire()
    finally:
        lock.release()
    BotLock(db.path).acquire().release()  # free again once the first let go


async def test_restore_puts_the_backup_in_place_and_keeps_what_was_there(tmp_path):
    db = await migrated_database(tmp_path / "bot.db")
    store = _crypto(tmp_path / "crypto")
    await db.execute("INSERT INTO bot_state (key, value) VALUES ('marker', 'in the backup')")
    made = take_backup(db.path, store.parent, tmp_path / "backups", keep=3, now=T0)
    await db.execute("UPDATE bot_state SET value = 'later' WHERE key = 'marker'")
    await db.close()
    with sqlite3.connect(store) as conn:
        conn.execute("DELETE FROM accounts")
    restored = restore_backup(made / "bot.db", db.path, store.parent, now=T0 + timedelta(hours=1))
    assert restored.crypto and restored.version == check_database(db.path).latest
    with sqlite3.connect(db.path) as conn:
        assert conn.execute("SELECT value FROM bot_state WHERE key = 'marker'").fetchone() == (
            "in the backup",
        )
        audit = conn.execute("SELECT actor, action FROM audit_log").fetchall()
    assert audit == [("operator", "db restore")]
    with sqlite3.connect(store) as conn:
        assert conn.execute("SELECT count(*) FROM accounts").fetchone() == (1,)
    kept = {p.name for p in restored.kept}
    assert "bot.db.before-restore-2026-03-01T03-00-00Z" in kept
    assert "crypto.before-restore-2026-03-01T03-00-00Z" in kept
    with sqlite3.connect(tmp_path / "bot.db.before-restore-2026-03-01T03-00-00Z") as conn:
        assert conn.execute("SELECT value FROM bot_state WHERE key = 'marker'").fetchone() == ("later",)


async def test_a_damaged_or_foreign_backup_is_not_restored(tmp_path):
    db = await migrated_database(tmp_path / "bot.db")
    await db.close()
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes((tmp_path / "bot.db").read_bytes()[:8192])
    foreign = tmp_path / "other.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
    for backup, problem in (
        (damaged, "damaged|malformed|not a database"),
        (foreign, "no kleinstadtbot database"),
    ):
        with pytest.raises(DatabaseUnusable, match=problem):
            restore_backup(backup, db.path, None, now=T0)
    assert check_database(db.path).ok  # untouched
    assert not list(tmp_path.glob("*.before-restore-*"))


async def test_db_check_on_the_command_line(tmp_path):
    db = await migrated_database(tmp_path / "bot.db")
    await db.close()
    env = {**os.environ, "KLEINSTADTBOT_DATABASE": str(db.path)}

    def check(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "bot.cli", "db", "check", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    good = check()
    assert good.returncode == 0 and "sound, schema version" in good.stdout
    newer = tmp_path / "newer.db"
    newer.write_bytes(db.path.read_bytes())
    with sqlite3.connect(newer) as conn:
        conn.execute("INSERT INTO schema_version (version, description) VALUES (999, 'from the future')")
    bad = check(str(newer))
    assert bad.returncode == 4 and "schema version 999" in bad.stderr and "newer kleinstadtbot" in bad.stderr
