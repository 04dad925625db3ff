"""Benchmark of the ``!berechtigt`` lookup: median and p99 per query, index memory.

Runs in-process over the shipped register with 1,000 mixed queries (exact names, umlaut
spellings, typos, ambiguous names, names with Kreis/Land, AGS, postcodes). Prints the figures;
no assertions. Usage: ``.venv/bin/python bench/eligible.py``
"""

from __future__ import annotations

import gc
import random
import statistics
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from commands.towns_search import TownIndex
from storage.municipalities import SHIPPED_CSV, parse_register_csv

KINDS = ["exact", "exact", "umlaut", "typo", "typo", "ambiguous", "narrowed", "ags", "plz", "lower"]


def typo(name: str, rng: random.Random) -> str:
    letters = [i for i in range(1, len(name) - 1) if name[i].isalpha() and name[i + 1].isalpha()]
    if not letters:
        return name + "e"
    i = rng.choice(letters)
    return (
        name[:i] + name[i + 1] + name[i] + name[i + 2 :] if rng.random() < 0.5 else name[:i] + name[i + 1 :]
    )


def queries(rows, rng: random.Random, n: int = 1000) -> list[tuple[str, str]]:
    counts = Counter(r.name for r in rows)
    unique = [r for r in rows if counts[r.name] == 1]
    shared = sorted({r.name for r in rows if counts[r.name] > 1})
    umlaut = [r for r in unique if any(c in r.name for c in "äöüß")]
    out: list[tuple[str, str]] = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        town = rng.choice(unique)
        if kind == "exact":
            out.append((kind, town.name))
        elif kind == "lower":
            out.append((kind, town.name.lower()))
        elif kind == "umlaut":
            t = rng.choice(umlaut).name
            out.append((kind, t.replace("ä", "ae").replace("ö", "oe").replace("ü", "ue").replace("ß", "ss")))
        elif kind == "typo":
            out.append((kind, typo(town.name, rng)))
        elif kind == "ambiguous":
            out.append((kind, rng.choice(shared)))
        elif kind == "narrowed":
            name = rng.choice(shared)
            pick = rng.choice([r for r in rows if r.name == name])
            out.append((kind, f"{name}, {pick.kreis}"))
        elif kind == "ags":
            out.append((kind, town.ags))
        else:
            out.append((kind, town.plz))
    return out


def main() -> None:
    text = SHIPPED_CSV.read_text(encoding="utf-8")
    gc.collect()
    tracemalloc.start()
    start = time.perf_counter()
    rows = parse_register_csv(text)
    index = TownIndex(rows)
    build = time.perf_counter() - start
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del text

    rng = random.Random(20261201)
    mixed = queries(rows, rng)
    for _kind, q in mixed[:50]:  # warm up
        index.search(q)
    times: dict[str, list[float]] = {}
    statuses: Counter = Counter()
    for kind, q in mixed:
        t0 = time.perf_counter_ns()
        result = index.search(q)
        times.setdefault(kind, []).append((time.perf_counter_ns() - t0) / 1e6)
        statuses[(kind, result.status)] += 1
    every = sorted(t for ts in times.values() for t in ts)

    def p99(values: list[float]) -> float:
        return sorted(values)[max(0, int(len(values) * 0.99) - 1)]

    print(f"register: {len(rows)} municipalities; index build {build * 1000:.0f} ms")
    print(
        f"index memory (tracemalloc, register rows included): {current / 1e6:.1f} MB "
        f"(peak while building {peak / 1e6:.1f} MB)"
    )
    print(
        f"{len(every)} mixed queries: median {statistics.median(every):.3f} ms, "
        f"p99 {p99(every):.3f} ms, max {every[-1]:.3f} ms"
    )
    for kind, ts in times.items():
        print(f"  {kind:10} n={len(ts):4} median {statistics.median(ts):.3f} ms  p99 {p99(ts):.3f} ms")
    print("outcomes:", ", ".join(f"{k}/{s}={n}" for (k, s), n in sorted(statuses.items())))


if __name__ == "__main__":
    main()
