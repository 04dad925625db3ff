"""Content validation: every problem as file:line: message; ``kleinstadtbot content check``."""

import shutil
from pathlib import Path

from bot.cli import main
from config.content import CONTENT_DIR, load_content, load_topic_files, markdown_problems

GOOD_MODULE = """---
id: {id}
title: Ein Modul
format: Webinar
topics: [beteiligung]
duration: zwei Tage
audience: Bürgermeisterinnen und Bürgermeister
summary: Kurz gesagt.
source: kleinstadtakademie.de
---

## Worum es geht

Text.
"""


FAQ_ONE = "faq:\n  - {id: eins, question: F, answer: A., source: kleinstadtakademie.de}\n"


def _tree(tmp_path: Path, faq: str, modules: dict[str, str] | None = None) -> Path:
    root = tmp_path / "content"
    (root / "faq").mkdir(parents=True)
    (root / "faq" / "de.yaml").write_text(faq, encoding="utf-8")
    (root / "modules").mkdir()
    for name, text in (modules or {}).items():
        (root / "modules" / name).write_text(text, encoding="utf-8")
    return root


def _lines(root: Path) -> list[str]:
    return [str(p) for p in load_content(root)[1]]


def test_shipped_content_is_valid():
    content, problems = load_content()
    assert problems == []
    assert len(content.faq_for("de")) >= 15


def test_missing_fields_and_duplicate_ids_with_lines(tmp_path):
    root = _tree(
        tmp_path,
        """faq:
  - id: eins
    question: Erste Frage?
    answer: Antwort.
  - id: zwei
    question: Zweite Frage?
  - id: eins
    question: Noch einmal?
    answer: Doppelt.
    tgas: [tippfehler]
""",
    )
    assert _lines(root) == [
        "content/faq/de.yaml:2: entry 1: 'source' is missing or empty",
        "content/faq/de.yaml:5: entry 2: 'answer' is missing or empty",
        "content/faq/de.yaml:5: entry 2: 'source' is missing or empty",
        "content/faq/de.yaml:7: entry 3: 'source' is missing or empty",
        "content/faq/de.yaml:7: duplicate id 'eins' (first at line 2)",
        "content/faq/de.yaml:10: unknown field 'tgas' (known: alternatives, answer, category, id, notes, "
        "question, source, tags)",
    ]


def test_yaml_syntax_error_reports_its_line(tmp_path):
    root = _tree(tmp_path, "faq:\n  - id: eins\n    question: Was: ist das: kaputt?\n    answer: x\n")
    [problem] = _lines(root)
    assert problem.startswith("content/faq/de.yaml:3: not valid YAML")


def test_broken_markdown_in_an_answer_points_to_the_line(tmp_path):
    root = _tree(
        tmp_path,
        """faq:
  - id: eins
    question: Frage?
    source: kleinstadtakademie.de
    answer: |
      Erste Zeile.

      Hier ist **fett nicht geschlossen.
""",
    )
    assert _lines(root) == ["content/faq/de.yaml:8: answer of 'eins': bold text not closed: a ** is missing"]


def test_module_problems_unknown_topic_missing_field_no_sections(tmp_path):
    bad = GOOD_MODULE.format(id="zwei").replace("topics: [beteiligung]", "topics: [beteilgung, wetter]")
    bad = bad.replace("audience: Bürgermeisterinnen und Bürgermeister\n", "")
    root = _tree(
        tmp_path,
        FAQ_ONE,
        {
            "eins.md": GOOD_MODULE.format(id="eins"),
            "zwei.md": bad,
            "drei.md": "---\nid: drei\n---\nnur Text\n",
            "vier.md": "kein Vorspann\n",
            "fuenf.md": GOOD_MODULE.format(id="eins"),
            "sechs.md": GOOD_MODULE.format(id="sechs") + "\n<b>roh</b>\n\n```\nnie geschlossen\n",
        },
    )
    lines = _lines(root)
    assert (
        "content/modules/zwei.md:1: 'audience' is missing: give it as the sources state it, or write "
        "'unknown: [audience]' if they do not"
    ) in lines
    assert any(
        line.startswith("content/modules/zwei.md:5: unknown topic 'beteilgung'; did you mean 'beteiligung'?")
        for line in lines
    )
    assert any(line.startswith("content/modules/zwei.md:5: unknown topic 'wetter'") for line in lines)
    assert "content/modules/drei.md:4: text before the first section: start sections with '## Title'" in lines
    assert "content/modules/drei.md:1: 'title' is missing or empty" in lines
    assert (
        lines.count(
            "content/modules/vier.md:1: front matter missing: start the file with '---', the "
            "fields, and '---' again"
        )
        == 1
    )
    assert "content/modules/fuenf.md:2: duplicate module id 'eins' (also in content/modules/eins.md)" in lines
    assert "content/modules/sechs.md:16: raw HTML is not allowed (it is shown as text); use Markdown" in lines
    assert "content/modules/sechs.md:18: code block opened with ``` but never closed" in lines
    assert not [line for line in lines if "eins.md" in line.split(":")[0]]


