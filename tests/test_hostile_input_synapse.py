"""Hostile and clumsy input against a real Synapse: every command gets a reply, and no reply
carries bidi overrides or control characters in ``body`` or ``formatted_body``."""

from __future__ import annotations

import pytest

from commands.parsing import BIDI_CONTROLS, CONTROLS

pytestmark = pytest.mark.synapse

SPOOFING = set(BIDI_CONTROLS + CONTROLS)


async def test_a_superscript_number_gets_a_reply_and_the_bot_reads_on(make_bot, make_user):
    bot = await make_bot()
    mayor = await make_user("mayor")
    room = await mayor.dm(bot.user_id)
    squared = await mayor.ask(room, "!tandem info ²")
    assert "„²“" in squared.body and "!tandem info 3" in squared.body
    assert squared.source["content"]["msgtype"] == "m.notice"
    cubed = await mayor.ask(room, "!tandem info ³")
    assert "„³“" in cubed.body
    pong = await mayor.ask(room, "!ping")
    assert pong.body.startswith("🏓 Pong!")


async def test_replies_over_matrix_echo_no_bidi_or_control_characters(make_bot, make_user):
    bot = await make_bot()
    mayor = await make_user("mayor")
    room = await mayor.dm(bot.user_id)
    answers = [
        await mayor.ask(room, "!berechtigt Xq\u202ezz\x1b[31myw\u2066\u200f"),
        await mayor.ask(room, "!tandem info \u202edrei\u202c\x07"),
    ]
    for answer in answers:
        content = answer.source["content"]
        found = SPOOFING & set(content["body"] + content["formatted_body"])
        assert not found, [hex(ord(c)) for c in found]
    assert "Xqzz[31myw" in answers[0].source["content"]["body"]
    assert "Xqzz[31myw" in answers[0].source["content"]["formatted_body"]
    assert "„drei“" in answers[1].source["content"]["body"]
    assert "„drei“" in answers[1].source["content"]["formatted_body"]
