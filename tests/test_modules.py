"""!module / !modul: list by topic, excerpt, full module, search; English texts; no author notes."""

import re
import shutil

import pytest

from config.content import AUTHOR_NOTE, CONTENT_DIR, figures, load_content, missing_translations
from config.topics import default_topics
from tests.local_bot import make_local_bot

COORD = "@koordination:localhost"
ANNA, BEN = "@anna:localhost", "@ben:localhost"


async def test_shipped_library_has_at_least_eight_valid_modules():
    content, problems = load_content()
    assert problems == []
    modules = content.modules_for("de")
    assert len(modules) >= 8
    formats = {m.format for m in modules}
    assert {"Lernwerkstatt", "Peer-to-Peer-Austausch", "kollegiales Coaching", "Webinar"} <= formats
    assert all(m.source for m in modules)


def test_every_shipped_module_has_an_english_version_with_the_same_facts():
    content, _ = load_content()
    assert missing_translations(content) == {"en": []}
    german = {m.id: m for m in content.modules["de"]}
    english = {m.id: m for m in content.modules["en"]}
    assert english.keys() == german.keys()
    for module_id, module in english.items():
        original = german[module_id]
        assert module.topics == original.topics, module_id
        assert figures(module) == figures(original), module_id
        assert module.unknown == original.unknown, module_id
        assert module.source == original.source, module_id
        assert module.title != original.title or module_id == "webinar"
        assert module.sections[0].title != original.sections[0].title  # translated, not copied


async def test_list_groups_modules_by_topic(local_bot):
    text = await local_bot.text("!modul")
    assert "Lern- und Austauschmodule (10)" in text
    beteiligung = text.index("Beteiligung und Demokratie")
    assert text.index("Bürgerrat", beteiligung) > beteiligung
    assert "!modul digitale-lernwerkstatt" in text


async def test_excerpt_shows_format_topics_first_section_and_source(local_bot):
    [message] = await local_bot.say("!modul digitale-lernwerkstatt")
    body = message.body
    assert body.startswith("Digitale Lernwerkstatt")
    assert "Format: Lernwerkstatt" in body
    assert "Themen: Digitalisierung, Interkommunale Kooperation" in body
    # duration and audience are not in the sources: no line for them, no placeholder
    assert "Dauer" not in body and "Für wen" not in body
    assert "Worum es geht" in body  # first section
    assert "Die sechs Schritte" not in body  # later sections only in full
    assert "Quelle: kleinstadtakademie.de (Methoden, Digitale Lernwerkstatt)" in body
    assert "!modul digitale-lernwerkstatt ganz" in body
    assert "<h4>Worum es geht</h4>" in message.html


async def test_excerpt_shows_duration_and_audience_when_the_sources_give_them(tmp_path):
    root = tmp_path / "content"
    shutil.copytree(CONTENT_DIR, root)
    (root / "modules" / "kongress.md").write_text(
        "---\nid: kongress\ntitle: Kleinstadt-Kongress\nformat: Kongress\ntopics: [wohnen]\n"
        "duration: 25. und 26. Juni 2025\naudience: mehr als 300 Teilnehmende aus über 100 Städten\n"
        "summary: Der erste Kleinstadt-Kongress in Wittenberge.\nsource: agfs-nrw.de\n---\n\n"
        "## Worum es geht\n\nVier Themenarenen.\n",
        encoding="utf-8",
    )
    bot = await make_local_bot(tmp_path, content_dir=root)
    try:
        body = await bot.text("!modul kongress")
        assert "Dauer: 25. und 26. Juni 2025" in body
        assert "Für wen: mehr als 300 Teilnehmende aus über 100 Städten" in body
    finally:
        await bot.db.close()


async def test_excerpt_by_title_words_and_without_umlauts(local_bot):
    assert "Format: Beteiligungsformat" in await local_bot.text("!modul Buergerrat")
    assert (await local_bot.text("!modul kollegiales coaching")).startswith("Kollegiales Coaching")


async def test_full_module_has_every_section(local_bot):
    text = await local_bot.text("!modul digitale-lernwerkstatt ganz")
    assert "Die sechs Schritte" in text
    assert "4. Vier radikale Lösungen" in text
    assert "Quelle:" in text
    assert "ganz" not in text.split("Quelle:")[1]  # no "whole module" hint under the whole module


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


# --- English ---------------------------------------------------------------------------------


