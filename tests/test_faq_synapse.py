"""FAQ and modules through a real Synapse: a plain question in a direct chat, ``!modul <id>``."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.synapse


async def test_plain_question_in_direct_chat_gets_the_faq_answer(make_bot, make_user):
    bot = await make_bot()
    mayor = await make_user("mayor")
    room = await mayor.dm(bot.user_id)
    answer = await mayor.ask(room, "Dürfen wir als kleine Gemeinde bei euch mitmachen?")
    assert "Kleinstädten vorbehalten" in answer.body
    assert "!berechtigt <Ort>" in answer.body
    assert "<strong>" in answer.source["content"]["formatted_body"]


async def test_off_topic_plain_question_gets_no_wrong_answer(make_bot, make_user):
    bot = await make_bot()
    mayor = await make_user("mayor")
    room = await mayor.dm(bot.user_id)
    answer = await mayor.ask(room, "Wie wird das Wetter morgen?")
    assert "keine Antwort" in answer.body and "!hilfe" in answer.body


async def test_module_excerpt_by_id(make_bot, make_user):
    bot = await make_bot()
    mayor = await make_user("mayor")
    room = await mayor.dm(bot.user_id)
    answer = await mayor.ask(room, "!modul digitale-lernwerkstatt")
    assert answer.body.startswith("Digitale Lernwerkstatt")
    assert "Format: Lernwerkstatt" in answer.body
    assert "!modul digitale-lernwerkstatt ganz" in answer.body
    assert "<h4>Worum es geht</h4>" in answer.source["content"]["formatted_body"]
