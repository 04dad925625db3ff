"""The topic list (``config/content/topics.yaml``) and forgiving topic matching."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

TOPICS_FILE = Path(__file__).resolve().parent / "content" / "topics.yaml"


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
        return self.name.get(locale) or self.name.get("de") or self.id


class TopicList:
    def __init__(self, topics: list[Topic]):
        self.topics = topics
        self.by_id = {t.id: t for t in topics}
        self._keys: dict[str, Topic] = {}
        for topic in topics:
            for key in (topic.id, *topic.name.values(), *topic.aliases):
                self._keys.setdefault(fold(key), topic)

    def __iter__(self):
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


def load_topics(path: Path = TOPICS_FILE) -> TopicList:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    topics = []
    for entry in data.get("topics", []):
        topics.append(
            Topic(
                id=str(entry["id"]),
                name=dict(entry["name"]),
                description=dict(entry.get("description") or {}),
                aliases=tuple(str(a) for a in entry.get("aliases") or ()),
            )
        )
    return TopicList(topics)


@lru_cache(maxsize=1)
def default_topics() -> TopicList:
    return load_topics()
