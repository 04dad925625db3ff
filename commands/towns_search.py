"""Finding a German municipality however its name is typed.

``await find_towns(services, query)`` answers with a ``SearchResult``:

- ``exact``: one municipality (by name, AGS, ARS or the seat's postcode, or a certain typo fix);
- ``ambiguous``: several municipalities share the name (``Neuenkirchen``), or a postcode;
- ``suggestions``: close names, none certain ("Meinten Sie …");
- ``not_found``; ``number`` then says how a query of digits was read (``read_number``).

Names are compared in a canonical form: lower case, umlauts as ae/oe/ue, ß as ss, accents dropped,
punctuation as spaces, ``St.`` as ``sankt``, Destatis abbreviations and their long forms folded to
one form (``a.d.`` = ``an der``, ``i.`` = ``in``/``im``, ``b.`` = ``bei`` …), designations like
``Stadt`` or ``Hansestadt`` optional. A name is found

1. whole: the name as people write it or the register's, with or without its connectors
   ("Neustadt an der Aisch", "Neustadt Aisch", "Halle Saale" for "Halle (Saale)"), with an
   honorary part in front or behind ("Lutherstadt Eisleben" for "Eisleben, Lutherstadt");
2. narrowed by Kreis, Land or Regierungsbezirk ("Neustadt Holstein", "Altenberg, Sachsen");
3. after a designation in front that the register does not have ("Fontanestadt Neuruppin");
4. by one half of a double name ("Garmisch" for Garmisch-Partenkirchen), if no town has that name;
5. with typos ("Bad Berlebrug").

The index holds only what the search needs (name keys, and per town a few numbers in arrays), not
the register rows: those are read for the few towns of an answer. It is built once per process
(``services.cached``), in slices beside the sync loop right after start (``prepare_index``), so
the first answer does not wait for it; ``reset_index`` drops it after an import.
"""

from __future__ import annotations

import logging
import re
import sys
import unicodedata
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Literal

from commands.context import Services
from commands.parsing import is_digits, parse_number
from commands.registry import on_startup
from storage.database import Database
from storage.municipalities import Municipality, MunicipalityRepository

log = logging.getLogger(__name__)

CACHE_KEY = "towns_search.index"
Status = Literal["exact", "ambiguous", "suggestions", "not_found"]
MAX_QUERY_LENGTH = 100
CERTAIN_SCORE = 88.0  # a typo fix above this, clearly ahead of the next name, counts as found
SUGGEST_SCORE = 72.0
CERTAIN_MARGIN = 5.0
SLICE = 100  # register rows per slice when the index is built beside the sync loop (about 2 ms each)

# Connectors and articles, long and abbreviated, folded to one token each.
TOKEN_MAP = {
    "an": "a",
    "am": "a",
    "auf": "a",
    "der": "d",
    "den": "d",
    "dem": "d",
    "in": "i",
    "im": "i",
    "bei": "b",
    "beim": "b",
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
    "erzgeb": "erzgebirge",
    "oldb": "oldenburg",
}
CONNECTORS = {"a", "i", "b", "v", "o", "d"}
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
# Words in front of a name that designate rather than name: "Fontanestadt", "Ostseebad", "Kurort".
_DESIGNATION_ENDINGS = ("stadt", "bad", "gemeinde", "flecken", "kurort")
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
_PARTS = re.compile(r"[/(]")
_PUNCT = re.compile(r"[\s.,;:/()\[\]\-–—_'\"„“”‚‘!?*+&]+")


def fold(text: str) -> str:
    """Lower case, umlauts as ae/oe/ue, ß as ss, other accents dropped."""
    text = text.lower().replace("ä", "ae").replace("ö", "oe").replace("ü", "ue").replace("ß", "ss")
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if not unicodedata.combining(c))


def tokens(text: str) -> list[str]:
    """The canonical tokens of a name or query."""
    return [TOKEN_MAP.get(t, t) for t in _PUNCT.split(fold(text)) if t]


@lru_cache(maxsize=256)
def _tokens_cached(text: str) -> list[str]:
    """``tokens`` for the index build, which asks for the same name several times in a row
    (callers must not change the list)."""
    return tokens(text)


def normalize(text: str) -> str:
    return " ".join(tokens(text))


def _strip_designations(words: list[str]) -> list[str]:
    kept = [w for w in words if w not in DESIGNATIONS]
    return kept or words


