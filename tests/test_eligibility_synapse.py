"""``!berechtigt`` through a real Synapse, asked by a second client."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.synapse


async def test_eligible_answer_arrives_as_notice(make_bot, make_user):
    bot = await make_bot()
    mayor = await make_user("mayor")
    room = await mayor.dm(bot.user_id)
    command_id = await mayor.send(room, "!berechtigt Bad Berleburg")
    answer = await mayor.wait_reply(room, command_id)
    content = answer.source["content"]
    assert content["msgtype"] == "m.notice"
    assert "Ja, Bad Berleburg kann mitmachen" in content["body"]
    assert "18.400" in content["body"]
    assert "<strong>Bad Berleburg, Stadt</strong>" in content["formatted_body"]
    assert "Statistisches Bundesamt (Destatis)" in content["body"] and "dl-de/by-2-0" in content["body"]
