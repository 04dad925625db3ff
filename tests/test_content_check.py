"""Content validation: every problem as file:line: message; ``kleinstadtbot content check``."""

import shutil
from pathlib import Path

from bot.cli import main
from config.content import CONTENT_DIR, load_content, markdown_problems

GOOD_MODULE = """---
id: {id}
title: Ein Modul
format: Webinar
topics: [beteiligung]
duration: nach Absprache
audience: offen
summary: Kurz gesagt.
---

## Worum es geht

Text.
"""


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
        "content/faq/de.yaml:5: entry 2: 'answer' is missing or empty",
        "content/faq/de.yaml:7: duplicate id 'eins' (first at line 2)",
        "content/faq/de.yaml:10: unknown field 'tgas' (known: alternatives, answer, category, id, question, "
        "source, tags)",
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
    answer: |
      Erste Zeile.

      Hier ist **fett nicht geschlossen.
""",
    )
    assert _lines(root) == ["content/faq/de.yaml:7: answer of 'eins': bold text not closed: a ** is missing"]


def test_module_problems_unknown_topic_missing_field_no_sections(tmp_path):
    bad = GOOD_MODULE.format(id="zwei").replace("topics: [beteiligung]", "topics: [beteilgung, wetter]")
    bad = bad.replace("audience: offen\n", "")
    root = _tree(
        tmp_path,
        "faq:\n  - {id: eins, question: F, answer: A.}\n",
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
    assert "content/modules/zwei.md:1: 'audience' is missing or empty" in lines
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
    assert "content/modules/sechs.md:15: raw HTML is not allowed (it is shown as text); use Markdown" in lines
    assert "content/modules/sechs.md:17: code block opened with ``` but never closed" in lines
    assert not [line for line in lines if "eins.md" in line.split(":")[0]]


def test_valid_part_still_loads_next_to_problems(tmp_path):
    root = _tree(
        tmp_path,
        "faq:\n  - {id: eins, question: F, answer: A.}\n  - {id: zwei, question: G}\n",
        {"eins.md": GOOD_MODULE.format(id="eins"), "zwei.md": "kaputt"},
    )
    content, problems = load_content(root)
    assert [e.id for e in content.faq_for("de")] == ["eins"]
    assert [m.id for m in content.modules_for("de")] == ["eins"]
    assert len(problems) == 2


def test_english_faq_file_is_allowed_and_used_for_english(tmp_path):
    root = _tree(tmp_path, "faq:\n  - {id: eins, question: 'Frage?', answer: Antwort.}\n")
    (root / "faq" / "en.yaml").write_text(
        "faq:\n  - {id: one, question: 'Question?', answer: Answer.}\n", encoding="utf-8"
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
    assert main(["content", "check"]) == 0
    assert "content OK: 21 FAQ entries, 10 modules" in capsys.readouterr().out
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
        "faq:\n  - id: eins\n    question: Frage\n    answer: Antwort.\n  - id: zwei\n",
        {"eins.md": GOOD_MODULE.format(id="eins")},
    )
    bot = await make_local_bot(tmp_path, content_dir=root)
    try:
        with caplog.at_level("ERROR", logger="commands.faq"):
            await check_content(bot.services)
        assert "content: content/faq/de.yaml:5: entry 2: 'question' is missing or empty" in caplog.text
        library = bot.services.cache[CACHE_KEY]
        assert [e.id for e in library.faq("de")] == ["eins"]
        assert "Antwort." in await bot.text("!frage eins")
    finally:
        await bot.db.close()