def _without_connectors(words: list[str]) -> list[str]:
    """``neustadt a d aisch`` → ``neustadt aisch``, as in "Neustadt/Aisch" or "Halle (Saale)"."""
    kept = [w for w in words if w not in CONNECTORS]
    return kept or words


def _base_name(words: list[str]) -> list[str]:
    """The part before a connector or qualifier: ``neustadt a d donau`` → ``neustadt``."""
    for i, word in enumerate(words[1:], start=1):
        if word in CONNECTORS:
            return words[:i]
    return words


def _starts_each(short: list[str], words: list[str]) -> bool:
    """Whether ``words`` begin with ``short``, word by word, each short word a prefix."""
    return len(short) <= len(words) and all(w.startswith(s) for s, w in zip(short, words, strict=False))


@lru_cache(maxsize=32)
def _land_key(land: str) -> str:
    """A Land with its abbreviations, normalised: ``bayern by``."""
    return normalize(" ".join([land, *(a for a, name in LAND_ABBREVIATIONS.items() if name == land)]))


def _designation_word(word: str) -> bool:
    """``fontanestadt``, ``seebad``, ``kurort``: a word that designates rather than names."""
    if word in DESIGNATIONS or word in _DESIGNATION_ENDINGS:
        return True
    return any(word.endswith(ending) and len(word) >= len(ending) + 3 for ending in _DESIGNATION_ENDINGS)


# --- numbers -------------------------------------------------------------------------------------

NumberKind = Literal["ags", "ars", "plz", "count", "invalid"]
_POPULATION_WORDS = re.compile(
    r"\s*(einwohner(innen)?(\s+und\s+einwohner)?|einw\.?|ew|inhabitants|residents|people|menschen)\s*$",
    re.IGNORECASE,
)
# One kind of thousands separator per number: 18.400, 18,400 (English), 18 400, 18'400.
_SEPARATORS = (".", ",", " ", "'’")
_NUMBER_CHARACTERS = set("0123456789 .,'’")
MAX_COUNT_DIGITS = 6  # without separators: more digits are a key typed wrong, not inhabitants


@dataclass(frozen=True)
class NumberReading:
    """How a query of digits is read.

    - ``ags``: 8 digits, ``ars``: 12 digits (also in groups, "05 9 70 004");
    - ``plz``: 5 digits; ``value`` is the same digits as a number of inhabitants, if they can be one;
    - ``count``: inhabitants, ``value``: up to 6 digits, or grouped in threes with one kind of
      separator (``18.400``, ``18 400``, ``18,400``), or any of them followed by "Einwohner";
    - ``invalid``: ``problem`` says why: ``digits`` (not 0–9: "²", "١٢"), ``grouping`` (``1.2.3``,
      ``18,4``), ``length`` (7, 9–11 or more than 12 digits), ``leading_zero`` (``0500 Einwohner``).
    """

    kind: NumberKind
    digits: str = ""
    value: int | None = None
    problem: str = ""


def read_number(text: str) -> NumberReading | None:
    """The reading of a query made of digits (None if it is not one: it has letters or no digit)."""
    text = " ".join(text.split())  # also folds no-break and thin spaces into plain ones
    body = _POPULATION_WORDS.sub("", text)
    counted = body != text
    if not body or not any(c.isdigit() for c in body) or any(c.isalpha() for c in body):
        return None
    if any(c.isdigit() and not c.isascii() for c in body):
        return NumberReading("invalid", problem="digits")
    if not set(body) <= _NUMBER_CHARACTERS:
        return NumberReading("invalid", problem="grouping")
    digits = "".join(c for c in body if c.isdigit())
    if is_digits(body):
        if counted:
            return _count(digits)
        if len(body) == 5:
            return NumberReading("plz", digits, None if body.startswith("0") else int(body))
        if len(body) <= MAX_COUNT_DIGITS:
            return _count(digits)
        if len(body) in (8, 12):
            return NumberReading("ags" if len(body) == 8 else "ars", digits)
        return NumberReading("invalid", digits, problem="length")
    for separator in _SEPARATORS:
        value = parse_number(body, separator, max_digits=12)
        if value is not None:
            return _count(digits)
    if not counted and set(body) <= set("0123456789 ") and len(digits) in (8, 12):
        return NumberReading("ags" if len(digits) == 8 else "ars", digits)  # "05 9 70 004"
    return NumberReading("invalid", digits, problem="grouping")


