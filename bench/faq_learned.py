"""How much of the FAQ's learning from examples carries over to a new writer's questions.

The FAQ search learns from labelled questions (``faq/examples.<locale>.yaml``,
``commands.faq_search.Classifier``); the shipped English examples are the English tuning
material of ``tests/faq_eval``, so the tuning figures of ``bench/faq.py`` are figures on the
examples themselves. This script gives the figure that counts, set by set: each English set
that was fresh when it came (``FRESH``) is taken out of the examples (with every example
within a fuzzy ratio of 90 of one of its questions), the model is trained on the rest, and the
set is scored as ``bench/faq.py`` scores it, beside the search without the model. The held-out
half (``HELDOUT``) is never read here.

    .venv/bin/python bench/faq_learned.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from commands.faq_search import Classifier, load_library
from tests.faq_eval import HELDOUT, Figures, echo_of, evaluate, load

FRESH = (
    "tuning5",
    "heldout5",
    "tuning6",
    "heldout6",
    "tuning7",
    "heldout7",
    "tuning8",
    "heldout8",
    "tuning9",
    "heldout9",
    "tuning10",
    "heldout10",
    "tuning11",
    "heldout11",
    "tuning12",
)  # fresh when they came


def main() -> None:
    assert HELDOUT["en"] not in FRESH
    library = load_library(locales=("en",))
    index = library.faq_index("en")
    assert index is not None and index.classifier is not None
    examples = library.content.faq_examples["en"]
    totals = {"without the model": Figures(), "with the model": Figures()}
    for part in FRESH:
        questions = load(part)["en"]
        close = echo_of(q.text for q in questions)
        kept = [(label, text) for label, text in examples if not close(text)]
        index.classifier = None
        without = evaluate(library, "en", questions)
        index.classifier = Classifier.for_faq(library.faq("en"), kept, index)
        learned = evaluate(library, "en", questions)
        print(f"{part:<9} ({len(examples) - len(kept)} examples left out)")
        for label, figures in (("without the model", without), ("with the model", learned)):
            print(f"  {label:<18} {figures.line()}")
            total = totals[label]
            total.answerable += figures.answerable
            total.unanswerable += figures.unanswerable
            total.top1 += figures.top1
            total.ranked_first += figures.ranked_first
            total.offered += figures.offered
            total.wrong_confident += figures.wrong_confident
    print()
    for label, figures in totals.items():
        print(f"all {len(FRESH)}, {label:<18} {figures.line()}")


if __name__ == "__main__":
    main()
