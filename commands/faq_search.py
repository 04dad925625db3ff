"""Finding the FAQ entry or module someone means, however they type it.

Deterministic and explainable, no remote service:

1. Normalise: lower case, umlauts as ae/oe/ue/ss (``config.topics.fold``), words only, German
   stop words out, Snowball German stemming.
2. Compounds: a long word that is not in the index is split into two known words
   ("Bürgermeistertandem" → "buergermeister" + "tandem"); index words are split the same way.
3. Typos: a query word the index does not know is replaced by the closest index word
   (rapidfuzz ratio ≥ 85, ≥ 80 for long words), counted by how close it is.
4. Rank with BM25F over weighted fields (question and alternative phrasings highest, then tags,
   then the answer).
5. Confidence: the share of the query's weight (IDF) that the best entry covers (a word found
   only in the answer counts half). Words the index has never seen (weather, football) weigh
   the most, so off-topic questions stay below the threshold and get suggestions or nothing
   instead of a wrong answer. A lower share suffices when the best entry clearly leads.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import Stemmer

from config.content import CONTENT_DIR, Content, FaqEntry, Module, Problem, load_content
from config.topics import default_topics, fold

WORD_RE = re.compile(r"[a-z0-9]+")
CONFIDENT = 0.6  # share of the query weight the best hit must cover ...
CONFIDENT_LEADING = 0.35  # ... or this much, if it scores LEAD times the runner-up
LEAD = 1.5
MIN_LEAD = 1.1  # closer than this to the runner-up: ambiguous ("Austausch"), offer both
FUZZY_CUTOFF = 80  # rapidfuzz ratio for words of 8 letters or more
FUZZY_CUTOFF_SHORT = 85  # for 6 and 7 letters (shorter words are not corrected)
FUZZY_SURE = 90  # a guess this close counts like the word itself (one letter off in a long word)
ANSWER_ONLY = 0.5  # a query word found only in the answer covers this share of its weight
STRONG_FIELD = 1.0  # fields weighted at least this much (not the answer or body) count fully
K1 = 1.2
B = 0.75

# Frequent German words that say nothing about the topic (folded spelling), plus the question
# words and fillers people put around a question.
_STOP_WORDS_TEXT = """
a ab aber alle allem allen aller alles als also am an ans auch auf aus bei beim bin bis bist bitte
da dabei damit dann das dass dein deine dem den denn der des dich die dir doch dort du durch
ein eine einem einen einer eines er es etwa euch euer eure fuer gibt gibts geht hab habe haben hat
hallo hi hier ich ihr ihre im in ins ist ja jemand kann kannst koennen koennte man mein meine mich
mir mit moechte muss muessen nach nicht noch nun nur ob oder ohne sagen sag sein seine sich sie
sind so soll sollte ueber um und uns unser unsere unter vom von vor war was weiss welche welcher
welches wenn wer werden wie wieso wir wird wo woher wohin zu zum zur guten tag danke moin servus
erklaeren erklaer erzaehl mal eigentlich genau gerne gern heisst bedeutet infos info informationen
weiter weitere weiteren mehr gut viel viele sehr schon heute morgen jetzt immer dazu davon
funktioniert funktionieren klappt laeuft machen macht tun finde finden bekomme bekommen lautet
gelten gilt fallen habt versteht verstehst kurz diese dieser dieses dies direkt ueberall leute
wieviel wieviele eigentlich einfach wirklich
the a an is are what who how do does can i you of to for and in on it my me
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())


@lru_cache(maxsize=1)
def _stemmer():
    return Stemmer.Stemmer("german")


@lru_cache(maxsize=20_000)
def stem(word: str) -> str:
    return _stemmer().stemWord(word)


def words(text: str) -> list[str]:
    """Folded words without stop words (not yet stemmed)."""
    return [w for w in WORD_RE.findall(fold(text)) if w not in STOP_WORDS and len(w) > 1]


@dataclass(frozen=True)
class Doc:
    """One searchable item: an id and weighted text fields."""

    id: str
    fields: dict[str, str]


@dataclass(frozen=True)
class QueryTerm:
    term: str  # the index term (stem) it stands for
    factor: float  # 1 for a known word, less for a guessed one, 0 for a word no entry has
    weight: float  # its share of the query weight (IDF)
    covers: float  # how much of that weight an entry containing ``term`` covers


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    confidence: float
    matched: tuple[str, ...] = ()
    lead: float = 0.0  # the best hit's score divided by the runner-up's (0 for the others)
    strong: bool = False  # some query word is in the question, phrasings or tags (not just the answer)

    @property
    def confident(self) -> bool:
        """Most of the question is covered and no other entry scores about the same, or a good
        part is covered and the entry clearly leads."""
        return (self.confidence >= CONFIDENT and self.lead >= MIN_LEAD) or (
            self.strong and self.confidence >= CONFIDENT_LEADING and self.lead >= LEAD
        )


