"""The topic list (``config/content/topics/<locale>.yaml``) and forgiving topic matching.

Each locale has its own file with the same ids (German is the reference); a topic carries its
name and description per locale and the aliases of every locale, so "Wohnen" and "housing" both
find ``wohnen``. Reading and checking the files is done by ``config.content.load_topic_files``
(the content check reports their problems with file and line).
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from config.catalogs import SOURCE_LOCALE

log = logging.getLogger(__name__)

TOPICS_DIR = Path(__file__).resolve().parent / "content" / "topics"
REFERENCE_LOCALE = SOURCE_LOCALE  # German: its file defines the ids


def fold(text: str) -> str:
    """Lower case, umlauts as ae/oe/ue, ß as ss, other accents dropped, spaces collapsed."""
    text = text.lower().replace("ä", "ae").replace("ö", "oe").replace("ü", "ue").replace("ß", "ss")
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(text.split())


@dataclass(frozen=True)
class Topic:
    id: str
    name: dict[str, str]
    description: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    def label(self, locale: str) -> str:
        return self.name.get(locale) or self.name.get(REFERENCE_LOCALE) or self.id

    def describe(self, locale: str) -> str:
        return self.description.get(locale) or self.description.get(REFERENCE_LOCALE) or ""


class TopicList:
    def __init__(self, topics: list[Topic]):
        self.topics = topics
        self.by_id = {t.id: t for t in topics}
        self._keys: dict[str, Topic] = {}
        for topic in topics:
            for key in (topic.id, *topic.name.values(), *topic.aliases):
                self._keys.setdefault(fold(key), topic)

    def __iter__(self) -> Iterator[Topic]:
        return iter(self.topics)

    def __len__(self) -> int:
        return len(self.topics)

    def match(self, text: str, cutoff: float = 80) -> Topic | None:
        """The topic ``text`` names: exact id/name/alias, else the best fuzzy match above cutoff."""
        key = fold(text)
        if not key:
            return None
        if key in self._keys:
            return self._keys[key]
        from rapidfuzz import fuzz, process  # imported on first use: 3 MB start-up does not need

        found = process.extractOne(key, list(self._keys), scorer=fuzz.WRatio, score_cutoff=cutoff)
        return self._keys[found[0]] if found else None


def load_topics(folder: Path = TOPICS_DIR) -> TopicList:
    """The valid topics in ``folder``; problems are logged (``content check`` lists them)."""
    from config.content import load_topic_files  # config.content builds on this module

    topics, problems = load_topic_files(folder)
    for problem in problems:
        log.error("topics: %s", problem)
    return topics


@lru_cache(maxsize=1)
def default_topics() -> TopicList:
    return load_topics()
