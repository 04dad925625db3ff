"""Pure pairing rules for ``!tandem suggest``: who could form a good tandem, and why.

Rules (from the academy's wish for exchange free of competition):
- both people share the topic and have no open tandem on it yet;
- never two towns of the same Kreis (neighbours compete);
- never a pair (of people or of towns) that already had a tandem;
- prefer towns of a similar size band;
- everyone appears in at most one suggestion per run.

No I/O: the handler loads profiles and tandem history and passes plain values in.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

# BBSR city and municipality types by population (see docs/tandems.md).
SIZE_BANDS: tuple[tuple[int, str], ...] = (
    (5_000, "landgemeinde"),
    (10_000, "kleine_kleinstadt"),
    (20_000, "groessere_kleinstadt"),
    (50_000, "mittelstadt"),
    (100_000, "groessere_mittelstadt"),
)
LARGEST_BAND = "grossstadt"
PER_PERSON = 8  # alternatives kept per person and topic before the global choice
BAND_ORDER = [name for _, name in SIZE_BANDS] + [LARGEST_BAND]


def size_band(population: int | None) -> str | None:
    if population is None:
        return None
    for limit, name in SIZE_BANDS:
        if population < limit:
            return name
    return LARGEST_BAND


@dataclass(frozen=True)
class Candidate:
    user_id: str
    ags: str
    town: str
    kreis: str
    population: int | None
    topics: frozenset[str]

    @property
    def band(self) -> str | None:
        return size_band(self.population)


@dataclass(frozen=True)
class Reason:
    """One reason for a suggestion; ``code`` picks the sentence in the template."""

    code: str  # shared_topic | same_band | near_band | different_kreis | never_paired | also_shared
    data: dict


@dataclass(frozen=True)
class Suggestion:
    a: Candidate
    b: Candidate
    topic: str
    band_distance: int
    reasons: tuple[Reason, ...]


def _band_index(candidate: Candidate) -> int | None:
    band = candidate.band
    return BAND_ORDER.index(band) if band else None


def _allowed(a: Candidate, b: Candidate, past: set[frozenset[str]]) -> bool:
    if a.user_id == b.user_id or a.ags == b.ags:
        return False
    if a.kreis and a.kreis == b.kreis:
        return False
    if frozenset((a.user_id, b.user_id)) in past:
        return False
    return frozenset(("ags:" + a.ags, "ags:" + b.ags)) not in past


def _reasons(a: Candidate, b: Candidate, topic: str, distance: int) -> tuple[Reason, ...]:
    reasons = [Reason("shared_topic", {"topic": topic})]
    if a.band is not None and b.band is not None:
        code = "same_band" if distance == 0 else "near_band"
        reasons.append(
            Reason(
                code,
                {
                    "band_a": a.band,
                    "band_b": b.band,
                    "population_a": a.population,
                    "population_b": b.population,
                },
            )
        )
    reasons.append(Reason("different_kreis", {"kreis_a": a.kreis, "kreis_b": b.kreis}))
    reasons.append(Reason("never_paired", {}))
    also = sorted((a.topics & b.topics) - {topic})
    if also:
        reasons.append(Reason("also_shared", {"topics": also}))
    return tuple(reasons)


def suggest_pairs(
    candidates: Iterable[Candidate],
    *,
    active: set[tuple[str, str]],
    past: set[frozenset[str]],
    topic: str | None = None,
    limit: int = 10,
    max_band_distance: int = 2,
) -> list[Suggestion]:
    """Up to ``limit`` suggestions, best first.

    ``active``: (user_id, topic) pairs with an open tandem; ``past``: frozensets of two user IDs
    or of two ``"ags:<AGS>"`` keys that already had a tandem. Greedy: per topic, people are
    matched to the nearest size band first, then with more shared topics; each person at most
    once. Runs in about O(n · band size) per topic, fine for thousands of profiles.
    """
    people = sorted(candidates, key=lambda c: c.user_id)
    by_topic: dict[str, list[Candidate]] = defaultdict(list)
    for person in people:
        for t in person.topics:
            if (topic is None or t == topic) and (person.user_id, t) not in active:
                by_topic[t].append(person)

    # Pass 1 collects up to PER_PERSON options per person and topic, nearest band first.
    options: list[tuple[int, int, str, str, str]] = []  # (distance, -also, topic, user_a, user_b)
    index = {p.user_id: p for p in people}
    for t, group in by_topic.items():
        bands: dict[int | None, list[Candidate]] = defaultdict(list)
        for person in group:  # group is sorted by user ID, so is every band
            bands[_band_index(person)].append(person)
        keys = {band: [p.user_id for p in members] for band, members in bands.items()}
        for person in group:
            mine = _band_index(person)
            found = 0
            for distance in range(max_band_distance + 1):
                near: list[int | None]
                if mine is None:
                    near = [None] if distance == 0 else []
                else:
                    near = [mine - distance, mine + distance] if distance else [mine]
                for band in near:
                    pool = bands.get(band, [])
                    # each pair once: only partners with a larger user ID (same band), else all
                    start = bisect_right(keys[band], person.user_id) if distance == 0 and pool else 0
                    for other in pool[start:]:
                        if found >= PER_PERSON:
                            break
                        if not _allowed(person, other, past):
                            continue
                        also = len(person.topics & other.topics) - 1
                        pair = sorted((person.user_id, other.user_id))
                        options.append((distance, -also, t, pair[0], pair[1]))
                        found += 1
    options = sorted(set(options))
    used: set[str] = set()
    chosen: list[Suggestion] = []
    for distance, _also, t, ua, ub in options:
        if ua in used or ub in used:
            continue
        a, b = index[ua], index[ub]
        used.update((ua, ub))
        chosen.append(Suggestion(a, b, t, distance, _reasons(a, b, t, distance)))
        if len(chosen) >= limit:
            break
    return chosen