@dataclass
class Index:
    weights: dict[str, float]
    docs: list[str] = field(default_factory=list)
    tf: list[dict[str, Counter]] = field(default_factory=list)
    lengths: list[dict[str, int]] = field(default_factory=list)
    avg_length: dict[str, float] = field(default_factory=dict)
    df: Counter = field(default_factory=Counter)
    words: set[str] = field(default_factory=set)  # folded index words (compounds, typos)
    word_list: list[str] = field(default_factory=list)  # the same, sorted (deterministic typos)
    _seen: dict[str, list[str]] = field(default_factory=dict)  # index word → its terms (build only)

    # --- building -------------------------------------------------------------------------

    @classmethod
    def build(cls, docs: list[Doc], weights: dict[str, float]) -> Index:
        index = cls(weights=dict(weights))
        raw = [{name: words(doc.fields.get(name, "")) for name in weights} for doc in docs]
        index.words = {w for fields in raw for ws in fields.values() for w in ws}
        totals: Counter = Counter()
        for doc, fields in zip(docs, raw, strict=True):
            tf = {name: Counter(index._terms(ws, split=True)) for name, ws in fields.items()}
            index.docs.append(doc.id)
            index.tf.append(tf)
            index.lengths.append({name: sum(c.values()) for name, c in tf.items()})
            for name, counter in tf.items():
                totals[name] += sum(counter.values())
            index.df.update({t for counter in tf.values() for t in counter})
        count = max(1, len(docs))
        index.avg_length = {name: max(1.0, totals[name] / count) for name in weights}
        index.word_list = sorted(w for w in index.words if len(w) >= 4)
        return index

    def _split(self, word: str, loose: bool = False) -> list[str]:
        """Two known words a compound is made of, or [] ("tandempartner" → tandem, partner).

        ``loose`` (used for index words) also accepts an unknown head before a known tail of at
        least five letters, so "Jugendparlament" makes "jugend" findable."""
        if len(word) < 8:
            return []
        for cut in range(len(word) - 4, 3, -1):
            head, tail = word[:cut], word[cut:]
            if tail not in self.words:
                continue
            for candidate in (
                head,
                head[:-1] if head.endswith("s") else None,
                head[:-1] if head.endswith("n") else None,
                head[:-2] if head.endswith("en") else None,
            ):
                if candidate and len(candidate) >= 4 and candidate in self.words:
                    return [candidate, tail]
            if loose and len(tail) >= 5:
                return [head.removesuffix("s") if len(head) > 4 else head, tail]
        return []

    def _terms(self, ws: list[str], split: bool) -> list[str]:
        terms = []
        for w in ws:
            if w not in self._seen:
                self._seen[w] = [stem(w)] + [stem(p) for p in self._split(w, loose=True)]
            terms.extend(self._seen[w] if split else self._seen[w][:1])
        return terms

    # --- searching ------------------------------------------------------------------------

    def idf(self, term: str) -> float:
        n = len(self.docs)
        return math.log(1 + (n - self.df.get(term, 0) + 0.5) / (self.df.get(term, 0) + 0.5))

    def query_terms(self, text: str) -> list[QueryTerm]:
        """The query's words as index terms, each with its share of the query weight."""
        result: list[QueryTerm] = []
        unknown_idf = self.idf("\0")  # a word no entry has: the highest weight
        for w in dict.fromkeys(words(text)):
            term = stem(w)
            if term in self.df:
                result.append(QueryTerm(term, 1.0, self.idf(term), self.idf(term)))
                continue
            parts = [stem(p) for p in self._split(w)]
            if parts:
                result += [QueryTerm(p, 1.0, self.idf(p), self.idf(p)) for p in parts]
                continue
            cutoff = FUZZY_CUTOFF if len(w) >= 8 else FUZZY_CUTOFF_SHORT
            from rapidfuzz import fuzz, process  # imported on first use: 3 MB start-up does not need

            close = (
                process.extractOne(w, self.word_list, scorer=fuzz.ratio, score_cutoff=cutoff)
                if len(w) >= 6
                else None
            )
            if close is not None and stem(close[0]) in self.df:
                # a guessed word counts by how close it is; a loose guess (below 90) also keeps
                # the weight of an unknown word, so it alone never makes a confident answer
                found, factor = stem(close[0]), close[1] / 100
                weight = self.idf(found) if close[1] >= FUZZY_SURE else unknown_idf
                result.append(QueryTerm(found, factor, weight, factor * self.idf(found)))
            else:
                result.append(QueryTerm(term, 0.0, unknown_idf, 0.0))
        return result

    def search(self, text: str, limit: int = 5) -> list[Hit]:
        terms = self.query_terms(text)
        total = sum(t.weight for t in terms)
        if not terms or total <= 0:
            return []
        hits: list[Hit] = []
        for position, doc_id in enumerate(self.docs):
            tf, lengths = self.tf[position], self.lengths[position]
            score, covered, matched, strong = 0.0, 0.0, [], False
            for t in terms:
                if t.factor == 0.0:
                    continue
                pseudo, strongest = 0.0, 0.0
                for name, field_weight in self.weights.items():
                    count = tf[name].get(t.term, 0)
                    if count:
                        norm = 1 - B + B * lengths[name] / self.avg_length[name]
                        pseudo += field_weight * count / norm
                        strongest = max(strongest, field_weight)
                if pseudo:
                    score += t.factor * self.idf(t.term) * pseudo * (K1 + 1) / (pseudo + K1)
                    covered += t.covers * (1.0 if strongest >= STRONG_FIELD else ANSWER_ONLY)
                    strong = strong or strongest >= STRONG_FIELD
                    matched.append(t.term)
            if score > 0:
                hits.append(
                    Hit(
                        doc_id,
                        round(score, 6),
                        round(min(1.0, covered / total), 4),
                        tuple(matched),
                        strong=strong,
                    )
                )
        order = {doc_id: n for n, doc_id in enumerate(self.docs)}
        hits.sort(key=lambda h: (-h.score, order[h.id]))
        if hits:
            lead = hits[0].score / hits[1].score if len(hits) > 1 else math.inf
            hits[0] = replace(hits[0], lead=lead)
        return hits[:limit]