def test_valid_part_still_loads_next_to_problems(tmp_path):
    root = _tree(
        tmp_path,
        FAQ_ONE + "  - {id: zwei, question: G, source: kleinstadtakademie.de}\n",
        {"eins.md": GOOD_MODULE.format(id="eins"), "zwei.md": "kaputt"},
    )
    content, problems = load_content(root)
    assert [e.id for e in content.faq_for("de")] == ["eins"]
    assert [m.id for m in content.modules_for("de")] == ["eins"]
    assert len(problems) == 2


def test_english_faq_file_is_allowed_and_used_for_english(tmp_path):
    root = _tree(tmp_path, "faq:\n  - {id: eins, question: 'Frage?', answer: Antwort., source: BBSR}\n")
    (root / "faq" / "en.yaml").write_text(
        "faq:\n  - {id: one, question: 'Question?', answer: Answer., source: BBSR}\n", encoding="utf-8"
    )
    (root / "faq" / "fr.yaml").write_text("faq: []\n", encoding="utf-8")
    content, problems = load_content(root)
    assert content.faq_for("en")[0].question == "Question?"
    assert content.faq_for("de")[0].question == "Frage?"
    assert [str(p) for p in problems] == [
        "content/faq/fr.yaml:1: unknown locale 'fr' (use de.yaml or en.yaml)"
    ]


def test_markdown_marks_may_span_lines():
    assert markdown_problems("**fett\nüber zwei Zeilen** und [ein\nLink](https://example.org)") == []
    assert markdown_problems("- eins **fett\n- zwei") == [(0, "bold text not closed: a ** is missing")]


def test_cli_content_check_exit_codes(tmp_path, capsys):
    content, _ = load_content()
    faq = sum(len(entries) for entries in content.faq.values())
    modules = sum(len(found) for found in content.modules.values())
    assert modules == 20  # ten modules, German and English
    assert main(["content", "check"]) == 0
    assert f"content OK: {faq} FAQ entries, {modules} modules" in capsys.readouterr().out
    root = tmp_path / "content"
    shutil.copytree(CONTENT_DIR, root)
    module = root / "modules" / "webinar.md"
    module.write_text(
        module.read_text(encoding="utf-8").replace("topics: [digitalisierung]", "topics: [weltraum]"),
        encoding="utf-8",
    )
    assert main(["content", "check", "--dir", str(root)]) == 1
    err = capsys.readouterr().err
    assert "content/modules/webinar.md:5: unknown topic 'weltraum'" in err
    assert "1 problem(s)" in err


async def test_startup_check_logs_problems_and_serves_the_valid_part(tmp_path, caplog):
    from commands.faq import check_content
    from commands.faq_search import CACHE_KEY
    from tests.local_bot import make_local_bot

    root = _tree(
        tmp_path,
        "faq:\n  - id: eins\n    question: Frage\n    answer: Antwort.\n    source: BBSR\n  - id: zwei\n",
        {"eins.md": GOOD_MODULE.format(id="eins")},
    )
    bot = await make_local_bot(tmp_path, content_dir=root)
    try:
        with caplog.at_level("ERROR", logger="commands.faq"):
            await check_content(bot.services)
        assert "content: content/faq/de.yaml:6: entry 2: 'question' is missing or empty" in caplog.text
        library = bot.services.cache[CACHE_KEY]
        assert [e.id for e in library.faq("de")] == ["eins"]
        assert "Antwort." in await bot.text("!frage eins")
    finally:
        await bot.db.close()