def _count(digits: str) -> NumberReading:
    if len(digits) > 1 and digits.startswith("0"):
        return NumberReading("invalid", digits, problem="leading_zero")
    return NumberReading("count", digits, int(digits))


# --- the index -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchResult:
    status: Status
    query: str
    ags: list[str] = field(default_factory=list)  # the towns found, best first
    matched_by: str = ""  # name, ags, ars, plz, fuzzy
    qualifier: str = ""  # the Kreis/Land words that narrowed the name, if any
    number: NumberReading | None = None  # how a query of digits was read
    towns: list[Municipality] = field(default_factory=list)  # their register rows (find_towns)

    @property
    def town(self) -> Municipality | None:
        return self.towns[0] if self.status == "exact" and self.towns else None


Ids = int | tuple[int, ...]


class TownIndex:
    """In-memory lookup over the whole register (about 10,800 municipalities).

    Per town it keeps the AGS, population, postcode and the ids of its Kreis, Land, Bezirk and
    Gemeindeverband in arrays; names are dictionary keys. Towns are added one by one (``add``);
    ``finish`` then builds the sorted and fuzzy tables.
    """

    def __init__(self, towns: Iterable[Municipality] = ()):
        self._ags = array("I")
        self._population = array("I")
        self._plz = array("I")
        self._verband_code = array("H")  # the Gemeindeverband digits of the ARS
        self._kreis = array("H")  # ids into self._places
        self._land = array("H")
        self._bezirk = array("H")
        self._verband_name = array("H")
        self._verband = array("H")  # ids into the Verband tables (0: none)
        self._name: list[str] = []  # normalised name, also a key
        self._places: list[str] = [""]
        self._place_ids: dict[str, int] = {"": 0}
        self._verband_ids: dict[str, int] = {}
        self._verband_population: list[int] = [0]
        self._verband_members: list[int] = [0]
        self._building: dict[str, int] = {}  # raw place text → id, while towns are added
        self.primary: dict[str, Ids] = {}  # whole names: people's, official, with honorary parts
        self.secondary: dict[str, Ids] = {}  # base names and parts: "neustadt", "cottbus"
        self.short_forms: dict[str, Ids] = {}  # halves of double names: "garmisch"
        self._ags_sorted = array("I")
        self._by_ags = array("H")
        self._plz_sorted = array("I")
        self._by_plz = array("H")
        self._fuzzy_tables: tuple[dict[str, list[str]], dict[int, list[str]]] | None = None
        for town in towns:
            self.add(town)
        self.finish()

    def __len__(self) -> int:
        return len(self._ags)

    # --- building ------------------------------------------------------------------------------

    def _place(self, raw: str, label: Callable[[], str]) -> int:
        """The id of a Kreis, Land, Bezirk or Verband; ``label()`` is its text, asked once."""
        found = self._building.get(raw)
        if found is None:
            key = " ".join(_without_connectors(tokens(label())))
            found = self._place_ids.get(key)
            if found is None:
                found = self._place_ids[key] = len(self._places)
                self._places.append(key)
            self._building[raw] = found
        return found

    def add(self, town: Municipality) -> None:
        i = len(self._ags)
        self._ags.append(int(town.ags))
        self._population.append(town.population)
        self._plz.append(int(town.plz) if is_digits(town.plz) else 0)
        self._verband_code.append(int(town.ars[5:9]) if len(town.ars) == 12 else 0)
        self._kreis.append(
            self._place(f"k{town.kreis_type}|{town.kreis}", lambda: town.kreis_label or town.kreis)
        )
        self._land.append(self._place(f"l{town.land}", lambda: _land_key(town.land)))
        self._bezirk.append(self._place(f"b{town.regierungsbezirk}", lambda: town.regierungsbezirk))
        verband_raw = f"v{town.gemeindeverband_type}|{town.gemeindeverband}"
        self._verband_name.append(self._place(verband_raw, lambda: town.verband_label))
        verband = 0
        if town.in_verband and town.verband_key:
            verband = self._verband_ids.get(town.verband_key, 0)
            if not verband:
                verband = self._verband_ids[town.verband_key] = len(self._verband_population)
                self._verband_population.append(0)
                self._verband_members.append(0)
            self._verband_population[verband] += town.population
            self._verband_members[verband] += 1
        self._verband.append(verband)

        official = town.name_official.split(",", 1)[0].strip() or town.name
        tokens = _tokens_cached
        words = tokens(town.name)
        name = sys.intern(" ".join(words))  # one string object for the key and the list
        self._add(self.primary, name, i)
        self._name.append(name)
        variants = (town.name,) if official == town.name else (town.name, official)
        additions = town.additions
        if len(variants) == 1 and not additions and len(words) == 1:  # most towns: "Arkebek"
            return
        whole: set[str] = {name}
        for variant in variants:
            w = tokens(variant)
            for form in (w, _strip_designations(w)):
                whole.add(" ".join(form))
                whole.add(" ".join(_without_connectors(form)))
        for addition in additions:  # "Lutherstadt Eisleben", "Eisleben Lutherstadt"
            whole.add(normalize(f"{addition} {town.name}"))
            whole.add(normalize(f"{town.name} {addition}"))
        for key in whole:
            self._add(self.primary, key, i)
        # parts of "Cottbus/Chóśebuz", "Burg (Dithmarschen)", "Neustadt a.d.Donau", "Bad Berleburg"
        parts: set[str] = set()
        for variant in variants:
            for part in _PARTS.split(variant) if "/" in variant or "(" in variant else (variant,):
                w = tokens(part)
                if not w:
                    continue
                stem = _base_name(w)
                parts.update((" ".join(w), " ".join(_without_connectors(w)), " ".join(stem)))
                if stem[0] == "bad" and len(stem) > 1:
                    parts.add(" ".join(stem[1:]))
        base = " ".join(_base_name(words))
        for addition in additions:  # "Kupferstadt Stolberg" for "Stolberg (Rhld.), Kupferstadt"
            parts.add(normalize(f"{addition} {base}"))
        for key in parts - whole:
            self._add(self.secondary, key, i)
        # halves of a double name: "Garmisch-Partenkirchen", "Villingen-Schwenningen"
        first = _PARTS.split(town.name, maxsplit=1)[0]
        if "-" in first:
            for half in first.split("-"):
                key = normalize(half)
                if len(key) >= 4 and key not in whole and key not in parts:
                    self._add(self.short_forms, key, i)

    @staticmethod
    def _add(table: dict[str, Ids], key: str, i: int) -> None:
        found = table.get(key)
        if found is None:
            table[key] = i
        elif isinstance(found, int):
            if found != i:
                table[key] = (found, i)
        elif i not in found:
            table[key] = (*found, i)

    def finish(self) -> None:
        """Sorted tables for numbers and the buckets for typo search; after the last ``add``."""
        self._building = {}
        order = sorted(range(len(self._ags)), key=self._ags.__getitem__)
        self._by_ags = array("H", order)
        self._ags_sorted = array("I", (self._ags[i] for i in order))
        order = sorted(range(len(self._plz)), key=self._plz.__getitem__)
        self._by_plz = array("H", order)
        self._plz_sorted = array("I", (self._plz[i] for i in order))
        self._fuzzy_tables = None  # built by the first typo search

    def _typo_tables(self) -> tuple[dict[str, list[str]], dict[int, list[str]]]:
        """Every name key by first letter and by length, for typo search. Built on first use, like
        the rapidfuzz import it goes with: most answers never need them."""
        if self._fuzzy_tables is None:
            by_letter: dict[str, list[str]] = {}
            by_length: dict[int, list[str]] = {}
            for key in dict.fromkeys([*self.primary, *self.secondary, *self.short_forms]):
                by_letter.setdefault(key[:1], []).append(key)
                by_length.setdefault(len(key), []).append(key)
            self._fuzzy_tables = (by_letter, by_length)
        return self._fuzzy_tables

    # --- per town ------------------------------------------------------------------------------

    def ags_of(self, i: int) -> str:
        return f"{self._ags[i]:08d}"

    def _find_ags(self, digits: str) -> int | None:
        value = int(digits)
        at = bisect_left(self._ags_sorted, value)
        if at < len(self._ags_sorted) and self._ags_sorted[at] == value:
            return self._by_ags[at]
        return None

    def has_ags(self, ags: str) -> bool:
        return is_digits(ags) and len(ags) == 8 and self._find_ags(ags) is not None

    def verband(self, town: Municipality) -> tuple[int, int] | None:
        """Combined population and member count of the town's Gemeindeverband, if it has one."""
        verband = self._verband_ids.get(town.verband_key) if town.in_verband else None
        if not verband:
            return None
        return self._verband_population[verband], self._verband_members[verband]

    def largest(self) -> tuple[str, int]:
        """AGS and population of the most populous municipality."""
        i = max(range(len(self._population)), key=self._population.__getitem__)
        return self.ags_of(i), self._population[i]

    def _qualifiers(self, i: int) -> str:
        """Normalised Kreis, Land (and its abbreviations), Bezirk, name and Verband of town ``i``."""
        places = (self._kreis[i], self._land[i], self._bezirk[i], self._verband_name[i])
        name = " ".join(_without_connectors(self._name[i].split()))
        return f" {' '.join(self._places[p] for p in places if p)} {name} "

    # --- lookups -------------------------------------------------------------------------------

    @staticmethod
    def _ids(table: dict[str, Ids], key: str) -> tuple[int, ...]:
        found = table.get(key)
        if found is None:
            return ()
        return (found,) if isinstance(found, int) else found

    def _names(self, key: str) -> list[int]:
        found = list(self._ids(self.primary, key))
        found += [i for i in self._ids(self.secondary, key) if i not in found]
        return found

    def _any_names(self, key: str) -> list[int]:
        return self._names(key) or list(self._ids(self.short_forms, key))

    def _extract(
        self, key: str, cutoff: float, limit: int, fallback: bool = True
    ) -> list[tuple[str, float, int]]:
        """Fuzzy matches among names with the same first letter; if none is certain, among all
        names of about the same length (a typo changes the length by one or two)."""
        from rapidfuzz import fuzz, process  # imported on first use: 3 MB start-up does not need

        by_letter, by_length = self._typo_tables()
        bucket = by_letter.get(key[:1], [])
        found = process.extract(key, bucket, scorer=fuzz.ratio, limit=limit, score_cutoff=cutoff)
        if fallback and (not found or found[0][1] < CERTAIN_SCORE):
            near: list[str] = []
            for length in range(len(key) - 2, len(key) + 3):
                near += by_length.get(length, ())
            more = process.extract(key, near, scorer=fuzz.ratio, limit=limit, score_cutoff=cutoff)
            merged = {k: sc for k, sc, _ in found}
            for k, sc, _ in more:
                merged[k] = max(sc, merged.get(k, 0.0))
            found = sorted(((k, sc, 0) for k, sc in merged.items()), key=lambda m: -m[1])[:limit]
        return found

    def _narrow(self, towns: list[int], qualifier: str) -> list[int]:
        words = [w for w in tokens(qualifier) if w not in CONNECTORS and w not in DESIGNATIONS]
        if not words:
            return []
        land = LAND_ABBREVIATIONS.get(words[0]) if len(words) == 1 else None
        if land:
            wanted = self._place_ids.get(" ".join(_without_connectors(_land_key(land).split())))
            return [i for i in towns if self._land[i] == wanted]
        needle = " ".join(words)
        # initials of the name's own qualifier: "Rothenburg o.d.T." for "… ob der Tauber"
        initials = [i for i in towns if _starts_each(words, _without_connectors(self._name[i].split())[1:])]
        if initials or len(needle) < 3:
            return initials
        hits = [i for i in towns if needle in self._qualifiers(i)]
        if hits:
            return hits
        from rapidfuzz import fuzz

        return [i for i in towns if fuzz.partial_ratio(needle, self._qualifiers(i)) >= 88]

    def search(self, query: str) -> SearchResult:
        raw = " ".join(query.split())
        if not raw or len(raw) > MAX_QUERY_LENGTH:
            return SearchResult("not_found", raw)
        number = read_number(raw)
        if number is not None:
            return self._by_number(raw, number)
        words = tokens(raw)
        if not words:
            return SearchResult("not_found", raw)
        stripped = _strip_designations(words)
        # 1. the whole query is a name (with or without designations and connectors)
        for candidate in (words, stripped, _without_connectors(words), _without_connectors(stripped)):
            found = self._names(" ".join(candidate))
            if found:
                return self._result(raw, found, "name")
        # 2. a name followed by a Kreis/Land ("Neustadt Holstein", "Altenberg, Sachsen")
        parts = [p for p in re.split(r"\s*,\s*", raw, maxsplit=1) if p]
        splits: list[tuple[list[str], str]] = []
        if len(parts) == 2:
            splits.append((_strip_designations(tokens(parts[0])), parts[1]))
        for cut in range(len(stripped) - 1, 0, -1):
            splits.append((stripped[:cut], " ".join(stripped[cut:])))
        for name_words, qualifier in splits:
            found = self._any_names(" ".join(name_words))
            if found:
                narrowed = self._narrow(found, qualifier)
                if narrowed:
                    return self._result(raw, narrowed, "name", qualifier=qualifier)
        # 3. a designation in front that the register does not have ("Fontanestadt Neuruppin")
        if len(stripped) > 1 and _designation_word(stripped[0]):
            found = self._names(" ".join(stripped[1:]))
            if found:
                return self._result(raw, found, "name")
        # 4. one half of a double name ("Garmisch"), when no town has that name
        found = list(self._ids(self.short_forms, " ".join(stripped)))
        if found:
            return self._result(raw, found, "name")
        # 5. typos
        return self._fuzzy(raw, " ".join(stripped), splits)

    def _by_number(self, raw: str, number: NumberReading) -> SearchResult:
        found: list[int] = []
        if number.kind == "ags":
            i = self._find_ags(number.digits)
            found = [i] if i is not None else []
        elif number.kind == "ars":
            i = self._find_ags(number.digits[:5] + number.digits[9:])
            if i is not None and self._verband_code[i] == int(number.digits[5:9]):
                found = [i]
        elif number.kind == "plz":
            value = int(number.digits)
            at = bisect_left(self._plz_sorted, value)
            while at < len(self._plz_sorted) and self._plz_sorted[at] == value:
                found.append(self._by_plz[at])
                at += 1
        if not found:
            return SearchResult("not_found", raw, number=number)
        return self._result(raw, found, number.kind, number=number)

    def _result(
        self,
        raw: str,
        towns: list[int],
        how: str,
        qualifier: str = "",
        number: NumberReading | None = None,
    ) -> SearchResult:
        towns = sorted(towns, key=lambda i: -self._population[i])
        status: Status = "exact" if len(towns) == 1 else "ambiguous"
        return SearchResult(status, raw, [self.ags_of(i) for i in towns], how, qualifier, number)

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
                    narrowed = self._narrow(self._any_names(best[0][0]), qualifier)
                    if narrowed:
                        return self._result(raw, narrowed, "fuzzy", qualifier=qualifier)
        if not matches:
            return SearchResult("not_found", raw)
        best_key, best_score, _ = matches[0]
        closest = self._any_names(best_key)
        runner_up = next((s for k, s, _ in matches[1:] if self._any_names(k) != closest), 0.0)
        if best_score >= CERTAIN_SCORE and best_score - runner_up >= CERTAIN_MARGIN:
            return self._result(raw, closest, "fuzzy")
        towns: list[int] = []
        for match_key, _score, _ in matches:
            for i in self._any_names(match_key):
                if i not in towns:
                    towns.append(i)
        return SearchResult("suggestions", raw, [self.ags_of(i) for i in towns[:6]], "fuzzy")