# Field weights: question and alternative phrasings count most, the answer least.
FAQ_WEIGHTS = {"question": 3.0, "alternatives": 2.5, "tags": 2.0, "answer": 0.5}
MODULE_WEIGHTS = {"title": 3.0, "id": 2.5, "format": 2.0, "topics": 1.5, "summary": 1.0, "body": 0.5}


def faq_docs(entries) -> list[Doc]:
    return [
        Doc(
            e.id,
            {
                "question": e.question,
                "alternatives": "\n".join(e.alternatives),
                "tags": " ".join(e.tags),
                "answer": e.answer,
            },
        )
        for e in entries
    ]


def module_docs(modules, topic_label) -> list[Doc]:
    return [
        Doc(
            m.id,
            {
                "title": m.title,
                "id": m.id.replace("-", " ").replace("_", " "),
                "format": m.format,
                "topics": " ".join(topic_label(t) for t in m.topics),
                "summary": m.summary,
                "body": m.body,
            },
        )
        for m in modules
    ]


# --- the loaded library: content plus its indexes ------------------------------------------

CACHE_KEY = "content.library"


@dataclass
class Library:
    """The content in service and its search indexes (kept in ``services.cache``)."""

    content: Content
    problems: list[Problem]
    faq_index: dict[str, Index] = field(default_factory=dict)
    module_index: dict[str, Index] = field(default_factory=dict)

    @classmethod
    def build(cls, content: Content, problems: list[Problem]) -> Library:
        topics = default_topics()

        def label(topic_id: str) -> str:
            topic = topics.by_id.get(topic_id)
            return " ".join(topic.name.values()) + " " + " ".join(topic.aliases) if topic else topic_id

        library = cls(content, problems)
        for locale, entries in content.faq.items():
            library.faq_index[locale] = Index.build(faq_docs(entries), FAQ_WEIGHTS)
        for locale, modules in content.modules.items():
            library.module_index[locale] = Index.build(module_docs(modules, label), MODULE_WEIGHTS)
        return library

    # --- FAQ ------------------------------------------------------------------------------

    def faq(self, locale: str) -> list[FaqEntry]:
        return self.content.faq_for(locale)

    def faq_entry(self, locale: str, entry_id: str) -> FaqEntry | None:
        return next((e for e in self.faq(locale) if e.id == entry_id), None)

    def ask(self, locale: str, question: str, limit: int = 3) -> list[tuple[FaqEntry, Hit]]:
        """The best FAQ entries for ``question``, best first, with their confidence."""
        index = self.faq_index.get(locale) or self.faq_index.get("de")
        if index is None:
            return []
        entries = {e.id: e for e in self.faq(locale)}
        return [(entries[h.id], h) for h in index.search(question, limit) if h.id in entries]

    # --- modules --------------------------------------------------------------------------

    def modules(self, locale: str) -> list[Module]:
        return self.content.modules_for(locale)

    def module(self, locale: str, module_id: str) -> Module | None:
        key = fold(module_id).replace(" ", "-")
        return next((m for m in self.modules(locale) if m.id == key), None)

    def find_modules(self, locale: str, text: str, limit: int = 5) -> list[tuple[Module, Hit]]:
        index = self.module_index.get(locale) or self.module_index.get("de")
        if index is None:
            return []
        modules = {m.id: m for m in self.modules(locale)}
        return [(modules[h.id], h) for h in index.search(text, limit) if h.id in modules]


def load_library(root: Path | None = None) -> Library:
    """Read, check and index the content below ``root`` (the valid part, plus the problems)."""
    content, problems = load_content(root)
    return Library.build(content, problems)


def content_root(settings) -> Path:
    return Path(settings.content_dir) if settings.content_dir else CONTENT_DIR


async def library(services) -> Library:
    """The library in service, loaded on first use."""

    async def build() -> Library:
        return await asyncio.to_thread(load_library, content_root(services.settings))

    return await services.cached(CACHE_KEY, build)
