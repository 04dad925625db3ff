"""The dispatcher: rate limit, failing handlers, roles, plain text."""

from __future__ import annotations

import logging
import re

import pytest

from commands.context import Role
from commands.ratelimit import RateLimiter, Verdict
from commands.registry import REGISTRY
from tests.local_bot import make_local_bot

MAYOR = "@buergermeisterin:localhost"
OTHER = "@kaemmerer:localhost"


@pytest.fixture
async def limited_bot(tmp_path):
    bot = await make_local_bot(tmp_path, rate_limit={"commands": 3, "window_seconds": 60})
    yield bot
    await bot.db.close()


async def test_rate_limit_warns_once_then_stays_quiet_until_the_window_passes(limited_bot):
    bot = limited_bot
    for _ in range(3):
        [answer] = await bot.say("!ping")
        assert answer.body.startswith("🏓 Pong!")
        bot.clock.advance(1)
    [warning] = await bot.say("!ping")
    assert "sehr viele Befehle" in warning.body
    assert "etwa 57 Sekunden" in warning.body  # first command was 3 s ago in a 60 s window
    assert await bot.say("!ping") == []
    assert await bot.say("!hilfe") == []
    assert await bot.say('!ping "offen') == []  # even malformed commands stay quiet
    # other users are not affected
    [other] = await bot.say("!ping", sender=OTHER)
    assert other.body.startswith("🏓 Pong!")
    bot.clock.advance(30)
    assert await bot.say("!ping") == []
    bot.clock.advance(31)
    [again] = await bot.say("!ping")
    assert again.body.startswith("🏓 Pong!")


async def test_rate_limit_counts_plain_text_in_direct_chats(limited_bot):
    for _ in range(3):
        assert len(await limited_bot.say("Hallo?")) == 1
    [warning] = await limited_bot.say("Hallo?")
    assert "sehr viele Befehle" in warning.body
    assert await limited_bot.say("Hallo?") == []
    # group chatter without a mention is not counted and never answered
    assert await limited_bot.say("Hallo zusammen", is_direct=False, sender=OTHER) == []


def test_rate_limiter_sliding_window_and_eviction():
    limiter = RateLimiter(2, 10, max_users=2)
    assert limiter.check("a", 0) is Verdict.ALLOW
    assert limiter.check("a", 5) is Verdict.ALLOW
    assert limiter.check("a", 6) is Verdict.WARN
    assert limiter.check("a", 9) is Verdict.DROP
    assert limiter.retry_after("a", 9) == pytest.approx(1)
    assert limiter.check("a", 10.5) is Verdict.ALLOW  # the hit at 0 left the window
    assert limiter.check("b", 11) is Verdict.ALLOW
    # a third user evicts idle ones instead of growing without bound
    assert limiter.check("c", 30) is Verdict.ALLOW
    assert set(limiter._hits) == {"c"}


@pytest.fixture
def failing_command(declare):
    calls = []

    async def explode(ctx):
        calls.append(ctx.sender)
        raise RuntimeError("Datenbank weg: /geheim/pfad")

    declare("kaputt_test", summary="bricht")(explode)
    return calls


async def test_failing_handler_gets_apology_with_reference(local_bot, failing_command, caplog):
    with caplog.at_level(logging.ERROR, logger="commands.dispatcher"):
        [apology] = await local_bot.say("!kaputt_test")
    assert failing_command == [MAYOR]
    assert apology.body.startswith("Entschuldigung, bei der Bearbeitung ist ein Fehler aufgetreten.")
    match = re.search(r"Fehlernummer: ([0-9a-f]{8})", apology.body)
    assert match, apology.body
    assert "Datenbank weg" not in apology.body and "Traceback" not in apology.body
    assert "RuntimeError" not in apology.body
    # the same reference is in the log, with the traceback, for the operator
    logged = [r for r in caplog.records if match.group(1) in r.getMessage()]
    assert logged and logged[0].exc_info is not None
    # the next command still works
    [pong] = await local_bot.say("!ping")
    assert pong.body.startswith("🏓 Pong!")
    [second] = await local_bot.say("!kaputt_test")
    assert re.search(r"Fehlernummer: ([0-9a-f]{8})", second.body).group(1) != match.group(1)