@pytest.fixture
async def english_bot(tmp_path):
    bot = await make_local_bot(tmp_path, locale="en")
    yield bot
    await bot.db.close()


async def test_english_list_has_english_titles_and_topic_names(english_bot):
    text = await english_bot.text("!module")
    assert "Learning and exchange modules (10)" in text
    assert "Participation and democracy" in text and "Beteiligung und Demokratie" not in text
    assert "Citizens' assembly (Bürgerrat)" in text and "!module buergerrat" in text
    assert "Peer coaching with mutual visits" in text


async def test_english_excerpt_and_full_module_are_english(english_bot):
    excerpt = await english_bot.text("!module buergerrat")
    assert excerpt.startswith("Citizens' assembly (Bürgerrat)")
    assert "Format: participation format" in excerpt
    assert "Topics: Participation and democracy" in excerpt
    assert "What it is about" in excerpt and "Worum es geht" not in excerpt
    assert "redesign of the Goetheplatz" in excerpt
    assert "Source: vhw.de" in excerpt and "!module buergerrat full" in excerpt
    full = await english_bot.text("!module webinar full")
    assert "Related formats" in full and "Verwandte Formate" not in full
    assert "Please contact the coordinators" in full


async def test_english_module_found_by_english_words(english_bot):
    assert (await english_bot.text("!module peer coaching")).startswith("Peer coaching with mutual visits")
    assert (await english_bot.text("!module youth participation")).startswith("Youth participation")
    assert (await english_bot.text("!module citizens assembly full")).startswith("Citizens' assembly")
    assert (await english_bot.text("!module Bürgerrat")).startswith("Citizens' assembly")
    found = await english_bot.text("!module search youth parliament")
    assert "Youth participation" in found
    assert "I did not find" in await english_bot.text("!module Raumfahrt")


def test_a_name_several_modules_share_names_none_of_them():
    from commands.modules import by_name

    content, _ = load_content()
    english = content.modules_for("en")
    assert by_name(english, "participation format") is None  # three modules have this format
    assert by_name(english, "Peer Coaching").id == "kollegiales-coaching"
    assert by_name(content.modules_for("de"), "Kollegiales Coaching").id == "kollegiales-coaching"


async def test_english_templates_around_the_content(english_bot):
    assert "Frequent questions" in await english_bot.text("!faq")
    assert "questions" in await english_bot.text("!reload", sender=COORD)


async def test_a_german_module_without_translation_is_shown_in_german(tmp_path):
    root = tmp_path / "content"
    shutil.copytree(CONTENT_DIR, root)
    (root / "modules" / "en" / "webinar.md").unlink()
    content, problems = load_content(root)
    assert problems == []
    assert missing_translations(content) == {"en": ["webinar"]}
    ids = [m.id for m in content.modules_for("en")]
    assert ids == [m.id for m in content.modules_for("de")]  # German order, nothing lost
    assert next(m for m in content.modules_for("en") if m.id == "webinar").title == "Webinar"
    assert next(m for m in content.modules_for("en") if m.id == "buergerrat").title.startswith("Citizens")


# --- no notes for authors in what users read -------------------------------------------------

# What authors write for themselves: the check's markers, the old placeholder wording, and the
# start of every module's and topic's notes.
LEAKS = [AUTHOR_NOTE, re.compile(r"nach Absprache|Quellen nicht|not found|notes:", re.IGNORECASE)]


def _note_fragments() -> list[str]:
    content, _ = load_content()
    notes = [m.notes for found in content.modules.values() for m in found if m.notes]
    assert len(notes) >= 10
    return [n[:40] for n in notes]


def _assert_clean(text: str, where: str, fragments: list[str]) -> None:
    for pattern in LEAKS:
        match = pattern.search(text)
        assert match is None, f"{where}: {match.group(0) if match else ''!r}"
    for fragment in fragments:
        assert fragment not in text, f"{where}: notes {fragment!r}"


async def _rendered(bot, prefix_word: str, full_word: str, search_word: str, topics: str) -> dict[str, str]:
    lib_content, _ = load_content()
    seen = {
        "list": await bot.text(f"!{prefix_word}"),
        "search": await bot.text(f"!{prefix_word} {search_word} Beteiligung"),
        "topics": await bot.text(f"!{topics}"),
    }
    for module in lib_content.modules["de"]:
        seen[module.id] = await bot.text(f"!{prefix_word} {module.id}")
        seen[module.id + " full"] = await bot.text(f"!{prefix_word} {module.id} {full_word}")
    return seen