# --- sources, unknown facts and notes for authors -------------------------------------------


def test_a_module_or_faq_entry_without_a_source_is_flagged(tmp_path):
    module = GOOD_MODULE.format(id="eins").replace("source: kleinstadtakademie.de\n", "")
    root = _tree(tmp_path, "faq:\n  - {id: eins, question: F, answer: A.}\n", {"eins.md": module})
    assert _lines(root) == [
        "content/faq/de.yaml:2: entry 1: 'source' is missing or empty",
        "content/modules/eins.md:1: 'source' is missing or empty",
    ]
    content, _ = load_content(root)
    assert content.faq_for("de") == [] and content.modules_for("de") == []  # not served


def test_editorial_remarks_in_source_lines_are_flagged(tmp_path):
    module = GOOD_MODULE.format(id="eins").replace(
        "source: kleinstadtakademie.de", "source: kleinstadtakademie.de; Dauer nicht belegt"
    )
    root = _tree(
        tmp_path,
        "faq:\n  - id: eins\n    question: F\n    answer: A.\n"
        "    source: kleinstadtakademie.de (Idee); der Name ist in späteren Quellen nicht belegt\n",
        {"eins.md": module},
    )
    lines = _lines(root)
    assert lines[0].startswith("content/faq/de.yaml:5: source: 'nicht belegt' reads like a remark")
    assert lines[1].startswith("content/modules/eins.md:9: source: 'nicht belegt' reads like a remark")
    assert len(lines) == 2


def test_author_notes_in_text_users_read_are_flagged_with_their_line(tmp_path):
    module = (
        GOOD_MODULE.format(id="eins")
        .replace("duration: zwei Tage", "duration: nach Absprache (in den Quellen nicht angegeben)")
        .replace("summary: Kurz gesagt.", "summary: Kurz gesagt [?].")
        + "\nZweite Zeile.\nTODO: Ablauf ergänzen\n"
    )
    root = _tree(
        tmp_path,
        "faq:\n  - id: eins\n    question: F\n    source: BBSR\n    answer: |\n      Erste Zeile.\n"
        "      Die Zahl ist in den Quellen nicht belegt.\n",
        {"eins.md": module},
    )
    lines = _lines(root)
    assert lines == [
        "content/faq/de.yaml:7: answer of 'eins': 'in den Quellen' reads like a note for authors, but users "
        "would see it; put it under 'notes:' (never shown)",
        "content/modules/eins.md:6: 'duration': 'in den Quellen' reads like a note for authors, but users "
        "would see it; put it under 'notes:' (never shown)",
        "content/modules/eins.md:8: 'summary': '[?]' reads like a note for authors, but users would see it; "
        "put it under 'notes:' (never shown)",
        "content/modules/eins.md:17: text: 'TODO' reads like a note for authors, but users would see it; "
        "put it under 'notes:' (never shown)",
    ]


def test_unknown_facts_are_listed_not_filled_in(tmp_path):
    unknown = GOOD_MODULE.replace("duration: zwei Tage\naudience: Bürgermeisterinnen und Bürgermeister\n", "")
    root = _tree(
        tmp_path,
        FAQ_ONE,
        {
            # fine: both facts marked unknown, a note for authors
            "eins.md": unknown.format(id="eins").replace(
                "summary:", "unknown: [duration, audience]\nnotes: Dauer nicht in den Quellen [?]\nsummary:"
            ),
            # neither given nor marked
            "zwei.md": unknown.format(id="zwei"),
            # given and marked, and a field that cannot be unknown
            "drei.md": GOOD_MODULE.format(id="drei").replace(
                "summary:", "unknown: [duration, kosten]\nsummary:"
            ),
        },
    )
    assert _lines(root) == [
        "content/modules/drei.md:6: 'duration' is given and also listed under 'unknown'; keep one",
        "content/modules/drei.md:8: 'unknown' lists 'kosten'; it can list duration, audience",
        "content/modules/zwei.md:1: 'duration' is missing: give it as the sources state it, or write "
        "'unknown: [duration]' if they do not",
        "content/modules/zwei.md:1: 'audience' is missing: give it as the sources state it, or write "
        "'unknown: [audience]' if they do not",
    ]
    [module] = load_content(root)[0].modules_for("de")
    assert (module.duration, module.audience, module.unknown) == ("", "", ("duration", "audience"))
    assert module.notes == "Dauer nicht in den Quellen [?]"


