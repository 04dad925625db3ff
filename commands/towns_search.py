"""Finding a German municipality however its name is typed.

``await find_towns(services, query)`` answers with a ``SearchResult``:

- ``exact``: one municipality (by name, AGS, ARS or the seat's postcode, or a certain typo fix);
- ``ambiguous``: several municipalities share the name (``Neuenkirchen``), or a postcode;
- ``suggestions``: close names, none certain ("Meintest du …");
- ``not_found``.

Names are compared in a canonical form: lower case, umlauts as ae/oe/ue, ß as ss, accents dropped,
punctuation as spaces, ``St.`` as ``sankt``, Destatis abbreviations and their long forms folded to
one form (``a.d.`` = ``an der``, ``i.`` = ``in``/``im``, ``b.`` = ``bei`` …), designations like
``Stadt`` or ``Hansestadt`` optional. A name can be narrowed by Kreis, Land or Regierungsbezirk
(``Neustadt Holstein``, ``Altenberg, Sachsen``). The index is built once per process from the
register (``services.cached``); ``reset_index`` drops it after an import.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

from commands.context import Services
from storage.municipalities import Municipality, MunicipalityRepository

CACHE_KEY = "towns_search.index"
Status = Literal["exact", "ambiguous", "suggestions", "not_found"]
MAX_QUERY_LENGTH = 100
CERTAIN_SCORE = 88.0  # a typo fix above this, clearly ahead of the next name, counts as found
SUGGEST_SCORE = 72.0
CERTAIN_MARGIN = 5.0

# Connectors and articles, long and abbreviated, folded to one token each.
TOKEN_MAP = {
    "an": "a",
    "am": "a",
    "der": "d",
    "den": "d",
    "dem": "d",
    "in": "i",
    "im": "i",
    "bei": "b",
    "vor": "v",
    "ob": "o",
    "st": "sankt",
    "skt": "sankt",
    "westf": "westfalen",
    "hann": "hannover",
    "rhld": "rheinland",
    "odw": "odenwald",
    "vogtl": "vogtland",
    "opf": "oberpfalz",
    "schw": "schwarzwald",
}
CONNECTORS = {"a", "i", "b", "v", "o"}
# Designations a user may add or leave out ("Hansestadt Lübeck", "Bad Berleburg Stadt").
DESIGNATIONS = {
    "stadt",
    "hansestadt",
    "markt",
    "gemeinde",
    "kreisstadt",
    "grosse",
    "landeshauptstadt",
    "universitaetsstadt",
    "kreisfreie",
    "hochschulstadt",
    "flecken",
    "marktgemeinde",
}
LAND_ABBREVIATIONS = {
    "bw": "Baden-Württemberg",
    "by": "Bayern",
    "be": "Berlin",
    "bb": "Brandenburg",
    "hb": "Bremen",
    "hh": "Hamburg",
    "he": "Hessen",
    "mv": "Mecklenburg-Vorpommern",
    "ni": "Niedersachsen",
    "nds": "Niedersachsen",
    "nw": "Nordrhein-Westfalen",
    "nrw": "Nordrhein-Westfalen",
    "rp": "Rheinland-Pfalz",
    "rlp": "Rheinland-Pfalz",
    "sl": "Saarland",
    "sn": "Sachsen",
    "st": "Sachsen-Anhalt",
    "lsa": "Sachsen-Anhalt",
    "sh": "Schleswig-Holstein",
    "th": "Thüringen",
}
_PUNCT = re.compile(r"[\s.,;:/()\[\]\-–—_'\"„“”‚‘!?*+&]+")


def fold(text: str) -> str:
    """Lower case, umlauts as ae/oe/ue, ß as ss, other accents dropped."""
    text = text.lower().replace("ä", "ae").replace("ö", "oe").replace("ü", "ue").replace("ß", "ss")
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if not unicodedata.combining(c))


def tokens(text: str) -> list[str]:
    """The canonical tokens of a name or query."""
    return [TOKEN_MAP.get(t, t) for t in _PUNCT.split(fold(text)) if t]


@lru_cache(maxsize=4096)
def _normalize_cached(text: str) -> str:
    return " ".join(tokens(text))


def normalize(text: str) -> str:
    return " ".join(tokens(text))


def _strip_designations(words: list[str]) -> list[str]:
    kept = [w for w in words if w not in DESIGNATIONS]
    return kept or words


def _base_name(words: list[str]) -> list[str]:
    """The part before a connector or qualifier: ``neustadt a d donau`` → ``neustadt``."""
    for i, word in enumerate(words[1:], start=1):
        if word in CONNECTORS:
            return words[:i]
    return words


@dataclass(frozen=True)
class SearchResult:
    status: Status
    query: str
    towns: list[Municipality] = field(default_factory=list)
    matched_by: str = ""  # name, ags, ars, plz, fuzzy
    qualifier: str = ""  # the Kreis/Land words that narrowed the name, if any

    @property
    def town(self) -> Municipality | None:
        return self.towns[0] if self.status == "exact" and self.towns else None


class TownIndex:
    """In-memory lookup over the whole register (about 10,800 municipalities)."""

    def __init__(self, towns: Iterable[Municipality]):
        self.towns = list(towns)
        self.by_ags: dict[str, Municipality] = {}
        self.by_ars: dict[str, Municipality] = {}
        self.by_plz: dict[str, list[Municipality]] = {}
        self.primary: dict[str, list[Municipality]] = {}  # full names, with and without designations
        self.secondary: dict[str, list[Municipality]] = {}  # base names: "neustadt", "burg"
        self.verband_population: dict[str, int] = {}
        self.verband_members: dict[str, int] = {}
        self.qualifiers: dict[str, str] = {}  # ags → normalised Kreis, Land, Bezirk, name, Verband
        for town in self.towns:
            self.by_ags[town.ags] = town
            if town.ars:
                self.by_ars[town.ars] = town
            if town.plz:
                self.by_plz.setdefault(town.plz, []).append(town)
            words = tokens(town.name)
            keys = {" ".join(words), " ".join(_strip_designations(words))}
            for key in keys:
                if key:
                    self._add(self.primary, key, town)
            # parts of "Cottbus/Chóśebuz", "Burg (Dithmarschen)", "Neustadt a.d.Donau", "Bad Berleburg"
            for part in re.split(r"[/(]", town.name):
                base = _base_name(tokens(part))
                for key in {normalize(part), " ".join(base), " ".join(base[1:]) if base[0] == "bad" else ""}:
                    if key and key not in keys:
                        self._add(self.secondary, key, town)
            if town.in_verband and town.verband_key:
                key = town.verband_key
                self.verband_population[key] = self.verband_population.get(key, 0) + town.population
                self.verband_members[key] = self.verband_members.get(key, 0) + 1
            land_abbr = " ".join(a for a, land in LAND_ABBREVIATIONS.items() if land == town.land)
            self.qualifiers[town.ags] = (
                " "
                + " ".join(
                    _normalize_cached(x)
                    for x in (
                        town.kreis,
                        town.land,
                        town.regierungsbezirk,
                        town.name,
                        town.gemeindeverband,
                        land_abbr,
                    )
                    if x
                )
                + " "
            )
        self.fuzzy_keys = list(self.primary) + [k for k in self.secondary if k not in self.primary]
        self.fuzzy_buckets: dict[str, list[str]] = {}
        self.fuzzy_lengths: dict[int, list[str]] = {}
        for key in self.fuzzy_keys:
            self.fuzzy_buckets.setdefault(key[:1], []).append(key)
            self.fuzzy_lengths.setdefault(len(key), []).append(key)

    @staticmethod
    def _add(table: dict[str, list[Municipality]], key: str, town: Municipality) -> None:
        bucket = table.setdefault(key, [])
        if town not in bucket:
            bucket.append(town)

    # --- lookups -------------------------------------------------------------------------------

    def verband(self, town: Municipality) -> tuple[int, int] | None:
        """Combined population and member count of the town's Gemeindeverband, if it has one."""
        if not town.in_verband or town.verband_key not in self.verband_population:
            return None
        return self.verband_population[town.verband_key], self.verband_members[town.verband_key]

    def _names(self, key: str) -> list[Municipality]:
        found = list(self.primary.get(key, ()))
        found += [t for t in self.secondary.get(key, ()) if t not in found]
        return found

    def _extract(
        self, key: str, cutoff: float, limit: int, fallback: bool = True
    ) -> list[tuple[str, float, int]]:
        """Fuzzy matches among names with the same first letter; if none is certain, among all
        names of about the same length (a typo changes the length by one or two)."""
        from rapidfuzz import fuzz, process  # imported on first use: 3 MB start-up does not need

        bucket = self.fuzzy_buckets.get(key[:1], [])
        found = process.extract(key, bucket, scorer=fuzz.ratio, limit=limit, score_cutoff=cutoff)
        if fallback and (not found or found[0][1] < CERTAIN_SCORE):
            near: list[str] = []
            for length in range(len(key) - 2, len(key) + 3):
                near += self.fuzzy_lengths.get(length, ())
            more = process.extract(key, near, scorer=fuzz.ratio, limit=limit, score_cutoff=cutoff)
            merged = {k: sc for k, sc, _ in found}
            for k, sc, _ in more:
                merged[k] = max(sc, merged.get(k, 0.0))
            found = sorted(((k, sc, 0) for k, sc in merged.items()), key=lambda m: -m[1])[:limit]
        return found

    def _narrow(self, towns: list[Municipality], qualifier: str) -> list[Municipality]:
        words = [w for w in tokens(qualifier) if w not in CONNECTORS and w not in DESIGNATIONS]
        if not words:
            return []
        abbr = LAND_ABBREVIATIONS.get(words[0]) if len(words) == 1 else None
        if abbr:
            return [t for t in towns if t.land == abbr]
        needle = " ".join(words)
        if len(needle) < 3:
            return []
        hits = [t for t in towns if needle in self.qualifiers[t.ags]]
        if hits:
            return hits
        from rapidfuzz import fuzz

        return [t for t in towns if fuzz.partial_ratio(needle, self.qualifiers[t.ags]) >= 88]

    def search(self, query: str) -> SearchResult:
        raw = " ".join(query.split())
        if not raw or len(raw) > MAX_QUERY_LENGTH:
            return SearchResult("not_found", raw)
        digits = re.sub(r"[\s.]", "", raw)
        if digits.isdigit():
            return self._by_number(raw, digits)
        words = tokens(raw)
        if not words:
            return SearchResult("not_found", raw)
        # 1. the whole query is a name (with or without designations)
        for candidate in (words, _strip_designations(words)):
            found = self._names(" ".join(candidate))
            if found:
                return self._result(raw, found, "name")
        # 2. a name followed by a Kreis/Land ("Neustadt Holstein", "Altenberg, Sachsen")
        parts = [p for p in re.split(r"\s*,\s*", raw, maxsplit=1) if p]
        splits: list[tuple[list[str], str]] = []
        if len(parts) == 2:
            splits.append((_strip_designations(tokens(parts[0])), parts[1]))
        stripped = _strip_designations(words)
        for cut in range(len(stripped) - 1, 0, -1):
            splits.append((stripped[:cut], " ".join(stripped[cut:])))
        for name_words, qualifier in splits:
            found = self._names(" ".join(name_words))
            if found:
                narrowed = self._narrow(found, qualifier)
                if narrowed:
                    return self._result(raw, narrowed, "name", qualifier=qualifier)
        # 3. typos
        return self._fuzzy(raw, " ".join(stripped), splits)

    def _by_number(self, raw: str, digits: str) -> SearchResult:
        if len(digits) == 8 and digits in self.by_ags:
            return SearchResult("exact", raw, [self.by_ags[digits]], "ags")
        if len(digits) == 12 and digits in self.by_ars:
            return SearchResult("exact", raw, [self.by_ars[digits]], "ars")
        if len(digits) == 5 and raw.strip().isdigit() and digits in self.by_plz:
            return self._result(raw, self.by_plz[digits], "plz")
        return SearchResult("not_found", raw)

    @staticmethod
    def _result(raw: str, towns: list[Municipality], how: str, qualifier: str = "") -> SearchResult:
        towns = sorted(towns, key=lambda t: -t.population)
        status: Status = "exact" if len(towns) == 1 else "ambiguous"
        return SearchResult(status, raw, towns, how, qualifier)

    def _fuzzy(self, raw: str, key: str, splits: list[tuple[list[str], str]]) -> SearchResult:
        matches = self._extract(key, SUGGEST_SCORE, 8)
        # a typo in the name part of "name qualifier"
        if not matches or matches[0][1] < CERTAIN_SCORE:
            for name_words, qualifier in splits[:3]:
                name = " ".join(name_words)
                if len(name) < 4:
                    continue
                best = self._extract(name, CERTAIN_SCORE, 1, fallback=False)
                if best:
                    narrowed = self._narrow(self._names(best[0][0]), qualifier)
                    if narrowed:
                        return self._result(raw, narrowed, "fuzzy", qualifier=qualifier)
        if not matches:
            return SearchResult("not_found", raw)
        best_key, best_score, _ = matches[0]
        runner_up = next((s for k, s, _ in matches[1:] if self._names(k) != self._names(best_key)), 0.0)
        if best_score >= CERTAIN_SCORE and best_score - runner_up >= CERTAIN_MARGIN:
            return self._result(raw, self._names(best_key), "fuzzy")
        towns: list[Municipality] = []
        for match_key, _score, _ in matches:
            for town in self._names(match_key):
                if town not in towns:
                    towns.append(town)
        return SearchResult("suggestions", raw, towns[:6], "fuzzy")


async def town_index(services: Services) -> TownIndex:
    async def build() -> TownIndex:
        return TownIndex(await MunicipalityRepository(services.db).all())

    return await services.cached(CACHE_KEY, build)


def reset_index(services: Services) -> None:
    """Forget the index (after a register import in this process)."""
    services.cache.pop(CACHE_KEY, None)


async def find_towns(services: Services, query: str) -> SearchResult:
    """Find the municipality ``query`` names: a name (forgiving), AGS, ARS or postcode."""
    return (await town_index(services)).search(query)
