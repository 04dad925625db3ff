"""The terminal console with clumsy or hostile input: every line is answered, a failing command
gets the friendly error notice and the console reads on, and nothing it prints drives the
terminal (ESC) or reverses text (bidi overrides)."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys

import pytest

from bot.app import build_renderer
from bot.console import run_console
from commands.parsing import BIDI_CONTROLS, CONTROLS
from config.settings import Settings
from tests.test_cli import ROOT, run_cli

MAYOR = "@anna:localhost"
SPOOFING = set(BIDI_CONTROLS + CONTROLS)


async def console(settings: Settings, *lines: str) -> str:
    out = io.StringIO()
    code = await run_console(
        settings, as_user=MAYOR, stdin=io.StringIO("".join(f"{line}\n" for line in lines)), stdout=out
    )
    assert code == 0
    return out.getvalue()


def test_console_in_a_pipe_survives_a_superscript_number(tmp_path):
    result = run_cli(
        "console",
        env={"KLEINSTADTBOT_DATABASE": str(tmp_path / "c.db")},
        stdin="!tandem info ²\n!tandem info ³\n!ping\n",
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    out = result.stdout
    assert out.index("„²“") < out.index("„³“") < out.index("🏓 Pong!")
    assert "!tandem info 3" in out  # the usage reply shows a correct example


async def test_console_reads_on_after_a_failing_command_and_prints_the_friendly_error(
    tmp_path, declare, monkeypatch, caplog
):
    from commands.registry import Arg

    async def handler(ctx, number=None):
        await ctx.reply("ping", version="t", uptime_seconds=1)

    cmd = declare("konsole_test", summary="x", args=[Arg("number", "int", required=False)])(handler)

    def broken_bind(words):
        raise ValueError("invalid literal for int() with base 10: '²'")

    monkeypatch.setattr(cmd, "bind", broken_bind)
    settings = Settings(database=tmp_path / "c.db")
    with caplog.at_level(logging.ERROR, logger="commands.dispatcher"):
        out = await console(settings, "!konsole_test 3", "!ping")
    [record] = [r for r in caplog.records if "$console1" in r.getMessage()]
    ref = re.search(r"ref ([0-9a-f]{8})", record.getMessage()).group(1)
    notice, _html = build_renderer(settings).render("error_internal", {"ref": ref})
    assert out.startswith(notice + "\n\n")
    assert "invalid literal" not in out and "ValueError" not in out
    assert "🏓 Pong!" in out.split(notice, 1)[1]


@pytest.mark.parametrize(
    "line",
    [
        "!xq\x1b[2J\u202eyz",  # unknown command: the word is echoed
        "!tandem info \x1b]0;pwned\x07\u2066abc\u2069",  # usage error: the value is echoed
        "!berechtigt Xq\u202ezz\x1b[31myw\u200f\x9b",  # unknown town: the query is echoed
    ],
)
async def test_console_prints_no_control_or_bidi_characters(tmp_path, line):
    out = await console(Settings(database=tmp_path / "c.db"), line, "!ping")
    assert not SPOOFING & set(out), [hex(ord(c)) for c in SPOOFING & set(out)]
    assert "🏓 Pong!" in out


def test_console_in_a_pipe_lets_no_escape_reach_the_terminal(tmp_path):
    result = run_cli(
        "console",
        env={"KLEINSTADTBOT_DATABASE": str(tmp_path / "c.db")},
        stdin="!xq\x1b[2J\x1b[31mrot\u202eyz\n!ping\n",
    )
    assert result.returncode == 0, result.stderr
    assert "xq[2j[31mrotyz" in result.stdout  # what was typed, visibly, minus the controls
    assert not SPOOFING & set(result.stdout)


async def test_console_reads_bytes_that_are_not_utf8(tmp_path, caplog):
    """A pipe decodes such bytes as lone surrogates (surrogateescape), which can be neither stored
    nor printed: they arrive as U+FFFD and every line is answered without an error notice."""
    with caplog.at_level(logging.ERROR):
        out = await console(
            Settings(database=tmp_path / "c.db"),
            "!thema beitreten Wohn\udcffen",
            "!profil themen hinzufügen Wohn\udcc3en",
            "!berechtigt Bad\udcffBerleburg",
            "!ping",
        )
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert "„Wohn\ufffden“" in out  # echoed, with the mark where the unreadable byte was
    assert "🏓 Pong!" in out
    out.encode("utf-8")  # printable as it is


def test_console_with_a_strict_terminal_encoding_reads_on_after_bytes_that_are_not_utf8(tmp_path):
    """A UTF-8 locale such as de_DE.UTF-8 decodes standard input strictly: one stray byte ended
    the console with a UnicodeDecodeError."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLEINSTADTBOT_")}
    env.update(KLEINSTADTBOT_DATABASE=str(tmp_path / "c.db"), PYTHONIOENCODING="utf-8:strict")
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "console"],
        cwd=ROOT,
        env=env,
        input="!thema beitreten Wohn\udcffen\n!ping\n".encode("utf-8", "surrogateescape"),
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    out = result.stdout.decode("utf-8")
    assert "„Wohn\ufffden“" in out
    assert "🏓 Pong!" in out