async def build_index(db: Database) -> TownIndex:
    """The index from the register in the database, read and added in slices of ``SLICE`` rows:
    between slices the event loop serves other work (the sync loop, answers), and no more than
    one slice of rows is held at a time."""
    repo = MunicipalityRepository(db)
    index = TownIndex()
    after = ""
    while rows := await repo.page(after, SLICE):
        for town in rows:
            index.add(town)
        after = rows[-1].ags
    index.finish()
    return index


async def town_index(services: Services) -> TownIndex:
    async def build() -> TownIndex:
        return await build_index(services.db)

    return await services.cached(CACHE_KEY, build)


@on_startup
async def prepare_index(services: Services) -> None:
    """Build the index right after start, beside the sync loop, so the first ``!berechtigt``
    does not wait for it (a command that comes in meanwhile shares this build)."""
    index = await town_index(services)
    log.info("town index ready: %d municipalities", len(index))


def reset_index(services: Services) -> None:
    """Forget the index (after a register import in this process)."""
    services.cache.pop(CACHE_KEY, None)


async def find_towns(services: Services, query: str) -> SearchResult:
    """Find the municipality ``query`` names: a name (forgiving), AGS, ARS or postcode."""
    result = (await town_index(services)).search(query)
    if not result.ags:
        return result
    return replace(result, towns=await MunicipalityRepository(services.db).get_many(result.ags))
