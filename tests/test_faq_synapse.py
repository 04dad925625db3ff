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


async def test_english_question_gets_the_english_answer(make_bot, make_user):
    bot = await make_bot(locale="en")
    mayor = await make_user("mayor")
    room = await mayor.dm(bot.user_id)
    answer = await mayor.ask(room, "Can our municipality get a grant?")
    assert answer.body.startswith("Is there funding for our town?")
    assert "400,000 euros" in answer.body and "coordinators" in answer.body
    assert "Fördermittel" not in answer.body and "Quelle" not in answer.body
    assert "<strong>" in answer.source["content"]["formatted_body"]


async def test_german_question_in_the_users_words_finds_the_right_entry(make_bot, make_user):
    bot = await make_bot()
    mayor = await make_user("mayor")
    room = await mayor.dm(bot.user_id)
    answer = await mayor.ask(
        room, "Wir sind Mitgliedsgemeinde einer Samtgemeinde. Welche Einwohnerzahl gilt?"
    )
    assert answer.body.startswith("Unsere Gemeinde gehört zu einem Gemeindeverband.")
    assert "Einheitsgemeinden und Gemeindeverbänden" in answer.body
    assert "Quelle: BBSR Stadt- und Gemeindetyp" in answer.body


async def test_english_question_in_words_the_entry_lacks_is_answered_from_the_examples(make_bot, make_user):
    """A question whose words only the examples connect to the entry ("chip in financially"):
    the bot answers it directly instead of offering choices."""
    bot = await make_bot(locale="en")
    mayor = await make_user("mayor")
    room = await mayor.dm(bot.user_id)
    answer = await mayor.ask(room, "Could the academy chip in financially for a project in our town centre?")
    assert answer.body.startswith("Is there funding for our town?")
    assert "400,000 euros" in answer.body
    assert "<strong>" in answer.source["content"]["formatted_body"]


async def test_english_direct_answer_the_examples_contradict_becomes_a_choice(make_bot, make_user):
    """The rules alone would answer "pilot phase dates" with the congress (its dates); the
    examples' model knows the question asks for the pilot phase, so the bot offers choices."""
    bot = await make_bot(locale="en")
    mayor = await make_user("mayor")
    room = await mayor.dm(bot.user_id)
    answer = await mayor.ask(room, "pilot phase dates")
    assert answer.body.startswith("I am not sure. Did you mean one of these questions?")
    assert "!faq pilotphase" in answer.body and "!faq kongress" in answer.body


async def test_english_question_the_rules_rank_second_is_answered_when_the_examples_name_it(
    make_bot, make_user
):
    """The rules put the pilot phase first for this question, unsure, and the pilot projects
    second; the examples' model names the pilot projects, so they are answered directly."""
    bot = await make_bot(locale="en")
    mayor = await make_user("mayor")
    room = await mayor.dm(bot.user_id)
    answer = await mayor.ask(room, "What results came out of the six pilot towns' projects?")
    assert answer.body.startswith("Which pilot projects were there?")
    assert "Did you mean" not in answer.body
