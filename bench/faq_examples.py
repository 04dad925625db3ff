"""Write the English FAQ examples from the evaluation set's tuning material.

``config/content/faq/examples.en.yaml`` holds the questions the FAQ search learns from
(``commands.faq_search.Classifier``): the English tuning material of ``tests/faq_eval``, less
every question within a fuzzy ratio of 90 of a held-out question, followed by examples written
for the file itself (from the line ``MARKER`` on, kept as they are). Run it after a round
retires a held-out half or adds a tuning half; it prints how many questions it wrote and how
many it left out, never which held-out question they echo.

    .venv/bin/python bench/faq_examples.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config.content import CONTENT_DIR
from tests.faq_eval import HELDOUT, echo_of, load, tuning_parts

PATH = CONTENT_DIR / "faq" / "examples.en.yaml"
MARKER = "  # written for the examples"
HEADER = """\
# Questions people asked, each with the FAQ entry that answers it (null: no entry does). The FAQ
# search learns from them which words people use for an entry and how sure those words make it
# (commands/faq_search.Classifier); the entries' own questions and phrasings count as examples too.
# Add a question a user asked and the bot did not answer directly, with the entry that answers it,
# below the line that says so. Never add a question of an evaluation set's held-out half
# (tests/faq_eval), nor one close to it: tests check that. The part above that line is the
# English tuning material of tests/faq_eval, written by bench/faq_examples.py from:
# {parts}.
examples:
"""


def main() -> None:
    held = echo_of(q.text for q in load(HELDOUT["en"])["en"])
    text = PATH.read_text(encoding="utf-8")
    own = text[text.index(MARKER) :] if MARKER in text else MARKER + "\n"
    seen: set[str] = set()
    lines: list[str] = []
    left_out = 0
    parts = tuning_parts("en")
    for part in parts:
        for question in load(part)["en"]:
            if question.text in seen:
                continue
            seen.add(question.text)
            if held(question.text):
                left_out += 1
                continue
            lines.append(
                f"  - [{json.dumps(question.expected)}, {json.dumps(question.text, ensure_ascii=False)}]"
            )
    PATH.write_text(HEADER.format(parts=", ".join(parts)) + "\n".join(lines) + "\n" + own, encoding="utf-8")
    print(
        f"{len(lines)} examples from {len(parts)} parts; {left_out} left out (close to a held-out question)"
    )


if __name__ == "__main__":
    main()
