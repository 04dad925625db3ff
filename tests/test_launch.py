"""The console script's start (``bot.launch``): Python's garbage collector paused until the first
answers are out, and never longer than that."""

from __future__ import annotations

import asyncio
import gc
import re
import signal
import time

import pytest

import bot.cli
import bot.runtime
from bot import launch
from bot.runtime import KleinstadtBot
from config.settings import Settings
from tests.answer_checks import answered, settle, wait_answered
from tests.bot_process import ROOT, account_config, run_process
from tests.matrix_fixtures import unique


@pytest.fixture
def collector():
    """The test pauses the collector as the console script does; afterwards it is as it was."""
    was_on = gc.isenabled()
    yield
    launch.resume_collector("the test is over")
    if was_on:
        gc.enable()


def test_the_pause_ends_once_and_never_turns_on_a_collector_someone_else_stopped(collector):
    launch.pause_collector()
    assert not gc.isenabled() and launch.collector_paused()
    launch.resume_collector("first")
    assert gc.isenabled() and not launch.collector_paused()
    launch.resume_collector("again")  # idempotent
    assert gc.isenabled()

    gc.disable()  # someone else's choice, not the launcher's pause
    launch.pause_collector()
    assert not launch.collector_paused()
    launch.resume_collector("not ours")
    assert not gc.isenabled()
    gc.enable()


def test_every_command_but_run_has_the_collector_on_before_it_starts_work(collector, monkeypatch, tmp_path):
    seen: list[bool] = []

    def config_check(args):
        seen.append(gc.isenabled())
        return 0

    monkeypatch.setattr(bot.cli, "cmd_config_check", config_check)
    launch.pause_collector()
    assert bot.cli.main(["config", "check"]) == 0
    assert seen == [True]


def test_the_console_script_is_the_launcher():
    """What ``pip install`` writes as ``kleinstadtbot`` starts with the pause."""
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["kleinstadtbot"] == "bot.launch:main"


async def test_a_start_held_up_by_a_homeserver_that_is_down_gets_the_collector_back(
    collector, monkeypatch, tmp_path
):
    """No first answers ever come: the collector is on again after ``COLLECTOR_PAUSE_SECONDS``,
    while the bot goes on trying to log in."""
    monkeypatch.setattr(bot.runtime, "COLLECTOR_PAUSE_SECONDS", 0.5)
    resumed = asyncio.Event()
    reasons: list[str] = []

    def noted(reason: str) -> None:
        reasons.append(reason)
        launch.resume_collector(reason)
        resumed.set()

    monkeypatch.setattr(bot.runtime, "resume_collector", noted)
    settings = Settings(
        homeserver="http://127.0.0.1:9",  # discard port: nothing listens
        user_id="@bot:localhost",
        password="secret-for-nothing",
        database=tmp_path / "bot.db",
        sync={"backoff_initial_seconds": 0.1, "backoff_max_seconds": 0.2},
    )
    launch.pause_collector()
    kleinstadtbot = KleinstadtBot(settings)
    started = time.monotonic()
    run = asyncio.ensure_future(kleinstadtbot.run())
    try:
        await asyncio.wait_for(resumed.wait(), 10)
        assert gc.isenabled(), "the collector stayed paused"
        assert reasons == ["the start took long"]
        assert time.monotonic() - started >= 0.4
        assert not run.done(), "the bot gave up instead of waiting for its homeserver"
    finally:
        kleinstadtbot.request_stop()
        await asyncio.wait_for(run, 15)


@pytest.mark.synapse
async def test_a_run_with_30_commands_waiting_turns_the_collector_on_after_their_answers(
    collector, monkeypatch, make_bot, make_user
):
    """In the runtime as the console script runs it: paused through the start, on again once
    the commands that came while the bot was away are answered, each once."""
    reasons: list[tuple[str, bool]] = []
    resume = launch.resume_collector

    resumed = asyncio.Event()

    def noted(reason: str) -> None:
        reasons.append((reason, launch.collector_paused()))
        resume(reason)
        resumed.set()

    monkeypatch.setattr(bot.runtime, "resume_collector", noted)
    first = await make_bot(rate_limit={"commands": 1000})  # 30 from one user in a minute
    mayor = await make_user("mayor")
    room = await mayor.dm(first.user_id)
    await mayor.ask(room, "!ping")
    await first.stop()
    reasons.clear()  # the first bot's own end
    resumed.clear()

    waiting = [await mayor.send(room, "!ping") for _ in range(30)]
    launch.pause_collector()
    await make_bot(account=first.account, rate_limit={"commands": 1000})
    await wait_answered(mayor, room, first.user_id, waiting, 30, timeout=60)
    await settle(mayor, room)
    assert answered(mayor, room, first.user_id, waiting) == waiting
    assert all(len(mayor.replies_to(room, command)) == 1 for command in waiting)
    await asyncio.wait_for(resumed.wait(), 10)  # once the answers are out
    assert gc.isenabled()
    assert reasons[0] == ("the first answers are out", True)


@pytest.mark.synapse
async def test_the_console_script_answers_and_logs_when_the_collector_runs_again(
    synapse, make_user, tmp_path
):
    """``python -m bot.launch run`` (the installed ``kleinstadtbot``) through Synapse: a command
    sent while it was down is answered, then the collector is on again, in that order. The
    second start takes every dataclass method from the file the first start wrote, and answers
    with nio's HTTP/1.1 and HTTP/2 transports never loaded."""
    account = synapse.register(unique("bot"))
    config = account_config(tmp_path, synapse, account, log_level="DEBUG", sync={"timeout_ms": 1000})
    logs = [tmp_path / "first.log", tmp_path / "second.log"]

    async def stop(process: asyncio.subprocess.Process) -> None:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 30)

    cache = {"CACHE_DIRECTORY": str(tmp_path / "cache")}  # as systemd's CacheDirectory= sets it
    process = await run_process(config, logs[0], **cache)
    try:
        mayor = await make_user("mayor")
        room = await mayor.dm(account.user_id)
        await mayor.ask(room, "!ping", timeout=60)
        await stop(process)
        [kept] = (tmp_path / "cache").iterdir()
        written = kept.stat().st_mtime_ns
        waiting = await mayor.send(room, "!ping")
        process = await run_process(config, logs[1], **cache)
        await mayor.wait_reply(room, waiting, timeout=60)
        await settle(mayor, room)
        assert len(mayor.replies_to(room, waiting)) == 1
    finally:
        await stop(process)
    output = logs[1].read_text(errors="replace")
    assert process.returncode == 0, output[-3000:]
    resumed = output.find("garbage collector on again")
    assert resumed > output.find("kleinstadtbot ready") > 0, output[-3000:]
    assert "(the first answers are out)" in output[resumed:].splitlines()[0]
    [taken] = re.findall(r"dataclass methods: (\d+) from \S+, 0 compiled \(the start is over\)", output)
    assert int(taken) > 500, output[-3000:]  # nio's events and responses alone are more
    assert kept.stat().st_mtime_ns == written  # nothing new: not written again
    [unread] = re.findall(r"deferred modules nothing has read: (.*)", output)
    assert {"h11", "h2.connection", "Crypto.Cipher.AES"} <= set(unread.split(", ")), unread