async def _tandem_welcome(bot, topic: str) -> str:
    """The welcome of a new tandem of Anna and Ben (the one message not sent to the chat)."""
    messages = await bot.say(f"!tandem anlegen {ANNA} {BEN} {topic}", sender=COORD)
    [welcome] = [m.body for m in messages if m.room_id != "!dm:localhost"]
    return welcome


async def _welcomes(bot) -> dict[str, str]:
    """The tandem welcome for every topic (one pair; each tandem ended before the next)."""
    from tests.test_tandems import profiled

    await profiled(bot, (ANNA, "Wittenberge", []), (BEN, "Bad Berleburg", []))
    welcomes = {}
    for number, topic in enumerate(default_topics(), start=1):
        welcomes[topic.id] = await _tandem_welcome(bot, topic.id)
        await bot.say(f"!tandem beenden {number}", sender=COORD)
    return welcomes


@pytest.mark.parametrize("locale", ["de", "en"])
async def test_no_author_notes_in_modules_topics_or_welcomes(tmp_path, locale):
    fragments = _note_fragments()
    bot = await make_local_bot(tmp_path, locale=locale)
    try:
        words = (
            ("modul", "ganz", "suche", "themen") if locale == "de" else ("module", "full", "search", "topics")
        )
        seen = await _rendered(bot, *words)
        welcomes = await _welcomes(bot)
    finally:
        await bot.db.close()
    assert len(seen) == 23 and len(welcomes) == len(default_topics())
    for where, text in {**seen, **{f"welcome {k}": v for k, v in welcomes.items()}}.items():
        _assert_clean(text, where, fragments)
    # the welcome names a module by title and format only, as the sources give no duration
    assert "Pop-up-Labs (Pop-up-Lab): !modul pop-up-labs" in welcomes["innenstadt"] or locale == "en"
    assert "Pop-up labs (pop-up lab): !module pop-up-labs" in welcomes["innenstadt"] or locale == "de"


async def test_notes_and_unknown_fields_never_reach_users(tmp_path):
    root = tmp_path / "content"
    shutil.copytree(CONTENT_DIR, root)
    module = root / "modules" / "webinar.md"
    module.write_text(
        module.read_text(encoding="utf-8").replace("notes: ", "notes: GEHEIM-NOTIZ für die Redaktion. ", 1),
        encoding="utf-8",
    )
    bot = await make_local_bot(tmp_path, content_dir=root)
    try:
        texts = [
            await bot.text("!modul webinar"),
            await bot.text("!modul webinar ganz"),
            await bot.text("!modul suche Webinar"),
            await bot.text("!modul"),
        ]
        from tests.test_tandems import profiled

        await profiled(bot, (ANNA, "Wittenberge", []), (BEN, "Bad Berleburg", []))
        welcome = await _tandem_welcome(bot, "Digitalisierung")
        assert "!modul webinar" in welcome
    finally:
        await bot.db.close()
    for text in [*texts, welcome]:
        assert "GEHEIM-NOTIZ" not in text and "unknown" not in text


def test_topic_names_and_descriptions_exist_in_every_locale():
    topics = default_topics()
    assert len(topics) == 10
    for topic in topics:
        assert set(topic.name) == {"de", "en"} and set(topic.description) == {"de", "en"}
        assert topic.name["de"] != topic.name["en"] or topic.id == "digitalisierung"
    assert topics.match("housing") is topics.by_id["wohnen"]
    assert topics.match("Wohnen") is topics.by_id["wohnen"]


@pytest.mark.synapse
async def test_english_module_excerpt_through_synapse(make_bot, make_user):
    bot = await make_bot(locale="en")
    mayor = await make_user("mayor")
    room = await mayor.dm(bot.user_id)
    answer = await mayor.ask(room, "!module kollegiales-coaching")
    assert answer.body.startswith("Peer coaching with mutual visits")
    assert "Topics: Town centre and vacancy, Inter-municipal cooperation" in answer.body
    assert "Zwönitz" not in answer.body  # the first section only; the towns follow in full
    assert "Source: difu.de" in answer.body and "!module kollegiales-coaching full" in answer.body
    html = answer.source["content"]["formatted_body"]
    assert "<h4>What it is about</h4>" in html and "Worum es geht" not in html
    assert answer.source["content"]["msgtype"] == "m.notice"
