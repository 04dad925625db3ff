"""The FAQ evaluation set: questions as mayors, clerks and coordinators ask them.

Written against the academy's topics (shared/domain/facts.md, the seed text) before the entries'
alternative phrasings were read, in the users' own words: administration vocabulary, colloquial
questions, typos, bare fragments, and questions no entry answers (expected id ``None``: the bot
must not answer those confidently).

The sets, each split once by the same rule into a tuning half and a held-out half:

- the first set (rounds 1 and 2): ``tuning.yaml`` and ``heldout.yaml``. Its held-out half's
  totals were printed six times while tuning, so it is **retired**: since round 3 it is tuning
  material like the rest (its questions and misses may be read);
- the fresh set (round 3): ``tuning3.yaml`` and ``heldout3.yaml``. The German half of
  ``heldout3.yaml`` is the German held-out half: never opened, never used for tuning, its totals
  are reported, not optimised. Its English half's totals were reported in round 3, so since
  round 4 it is retired (``RETIRED_IN``): tuning material for English;
- the English set (round 4): ``tuning4.yaml`` and ``heldout4.yaml`` (English only). Its
  held-out half's totals were reported in round 4, so since round 5 it is retired too;
- the second English set (round 5): ``tuning5.yaml`` and ``heldout5.yaml`` (English only). Its
  held-out half's totals were reported in round 5, so since round 6 it is retired too;
- the third English set (round 6): ``tuning6.yaml`` and ``heldout6.yaml`` (English only). Its
  held-out half's totals were reported in round 6, so since round 7 it is retired too;
- the fourth English set (round 7): ``tuning7.yaml`` and ``heldout7.yaml`` (English only). Its
  held-out half's totals were reported in round 7, so since round 8 it is retired too;
- the fifth English set (round 8): ``tuning8.yaml`` and ``heldout8.yaml`` (English only). Its
  held-out half's totals were reported in round 8, so since round 9 it is retired too;
- the sixth English set (round 9): ``tuning9.yaml`` and ``heldout9.yaml`` (English only). Its
  held-out half's totals were reported in round 9, so since round 10 it is retired too;
- the seventh English set (round 10): ``tuning10.yaml`` and ``heldout10.yaml`` (English only). Its
  held-out half's totals were reported in round 10, so since round 11 it is retired too;
- the eighth English set (round 11): ``tuning11.yaml`` and ``heldout11.yaml`` (English only). Its
  held-out half's totals were reported in round 11, so since round 12 it is retired too;
- the ninth English set (round 12): ``tuning12.yaml`` and ``heldout12.yaml`` (English only).
  ``heldout12.yaml`` is the English held-out half.

The held-out half of a locale is ``HELDOUT[locale]``. Tuning material (``tuning_parts``):
``tuning.yaml``, the retired ``heldout.yaml``, ``tuning3.yaml``, ``tuning4.yaml``,
``tuning5.yaml`` to ``tuning12.yaml``, ``dev.yaml`` (probes and fresh checks written during the
rounds, not part of a split) and, for English, the English half of ``heldout3.yaml`` and
``heldout4.yaml`` to ``heldout11.yaml``.

The split is deterministic and stratified: within each (locale, expected entry) group, the
questions are ordered by the SHA-256 of their text and alternate tuning, held-out, tuning, …
``split`` reproduces it from the union, so a test can check the files still follow the rule.

``evaluate`` scores a library on a list of questions the way users experience it:

- top-1: the bot answers directly (confidently) with the expected entry;
- offered: the expected entry is the direct answer or among the choices offered (top 3) when
  the bot is not confident;
- wrong confident: a direct answer with another entry, or any direct answer to a question no
  entry answers.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from rapidfuzz import fuzz, process

HERE = Path(__file__).resolve().parent
LOCALES = ("de", "en")
OFFERED = 3  # the FAQ offers this many choices when it is not confident (commands/faq.py)

DEV = "dev"  # probes and fresh checks written during tuning (dev.yaml): tuning material, no half
RETIRED = "heldout"  # the first set's held-out half, retired to tuning material in round 3
# the held-out half of each locale: reported, never tuned on
HELDOUT = {"de": "heldout3", "en": "heldout12"}
# a held-out half retired for some locales only: its questions there are tuning material
# (heldout3's English totals were reported in round 3, heldout4's to heldout11's in rounds 4 to 11)
RETIRED_IN = {
    "heldout3": ("en",),
    "heldout4": ("en",),
    "heldout5": ("en",),
    "heldout6": ("en",),
    "heldout7": ("en",),
    "heldout8": ("en",),
    "heldout9": ("en",),
    "heldout10": ("en",),
    "heldout11": ("en",),
}
# each set's (tuning half, held-out half), split by ``split``, and the locales it has
SETS = {
    "first": ("tuning", RETIRED),
    "fresh": ("tuning3", "heldout3"),
    "english": ("tuning4", "heldout4"),
    "english5": ("tuning5", "heldout5"),
    "english6": ("tuning6", "heldout6"),
    "english7": ("tuning7", "heldout7"),
    "english8": ("tuning8", "heldout8"),
    "english9": ("tuning9", "heldout9"),
    "english10": ("tuning10", "heldout10"),
    "english11": ("tuning11", "heldout11"),
    "english12": ("tuning12", "heldout12"),
}
SET_LOCALES = {
    "first": LOCALES,
    "fresh": LOCALES,
    "english": ("en",),
    "english5": ("en",),
    "english6": ("en",),
    "english7": ("en",),
    "english8": ("en",),
    "english9": ("en",),
    "english10": ("en",),
    "english11": ("en",),
    "english12": ("en",),
}
TUNING = (
    "tuning",
    RETIRED,
    "tuning3",
    "tuning4",
    "tuning5",
    "tuning6",
    "tuning7",
    "tuning8",
    "tuning9",
    "tuning10",
    "tuning11",
    "tuning12",
    DEV,
)  # tuning material in every locale
HALVES = tuple(name for halves in SETS.values() for name in halves)  # the files of the splits


def tuning_parts(locale: str) -> tuple[str, ...]:
    """Every part the content and search may be tuned on in ``locale`` (``TUNING`` plus the
    held-out halves retired there)."""
    return TUNING + tuple(name for name, locales in RETIRED_IN.items() if locale in locales)


@dataclass(frozen=True)
class Question:
    text: str
    expected: str | None  # the entry id that answers it, or None if no entry does


def load(name: str) -> dict[str, list[Question]]:
    """One file of the set (a half, the retired half or the dev probes): locale → questions."""
    if name not in (*HALVES, DEV):
        raise ValueError(f"unknown part {name!r}")
    data = yaml.safe_load((HERE / f"{name}.yaml").read_text(encoding="utf-8"))
    return {
        locale: [Question(str(text), expected) for expected, text in data.get(locale, [])]
        for locale in LOCALES
    }


ECHO_RATIO = 90  # a wording within this rapidfuzz ratio of a question echoes it


def normalised(text: str) -> str:
    """Lower-case words only: how wordings are compared."""
    return " ".join(re.findall(r"\w+", text.lower()))


def echo_of(texts: Iterable[str]) -> Callable[[str], str | None]:
    """A check of a wording against ``texts``: the one it echoes (normalised; within
    ``ECHO_RATIO``), or None. Phrasings and examples must not echo held-out questions."""
    targets = [normalised(t) for t in texts]

    def echoed(text: str) -> str | None:
        found = process.extractOne(normalised(text), targets, scorer=fuzz.ratio, score_cutoff=ECHO_RATIO)
        return found[0] if found else None

    return echoed


def _order(question: Question) -> str:
    return hashlib.sha256(question.text.encode("utf-8")).hexdigest()


def split(questions: list[Question]) -> tuple[list[Question], list[Question]]:
    """(tuning, held-out): stratified by expected entry, alternating in hash order."""
    groups: dict[str | None, list[Question]] = defaultdict(list)
    for question in questions:
        groups[question.expected].append(question)
    tuning: list[Question] = []
    heldout: list[Question] = []
    for expected in sorted(groups, key=lambda e: e or ""):
        for position, question in enumerate(sorted(groups[expected], key=_order)):
            (tuning if position % 2 == 0 else heldout).append(question)
    return tuning, heldout


@dataclass
class Figures:
    answerable: int = 0
    unanswerable: int = 0
    top1: int = 0  # confident and right
    ranked_first: int = 0  # right entry ranked first, confident or not
    offered: int = 0  # right entry answered or among the offered choices
    wrong_confident: list[tuple[str, str | None, str]] = field(default_factory=list)
    missed: list[tuple[str, str, list[str]]] = field(default_factory=list)  # not offered at all
    not_direct: list[tuple[str, str, list[str]]] = field(default_factory=list)  # offered only

    @property
    def top1_share(self) -> float:
        return self.top1 / self.answerable if self.answerable else 0.0

    @property
    def offered_share(self) -> float:
        return self.offered / self.answerable if self.answerable else 0.0

    def line(self) -> str:
        return (
            f"top-1 {self.top1}/{self.answerable} = {self.top1_share:.0%}, "
            f"offered {self.offered}/{self.answerable} = {self.offered_share:.0%}, "
            f"ranked first {self.ranked_first}/{self.answerable}, "
            f"wrong confident {len(self.wrong_confident)} "
            f"(of {self.answerable + self.unanswerable} questions, {self.unanswerable} unanswerable)"
        )


def evaluate(library, locale: str, questions: list[Question]) -> Figures:
    """Score ``library.ask`` on ``questions`` as a user would see the replies."""
    figures = Figures()
    for question in questions:
        found = library.ask(locale, question.text)
        ids = [entry.id for entry, _hit in found]
        confident = bool(found) and found[0][1].confident
        if question.expected is None:
            figures.unanswerable += 1
            if confident:
                figures.wrong_confident.append((question.text, None, ids[0]))
            continue
        figures.answerable += 1
        figures.ranked_first += bool(ids) and ids[0] == question.expected
        if confident:
            if ids[0] == question.expected:
                figures.top1 += 1
                figures.offered += 1
            else:
                figures.wrong_confident.append((question.text, question.expected, ids[0]))
        elif question.expected in ids[:OFFERED]:
            figures.offered += 1
            figures.not_direct.append((question.text, question.expected, ids[:OFFERED]))
        else:
            figures.missed.append((question.text, question.expected, ids[:OFFERED]))
    return figures