async def test_failing_handler_in_english(tmp_path, failing_command):
    bot = await make_local_bot(tmp_path, locale="en")
    try:
        text = await bot.text("!kaputt_test")
    finally:
        await bot.db.close()
    assert "Entschuldigung" not in text
    assert re.search(r"[0-9a-f]{8}", text)


async def test_denied_command_names_the_needed_role(local_bot, declare):
    async def handler(ctx):
        await ctx.reply("ping", version="t", uptime_seconds=1)

    declare("nur_koord_test", summary="x", role=Role.COORDINATOR)(handler)
    denied = await local_bot.text("!nur_koord_test")
    allowed = await local_bot.text("!nur_koord_test", sender="@koordination:localhost")
    assert "nur Koordinatorinnen und Koordinatoren der Kleinstadtakademie" in denied
    assert "Koordinationsteam" in denied
    assert allowed.startswith("🏓 Pong!")


async def test_hidden_coordinator_command_looks_unknown_to_members(local_bot, declare):
    async def handler(ctx):
        await ctx.reply("ping", version="t", uptime_seconds=1)

    declare("versteckt_test", summary="x", role=Role.COORDINATOR, hidden=True)(handler)
    member = await local_bot.text("!versteckt_test")
    coordinator = await local_bot.text("!versteckt_test", sender="@koordination:localhost")
    assert "kenne ich leider nicht" in member and "Koordinator" not in member
    assert coordinator.startswith("🏓 Pong!")


async def test_plain_text_in_a_group_without_mention_is_ignored(local_bot):
    assert await local_bot.say("Guten Morgen zusammen!", is_direct=False, room_id="!gruppe:localhost") == []


async def test_plain_text_with_mention_or_in_direct_chat_gets_the_fallback(local_bot):
    saved = REGISTRY.plain_text
    REGISTRY.plain_text = None
    try:
        [mentioned] = await local_bot.say("Hallo Bot", is_direct=False, mentions_bot=True)
        [direct] = await local_bot.say("Hallo Bot")
    finally:
        REGISTRY.plain_text = saved
    for message in (mentioned, direct):
        assert "Bot der Kleinstadtakademie" in message.body
        assert "!hilfe" in message.body


async def test_plain_text_goes_to_the_faq_handler_first(local_bot):
    seen = []

    async def faq(ctx):
        seen.append(ctx.request.body)
        if "Förderung" in ctx.request.body:
            await ctx.reply("ping", version="faq", uptime_seconds=1)
            return True
        return False

    async def broken(ctx):
        raise ValueError("kaputt")

    saved = REGISTRY.plain_text
    REGISTRY.plain_text = faq
    try:
        [answered] = await local_bot.say("Wie hoch ist die Förderung?")
        [fallback] = await local_bot.say("Wetter heute?")
        assert await local_bot.say("Förderung?", is_direct=False) == []  # group, no mention
        REGISTRY.plain_text = broken
        [apology] = await local_bot.say("Hallo")
    finally:
        REGISTRY.plain_text = saved
    assert seen == ["Wie hoch ist die Förderung?", "Wetter heute?"]
    assert "kleinstadtbot faq" in answered.body
    assert "Bot der Kleinstadtakademie" in fallback.body
    assert "Fehlernummer" in apology.body


async def test_answers_reply_to_the_command_event(local_bot):
    [answer] = await local_bot.say("!ping", room_id="!raum:localhost")
    assert answer.room_id == "!raum:localhost"
    assert answer.in_reply_to is not None and answer.in_reply_to.startswith("$ev")


async def test_concurrent_first_uses_build_shared_state_once(local_bot):
    import asyncio

    builds = []

    async def build():
        builds.append(1)
        await asyncio.sleep(0.05)
        return {"index": len(builds)}

    first, second = await asyncio.gather(
        local_bot.services.cached("test.index", build), local_bot.services.cached("test.index", build)
    )
    assert builds == [1]
    assert first is second and local_bot.services.cache["test.index"] is first