def test_translations_keep_the_figures_and_topics_of_the_german_module(tmp_path):
    english = (
        GOOD_MODULE.format(id="eins")
        .replace("title: Ein Modul", "title: A module")
        .replace("## Worum es geht\n\nText.", "## What it is about\n\nTested in 2021 with 500 people.")
    )
    german = GOOD_MODULE.format(id="eins").replace("Text.", "Erprobt 2021 mit 500 Menschen.")
    root = _tree(tmp_path, FAQ_ONE, {"eins.md": german, "zwei.md": GOOD_MODULE.format(id="zwei")})
    (root / "modules" / "en").mkdir()
    (root / "modules" / "en" / "eins.md").write_text(english, encoding="utf-8")
    assert _lines(root) == []
    content, _ = load_content(root)
    assert [m.title for m in content.modules_for("en")] == ["A module", "Ein Modul"]  # zwei: German

    (root / "modules" / "en" / "eins.md").write_text(
        english.replace("2021 with 500", "2022 with 5,000").replace("[beteiligung]", "[wohnen]"),
        encoding="utf-8",
    )
    (root / "modules" / "en" / "drei.md").write_text(GOOD_MODULE.format(id="drei"), encoding="utf-8")
    (root / "modules" / "fr").mkdir()
    assert _lines(root) == [
        "content/modules/en/drei.md:1: module 'drei' has no German version (a file in modules/ with the "
        "same id)",
        "content/modules/en/eins.md:1: topics differ from content/modules/eins.md: beteiligung",
        "content/modules/en/eins.md:1: figures differ from content/modules/eins.md (same facts in every "
        "language): only there 2021, 500; only here 2022, 5000",
        "content/modules/fr:1: unknown locale folder 'fr' (German modules go directly in modules/, others "
        "in modules/en/)",
    ]


def _topic_files(tmp_path: Path, de: str, en: str) -> Path:
    folder = tmp_path / "content" / "topics"
    folder.mkdir(parents=True)
    (folder / "de.yaml").write_text(de, encoding="utf-8")
    (folder / "en.yaml").write_text(en, encoding="utf-8")
    return folder


def test_topic_files_per_locale_share_ids_and_merge_aliases(tmp_path):
    folder = _topic_files(
        tmp_path,
        "source: BBSR\ntopics:\n  - {id: wohnen, name: Wohnen, description: Wohnen in der Kleinstadt, "
        "aliases: [wohnraum]}\n",
        "source: BBSR\ntopics:\n  - {id: wohnen, name: Housing, description: Housing in small towns, "
        "aliases: [homes]}\n",
    )
    topics, problems = load_topic_files(folder)
    assert problems == []
    [topic] = list(topics)
    assert (topic.label("de"), topic.label("en"), topic.describe("en")) == (
        "Wohnen",
        "Housing",
        "Housing in small towns",
    )
    assert topics.match("homes") is topic and topics.match("Wohnraum") is topic


def test_topic_file_problems(tmp_path):
    folder = _topic_files(
        tmp_path,
        "source: BBSR\ntopics:\n"
        "  - {id: wohnen, name: Wohnen, description: 'Wohnraum (in den Quellen nicht genannt)'}\n"
        "  - {id: klima, name: Klima}\n"
        "  - {id: arbeiten, name: Arbeiten, description: Coworking}\n",
        "topics:\n  - {id: wohnen, name: Housing, description: Housing}\n"
        "  - {id: mond, name: Moon, description: Moon}\n",
    )
    topics, problems = load_topic_files(folder)
    assert [str(p) for p in problems] == [
        "content/topics/de.yaml:3: 'description': 'in den Quellen' reads like a note for authors, but users "
        "would see it; put it under 'notes:' (never shown)",
        "content/topics/de.yaml:4: topic 2: 'description' is missing or empty",
        "content/topics/en.yaml:1: 'source' is missing or empty",
        "content/topics/en.yaml:1: topic 'arbeiten' is missing (every locale lists the ids of "
        "content/topics/de.yaml)",
        "content/topics/en.yaml:3: topic 'mond' is not in content/topics/de.yaml",
    ]
    assert [t.id for t in topics] == ["arbeiten"]  # the valid German ones
