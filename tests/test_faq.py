"""!faq / !frage, plain questions in direct chats and mentions, and !neuladen (reload)."""

import shutil
from pathlib import Path

from config.content import CONTENT_DIR
from tests.local_bot import make_local_bot

COORDINATOR = "@koordination:localhost"


async def test_faq_without_words_lists_questions_by_category(local_bot):
    text = await local_bot.text("!frage")
    assert "Häufige Fragen" in text
    assert "Mitmachen" in text and "Der Bot und Ihre Daten" in text
    assert "Wer darf bei der Kleinstadtakademie mitmachen?" in text
    assert "!frage wer-darf-mitmachen" in text


async def test_faq_answers_a_question_with_the_eligibility_hint(local_bot):
    [message] = await local_bot.say(
        "!frage darf unsere gemeinde mitmachen", is_direct=False, room_id="!group:localhost"
    )
    assert "Kleinstädten vorbehalten" in message.body
    assert "!berechtigt <Ort>" in message.body
    assert "<strong>" in message.html
    assert message.in_reply_to is not None


async def test_faq_by_id_and_english_alias(local_bot):
    text = await local_bot.text("!faq daten-loeschen")
    assert "!profil löschen" in text and "!profil export" in text


async def test_faq_unclear_offers_close_questions_and_help(local_bot):
    text = await local_bot.text("!frage Austausch")  # tandems and principles both fit
    assert "Quelle:" not in text  # no answer, only choices
    assert "!frage tandems" in text and "!frage prinzipien" in text
    assert "!hilfe" in text


async def test_faq_typo_in_a_long_word_is_forgiven(local_bot):
    text = await local_bot.text("!frage kongres")
    assert "Was ist der Kleinstadt-Kongress?" in text


async def test_faq_off_topic_gets_no_answer(local_bot):
    text = await local_bot.text("!frage Wie wird das Wetter morgen?")
    assert "keine Antwort" in text
    assert "!hilfe" in text


async def test_plain_question_in_direct_chat_is_answered(local_bot):
    text = await local_bot.text("Was kostet das eigentlich?", is_direct=True)
    assert "Was kostet die Teilnahme?" in text
    assert "Koordination" in text


async def test_plain_off_topic_question_offers_no_wrong_answer(local_bot):
    text = await local_bot.text("Wie wird das Wetter morgen?", is_direct=True)
    assert "Dazu habe ich leider keine Antwort" in text
    assert "!hilfe" in text
    assert "Quelle:" not in text


async def test_plain_question_with_a_separable_verb_finds_the_entry(local_bot):
    text = await local_bot.text("Wie melden wir uns als Gemeinde an?", is_direct=True)
    assert "Wie kann sich unsere Stadt anmelden?" in text
    assert "!berechtigt <Ort>" in text


async def test_english_bot_answers_english_questions_from_the_english_faq(tmp_path):
    bot = await make_local_bot(tmp_path, locale="en")
    try:
        text = await bot.text("Do we have to pay anything to take part?", is_direct=True)
        assert "What does taking part cost?" in text
        assert "free of charge" in text and "coordinators" in text
        assert "Teilnahme" not in text and "kostenlos" not in text
        listing = await bot.text("!faq")
        assert "The bot and your data" in listing and "!faq daten-loeschen" in listing
        assert "How do I delete my data?" in listing
        by_id = await bot.text("!faq wer-darf-mitmachen")
        assert "reserved for small towns" in by_id and "!eligible <town>" in by_id
    finally:
        await bot.db.close()


async def test_plain_greeting_gets_the_greeting(local_bot):
    text = await local_bot.text("Hallo!", is_direct=True)
    assert "Ich bin der Bot der Kleinstadtakademie" in text


async def test_group_room_stays_quiet_without_mention(local_bot):
    sent = await local_bot.say("Wer darf mitmachen?", is_direct=False, room_id="!group:localhost")
    assert sent == []


async def test_mention_in_group_room_is_answered(local_bot):
    text = await local_bot.text(
        "Wo sitzt die Akademie?", is_direct=False, mentions_bot=True, room_id="!group:localhost"
    )
    assert "Wittenberge" in text


# --- reload ---------------------------------------------------------------------------------


def _copy_content(tmp_path: Path) -> Path:
    root = tmp_path / "content"
    shutil.copytree(CONTENT_DIR, root)
    return root


async def test_reload_is_for_coordinators_only(local_bot):
    text = await local_bot.text("!neuladen")
    assert "nur Koordinatorinnen und Koordinatoren" in text


async def test_reload_picks_up_changed_content(tmp_path):
    root = _copy_content(tmp_path)
    bot = await make_local_bot(tmp_path, content_dir=root)
    try:
        assert "Kleinstädten vorbehalten" in await bot.text("!frage wer-darf-mitmachen")
        faq = root / "faq" / "de.yaml"
        changed = faq.read_text(encoding="utf-8").replace(
            "Das Angebot ist **Kleinstädten vorbehalten**.", "Neu: nur für **Kleinstädte**."
        )
        faq.write_text(changed, encoding="utf-8")
        assert "Kleinstädten vorbehalten" in await bot.text("!frage wer-darf-mitmachen")  # cached
        text = await bot.text("!neuladen", sender=COORDINATOR)
        assert "Inhalte neu geladen: 25 Fragen, 10 Module" in text
        assert "Neu: nur für Kleinstädte." in await bot.text("!frage wer-darf-mitmachen")
    finally:
        await bot.db.close()


async def test_reload_with_broken_content_keeps_the_old_version(tmp_path):
    root = _copy_content(tmp_path)
    bot = await make_local_bot(tmp_path, content_dir=root)
    try:
        assert "StadtLabor" in await bot.text("!modul pop-up-labs")
        faq = root / "faq" / "de.yaml"
        faq.write_text(
            faq.read_text(encoding="utf-8").replace("  - id: kosten\n", "  - id: prinzipien\n"),
            encoding="utf-8",
        )
        (root / "modules" / "pop-up-labs.md").write_text(
            "---\nid: pop-up-labs\ntitle: Kaputt\n---\n\n## Teil\n\nText\n", encoding="utf-8"
        )
        text = await bot.text("!neuladen", sender=COORDINATOR)
        assert "bisherige Fassung" in text
        assert "content/faq/de.yaml:" in text and "duplicate id 'prinzipien'" in text
        assert "content/modules/pop-up-labs.md:1: 'format' is missing or empty" in text
        # the old content still serves
        assert "Was kostet die Teilnahme?" in await bot.text("!frage kosten")
        assert "Kaputt" not in await bot.text("!modul pop-up-labs")
        assert "StadtLabor" in await bot.text("!modul pop-up-labs")
    finally:
        await bot.db.close()
