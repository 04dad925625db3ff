"""!module / !modul: list by topic, excerpt, full module, search."""

from config.content import load_content


async def test_shipped_library_has_at_least_eight_valid_modules():
    content, problems = load_content()
    assert problems == []
    modules = content.modules_for("de")
    assert len(modules) >= 8
    formats = {m.format for m in modules}
    assert {"Lernwerkstatt", "Peer-to-Peer-Austausch", "kollegiales Coaching", "Webinar"} <= formats


async def test_list_groups_modules_by_topic(local_bot):
    text = await local_bot.text("!modul")
    assert "Lern- und Austauschmodule (10)" in text
    beteiligung = text.index("Beteiligung und Demokratie")
    assert text.index("Bürgerrat", beteiligung) > beteiligung
    assert "!modul digitale-lernwerkstatt" in text


async def test_excerpt_by_id_shows_format_duration_audience_and_first_section(local_bot):
    [message] = await local_bot.say("!modul digitale-lernwerkstatt")
    body = message.body
    assert body.startswith("Digitale Lernwerkstatt")
    assert "Format: Lernwerkstatt" in body
    assert "Dauer: nach Absprache" in body
    assert "Für wen:" in body
    assert "Worum es geht" in body  # first section
    assert "Die sechs Schritte" not in body  # later sections only in full
    assert "!modul digitale-lernwerkstatt ganz" in body
    assert "<h4>Worum es geht</h4>" in message.html


async def test_excerpt_by_title_words_and_without_umlauts(local_bot):
    assert "Format: Beteiligungsformat" in await local_bot.text("!modul Buergerrat")
    assert (await local_bot.text("!modul kollegiales coaching")).startswith("Kollegiales Coaching")


async def test_full_module_has_every_section(local_bot):
    text = await local_bot.text("!modul digitale-lernwerkstatt ganz")
    assert "Die sechs Schritte" in text
    assert "4. Vier radikale Lösungen" in text
    assert "Quelle:" in text
    english = await local_bot.text("!module webinar full")
    assert "Verwandte Formate" in english


async def test_unknown_module_gets_friendly_hint(local_bot):
    text = await local_bot.text("!modul Raumfahrt")
    assert "habe ich nicht gefunden" in text
    assert "!modul suche" in text


async def test_search_finds_modules_by_body_words(local_bot):
    text = await local_bot.text("!modul suche Jugendparlament")
    assert "Jugendbeteiligung" in text
    text = await local_bot.text("!modul suche jugend")
    assert "Jugendbeteiligung" in text
    assert "Webinar" not in text


async def test_search_without_hits(local_bot):
    text = await local_bot.text("!modul suche Wetter")
    assert "kein Modul gefunden" in text


async def test_search_needs_words(local_bot):
    text = await local_bot.text("!modul suche")
    assert "!modul suche" in text  # usage with the example


async def test_english_locale_uses_english_templates_and_german_content(tmp_path):
    from tests.local_bot import make_local_bot

    bot = await make_local_bot(tmp_path, locale="en")
    try:
        assert "Learning and exchange modules (10)" in await bot.text("!module")
        excerpt = await bot.text("!module webinar")
        assert "Duration: nach Absprache" in excerpt and "!module webinar full" in excerpt
        assert "Source:" in await bot.text("!module webinar full")
        assert "Modules for" in await bot.text("!module search Jugend")
        assert "I did not find" in await bot.text("!module Raumfahrt")
        assert "Frequent questions" in await bot.text("!faq")
        assert "Source:" in await bot.text("!faq kosten")
        assert "All commands: !help" in await bot.text("!faq Austausch")
        assert "questions" in await bot.text("!reload", sender="@koordination:localhost")
    finally:
        await bot.db.close()
