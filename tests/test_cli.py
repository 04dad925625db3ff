"""The ``kleinstadtbot`` command line as an operator uses it: help text and the console in a pipe."""

from __future__ import annotations

import io
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

from bot.cli import build_parser
from bot.console import run_console
from config.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, env: dict | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("KLEINSTADTBOT_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
    )


def test_help_lists_every_subcommand():
    result = run_cli("--help")
    assert result.returncode == 0
    listed = set(re.findall(r"^    (\w+)\s", result.stdout, re.MULTILINE))
    assert {"run", "console", "demo", "config", "db"} <= listed
    # everything the parser knows is listed, with a help line
    parser = build_parser()
    choices = next(a for a in parser._actions if a.dest == "command").choices
    assert set(choices) == listed


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
