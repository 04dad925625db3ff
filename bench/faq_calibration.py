"""Would a fitted confidence do better than the FAQ's rule? A check, not part of the bot.

The FAQ answers directly when the best hit's evidence passes a rule (``Hit.confident``): the
share of the question it covers, its lead over the runner-up, words no entry knows, a long
question. This script fits a logistic model over the same evidence on the English tuning
material and checks it set by set on the halves that were fresh when they came (each left
out of its own fit). The bot would answer directly where the rule does, or where the model's
probability that the best hit is right reaches a threshold, never where the rule's vetoes
hold (no topic word in the entry's own fields, a fact about one town, "who" answered
elsewhere). Prints top-1 and wrong confident answers per left-out set and threshold, beside
the rule's own. Pure Python (no numpy in the project); about five minutes. Round 7 measured
this and did not adopt it; the search learns from examples instead (``bench/faq_learned.py``),
which this script leaves out.

    .venv/bin/python bench/faq_calibration.py
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from commands.faq_search import Hit, load_library
from tests.faq_eval import load, tuning_parts

FRESH = ("tuning5", "heldout5", "tuning6", "heldout6", "tuning7")  # fresh when they came
THRESHOLDS = (0.9, 0.93, 0.95, 0.97)
ITERATIONS = 2000
RATE = 0.5
L2 = 0.01


@dataclass(frozen=True)
class Case:
    part: str
    answerable: bool
    right: bool  # the best hit is the expected entry
    rule: bool  # the rule answers directly
    vetoed: bool
    features: tuple[float, ...]


def features(hit: Hit, terms: int, unknown: float) -> tuple[float, ...]:
    lead = math.log(min(hit.lead, 20.0))
    return (
        1.0,
        lead,
        hit.confidence,
        float(hit.contested),
        float(hit.stranger),
        float(hit.topical),
        float(hit.long),
        unknown,
        math.log(terms),
        math.log(max(hit.score, 1e-3)),
        lead * hit.confidence,
        float(hit.long) * lead,
    )


def cases() -> list[Case]:
    index = load_library(locales=("en",)).faq_index("en")
    assert index is not None
    index.classifier = None  # the rule alone, as before the examples (bench/faq_learned.py)
    found = []
    for part in tuning_parts("en"):
        for question in load(part)["en"]:
            hits = index.search(question.text, 3)
            if not hits:
                continue
            terms = index.query_terms(question.text)
            total = sum(t.weight for t in terms) or 1.0
            unknown = sum(t.weight for t in terms if t.factor == 0) / total
            best = hits[0]
            found.append(
                Case(
                    part,
                    question.expected is not None,
                    best.id == question.expected,
                    best.confident,
                    not best.strong or best.town_fact or best.cue_elsewhere,
                    features(best, len(terms), unknown),
                )
            )
    return found


class Model:
    def __init__(self, training: list[Case]):
        rows = [c.features for c in training]
        width = len(rows[0])
        self.mean = [0.0] + [sum(r[j] for r in rows) / len(rows) for j in range(1, width)]
        self.scale = [1.0] + [
            max(1e-6, math.sqrt(sum((r[j] - self.mean[j]) ** 2 for r in rows) / len(rows)))
            for j in range(1, width)
        ]
        z = [self._standard(r) for r in rows]
        y = [1.0 if c.right else 0.0 for c in training]
        self.weights = [0.0] * width
        for _ in range(ITERATIONS):
            gradient = [0.0] * width
            for row, target in zip(z, y, strict=True):
                error = self._sigmoid(row) - target
                for j in range(width):
                    gradient[j] += error * row[j]
            for j in range(width):
                penalty = L2 * self.weights[j] if j else 0.0
                self.weights[j] -= RATE * (gradient[j] / len(z) + penalty)

    def _standard(self, row: tuple[float, ...]) -> list[float]:
        return [(v - m) / s for v, m, s in zip(row, self.mean, self.scale, strict=True)]

    def _sigmoid(self, z: list[float]) -> float:
        x = sum(w * v for w, v in zip(self.weights, z, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, x))))

    def probability(self, case: Case) -> float:
        return self._sigmoid(self._standard(case.features))


def tally(test: list[Case], direct: list[bool]) -> tuple[int, int, int]:
    top1 = sum(1 for c, d in zip(test, direct, strict=True) if d and c.right)
    wrong = sum(1 for c, d in zip(test, direct, strict=True) if d and not c.right)
    return top1, sum(c.answerable for c in test), wrong


def main() -> None:
    everything = cases()
    totals = {t: [0, 0, 0] for t in (None, *THRESHOLDS)}
    for part in FRESH:
        model = Model([c for c in everything if c.part != part and not c.vetoed])
        test = [c for c in everything if c.part == part]
        rule = tally(test, [c.rule for c in test])
        print(f"{part:<9} rule: top-1 {rule[0]}/{rule[1]}, wrong confident {rule[2]}")
        for t, sums in totals.items():
            if t is None:
                figures = rule
            else:
                direct = [c.rule or (not c.vetoed and model.probability(c) >= t) for c in test]
                figures = tally(test, direct)
                top1, answerable, wrong = figures
                print(f"          model ≥ {t:.2f}: top-1 {top1}/{answerable}, wrong confident {wrong}")
            for k in range(3):
                sums[k] += figures[k]
    print()
    for t, (top1, answerable, wrong) in totals.items():
        label = "rule alone" if t is None else f"rule or model ≥ {t:.2f}"
        print(f"all five left out, {label:<22} top-1 {top1}/{answerable}, wrong confident {wrong}")


if __name__ == "__main__":
    main()