async def test_a_failed_build_is_tried_again_next_time(local_bot):
    calls = []

    async def build():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("register not readable")
        return "ok"

    with pytest.raises(RuntimeError):
        await local_bot.services.cached("test.flaky", build)
    assert await local_bot.services.cached("test.flaky", build) == "ok"


def test_a_removed_command_is_gone_under_every_name():
    from commands.registry import REGISTRY, command

    async def handler(ctx):
        return None

    cmd = command("weg_test", summary="x", aliases={"de": ["weg_de"], "en": ["gone"]})(handler)
    assert REGISTRY.find("weg_de") is cmd
    REGISTRY.remove(cmd)
    assert [REGISTRY.find(w) for w in ("weg_test", "weg_de", "gone")] == [None, None, None]


# --- nothing a user sends stops the bot or goes unanswered (issue 9, item 3) -----------------


@pytest.mark.parametrize("number", ["²", "³", "1²", "①", "١٢"])
async def test_a_digit_int_refuses_gets_the_usage_reply(local_bot, number):
    [answer] = await local_bot.say(f"!tandem info {number}")
    assert (answer.reply.template, answer.reply.data["problem"]) == ("error_usage", "not_a_number")
    assert f"„{number}“" in answer.body
    assert "!tandem info 3" in answer.body  # a correct example


@pytest.fixture
def int_command(declare):
    calls = []

    async def handler(ctx, number=None):
        calls.append(number)
        await ctx.reply("ping", version="t", uptime_seconds=1)

    from commands.registry import Arg

    cmd = declare("zahl_test", summary="x", args=[Arg("number", "int", required=False)])(handler)
    return cmd, calls


def _logged_refs(caplog, event_id):
    return [r for r in caplog.records if event_id in r.getMessage() and r.exc_info is not None]


async def test_a_binder_that_raises_gets_the_error_notice_logged_with_the_event(
    local_bot, int_command, caplog, monkeypatch
):
    cmd, calls = int_command

    def broken_bind(words):
        raise ValueError("invalid literal for int() with base 10: '²'")

    monkeypatch.setattr(cmd, "bind", broken_bind)
    with caplog.at_level(logging.ERROR, logger="commands.dispatcher"):
        [notice] = await local_bot.say("!zahl_test 3")
    assert notice.reply.template == "error_internal"
    assert notice.in_reply_to is not None
    assert "invalid literal" not in notice.body and "ValueError" not in notice.body
    [record] = _logged_refs(caplog, notice.in_reply_to)
    assert notice.reply.data["ref"] in record.getMessage() and "zahl_test" not in notice.body
    assert calls == []
    monkeypatch.undo()
    [pong] = await local_bot.say("!zahl_test 3")  # the dispatcher still works
    assert pong.reply.template == "ping" and calls == [3]


async def test_a_failing_role_lookup_or_parser_gets_the_error_notice(local_bot, caplog, monkeypatch):
    async def no_roles(user):
        raise ConnectionError("homeserver gone")

    with caplog.at_level(logging.ERROR, logger="commands.dispatcher"):
        monkeypatch.setattr(local_bot.dispatcher, "role_of", no_roles)
        [command] = await local_bot.say("!ping")
        [plain] = await local_bot.say("Hallo Bot")  # the plain-text path asks for the role too
        monkeypatch.undo()

        def broken_split(body, prefix):
            raise IndexError("string index out of range")

        monkeypatch.setattr("commands.dispatcher.split_command", broken_split)
        [parser] = await local_bot.say("!ping", is_direct=False)
    for notice in (command, plain, parser):
        assert notice.reply.template == "error_internal"
        assert _logged_refs(caplog, notice.in_reply_to)


async def test_a_failure_on_a_message_not_for_the_bot_stays_silent(local_bot, caplog, monkeypatch):
    def broken_split(body, prefix):
        raise IndexError("string index out of range")

    monkeypatch.setattr("commands.dispatcher.split_command", broken_split)
    with caplog.at_level(logging.ERROR, logger="commands.dispatcher"):
        assert await local_bot.say("Guten Morgen zusammen", is_direct=False) == []
    assert caplog.records  # logged for the operator, not answered in the group
