"""The ``kleinstadtbot`` command line as an operator uses it: help text and the console in a pipe."""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import build_parser
from bot.console import run_console
from config.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def run_cli(
    *args: str, env: dict | None = None, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("KLEINSTADTBOT_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=timeout,
    )


def _leaves(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()) -> dict[str, str]:
    """Every command line the parser accepts (``db backup``, …) with its help text."""
    found: dict[str, str] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found.update(_leaves(child, (*words, name)))
    if not found and words:
        found[" ".join(words)] = parser.description or ""
    return found


def test_help_lists_every_subcommand_with_its_actions():
    result = run_cli("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: kleinstadtbot [-h] COMMAND ...")
    listed = {
        m.group(1).strip(): m.group(2)
        for m in re.finditer(r"^  ((?:[a-z][\w-]* ?)+(?:[A-Z]+)?)\s{2,}(.+)$", result.stdout, re.MULTILINE)
    }
    leaves = _leaves(build_parser())
    # what the README promises, and everything the parser knows, each with its help line
    assert {"run", "console", "demo", "config check", "db backup", "content check"} <= set(leaves)
    assert {"data import-municipalities", "data import-central-places"} <= set(leaves)
    for words, help in leaves.items():
        line = next((k for k in listed if k == words or k.startswith(words + " ")), None)
        assert line is not None, f"{words!r} missing from --help"
        assert listed[line] == help
    assert "db backup PATH" in listed and "data import-central-places FILE" in listed


def test_subcommand_help_and_bad_usage():
    result = run_cli("db", "backup", "--help")
    assert result.returncode == 0 and "PATH" in result.stdout and "--config" in result.stdout
    result = run_cli("nonsense")
    assert result.returncode == 2 and "invalid choice" in result.stderr
    result = run_cli()
    assert result.returncode == 2


def test_console_in_a_pipe_answers_ping_and_help(tmp_path):
    db = tmp_path / "console.db"
    result = run_cli("console", env={"KLEINSTADTBOT_DATABASE": str(db)}, stdin="!ping\n\n!hilfe\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("🏓 Pong! kleinstadtbot ")
    assert "Das kann ich für Sie tun" in out
    assert "• !ping – Prüft, ob der Bot antwortet." in out
    assert "<" not in out.replace("<Befehl>", "")  # plain text, no HTML
    assert "> " not in out  # no prompt when not interactive
    assert "Traceback" not in result.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM schema_version").fetchone()[0] >= 1


def test_console_uses_config_prefix_and_locale(tmp_path):
    env = {
        "KLEINSTADTBOT_DATABASE": str(tmp_path / "c.db"),
        "KLEINSTADTBOT_COMMAND_PREFIX": "?",
        "KLEINSTADTBOT_LOCALE": "en",
    }
    result = run_cli("console", env=env, stdin="?ping\n?pnig\n")
    assert result.returncode == 0, result.stderr
    blocks = [b for b in result.stdout.split("\n\n") if b.strip()]
    assert blocks[0].startswith("🏓 Pong! kleinstadtbot ") and "running for" in blocks[0]
    assert "Did you mean ?ping?" in result.stdout
    assert "?help" in result.stdout and "!" not in result.stdout.replace("Pong!", "")


def test_console_with_bad_config_exits_2_with_one_line_per_problem(tmp_path):
    result = run_cli(
        "console",
        env={
            "KLEINSTADTBOT_DATABASE": str(tmp_path / "c.db"),
            "KLEINSTADTBOT_TIMEZONE": "Mars/Olympus",
            "KLEINSTADTBOT_LOCALE": "fr",
        },
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert sorted(line.split(":")[1].strip() for line in lines) == ["locale", "timezone"]


async def test_console_as_coordinator_in_process(tmp_path):
    settings = Settings(database=tmp_path / "c.db", coordinators=["@koordination:localhost"])
    out = io.StringIO()
    code = await run_console(settings, stdin=io.StringIO("!status\n"), stdout=out)
    assert code == 0
    assert "Schemaversion" in out.getvalue()
    member = io.StringIO()
    await run_console(settings, as_user="@gast:localhost", stdin=io.StringIO("!status\n"), stdout=member)
    assert "nur Koordinatorinnen und Koordinatoren" in member.getvalue()


# --- a database that cannot be used: one line, a non-zero status, and the process ends --------

RUN_ENV = {
    "KLEINSTADTBOT_HOMESERVER": "http://127.0.0.1:9",  # closed: the database fails first
    "KLEINSTADTBOT_USER_ID": "@kleinstadtbot:localhost",
    "KLEINSTADTBOT_ACCESS_TOKEN": "syt_not_used",
}


async def _damaged(path: Path, kind: str) -> Path:
    if kind == "not a database":
        path.write_bytes(b"Kleinstadtakademie " * 500)
        return path
    from tests.local_bot import migrated_database

    await (await migrated_database(path)).close()
    with path.open("r+b") as handle:  # cut off after a third: tables point past the end
        handle.truncate(path.stat().st_size // 3)
    return path


def _one_line(result: subprocess.CompletedProcess, *expected: str) -> str:
    assert result.returncode == 4, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("database error: ") and "Traceback" not in result.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("command", ["run", "console"])
@pytest.mark.parametrize(
    "kind, advice",
    [("truncated", "is damaged"), ("not a database", "is not a database")],
)
async def test_a_bad_database_ends_the_start_with_one_line(tmp_path, command, kind, advice):
    db = await _damaged(tmp_path / "bot.db", kind)
    before = db.read_bytes()
    env = {**RUN_ENV, "KLEINSTADTBOT_DATABASE": str(db)}
    # a hang (the database thread keeping the process alive) fails here by the timeout
    result = await asyncio.to_thread(run_cli, command, env=env, stdin="!ping\n", timeout=30)
    _one_line(result, str(db), advice, "restore a backup")
    assert db.read_bytes() == before  # nothing was written into the damaged file


@pytest.mark.parametrize("command", ["run", "console"])
async def test_a_database_locked_by_another_process_ends_the_start_with_one_line(tmp_path, command):
    from tests.local_bot import migrated_database

    db = tmp_path / "bot.db"
    await (await migrated_database(db)).close()
    holder = sqlite3.connect(db, isolation_level=None)  # "another process": a second connection
    try:
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        env = {**RUN_ENV, "KLEINSTADTBOT_DATABASE": str(db)}
        result = await asyncio.to_thread(run_cli, command, env=env, stdin="!ping\n", timeout=30)
    finally:
        holder.close()
    _one_line(result, str(db), "locked by another process", "stop the other process")


def test_db_backup_of_a_missing_database_is_one_line(tmp_path):
    missing = tmp_path / "nirgends.db"
    result = run_cli(
        "db", "backup", str(tmp_path / "copy.db"), env={"KLEINSTADTBOT_DATABASE": str(missing)}, timeout=30
    )
    _one_line(result, str(missing), "does not exist")
    assert not (tmp_path / "copy.db").exists()
    assert not list(tmp_path.glob("*.partial"))


def test_db_backup_into_an_unwritable_place_is_one_line(tmp_path):
    source = tmp_path / "bot.db"
    sqlite3.connect(source).execute("CREATE TABLE t (x)").connection.close()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run_cli(
        "db", "backup", str(blocker / "copy.db"), env={"KLEINSTADTBOT_DATABASE": str(source)}, timeout=30
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"backup error: the backup to {blocker / 'copy.db'} failed: "
        + result.stderr.split("failed: ", 1)[1].strip()
    ]
    assert "Traceback" not in result.stderr
