"""Benchmark of ``!berechtigt``: the town lookup, the town-name evaluation, the first answer.

Three parts; prints figures, asserts nothing.

1. Lookup (in-process, shipped register): index build time, index memory (tracemalloc), and
   median/p99 of 1,000 mixed queries (exact names, umlaut spellings, typos, ambiguous names,
   names with Kreis/Land, AGS, postcodes).
2. Name evaluation: the town names of ``tests/town_queries.py`` (written as people write them),
   tuning half and held-out half reported separately: right town directly, right town first in
   the list, a wrong town answered as certain.
3. First answer in-process: new bots (no homeserver) run the start-up hooks, then answer their
   first and second ``!berechtigt``; wall-clock and CPU time.
4. ``--first-answer`` (needs Synapse, about two minutes): kleinstadtbot as a separate process
   against a local Synapse, restarted ``--starts`` times on its database. Each start measures the
   time to the "ready" log line, the round trip of the first ``!berechtigt`` (sent the moment the
   bot is ready, or two seconds later, alternating), ten later ones, and the resident memory.

Usage: ``.venv/bin/python bench/eligible.py [--first-answer] [--starts 6]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import random
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from commands.towns_search import TownIndex
from storage.municipalities import SHIPPED_CSV, Municipality, parse_register_csv
from tests.town_queries import HELD_OUT, TUNING

KINDS = ["exact", "exact", "umlaut", "typo", "typo", "ambiguous", "narrowed", "ags", "plz", "lower"]
LATER_QUERIES = [
    "Wittenberge",
    "Mölln",
    "Dießen am Ammersee",
    "Arkebek",
    "Neuenkirchen",
    "Bad Tölz",
    "Zwönitz",
    "Demmin",
    "Schlüchtern",
    "05970004",
]


def typo(name: str, rng: random.Random) -> str:
    letters = [i for i in range(1, len(name) - 1) if name[i].isalpha() and name[i + 1].isalpha()]
    if not letters:
        return name + "e"
    i = rng.choice(letters)
    return (
        name[:i] + name[i + 1] + name[i] + name[i + 2 :] if rng.random() < 0.5 else name[:i] + name[i + 1 :]
    )


def queries(rows: list[Municipality], rng: random.Random, n: int = 1000) -> list[tuple[str, str]]:
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


def p99(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.99) - 1)]


def lookup(rows: list[Municipality]) -> TownIndex:
    builds, cpu_builds = [], []
    for _ in range(3):
        gc.collect()
        start, cpu = time.perf_counter(), time.process_time()
        index = TownIndex(rows)
        builds.append(time.perf_counter() - start)
        cpu_builds.append(time.process_time() - cpu)
    gc.collect()
    tracemalloc.start()
    traced = TownIndex(rows)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del traced

    rng = random.Random(20261201)
    mixed = queries(rows, rng)
    for _kind, q in mixed[:50]:  # warm up
        index.search(q)
    times: dict[str, list[float]] = {}
    cpu_times: list[float] = []
    statuses: Counter[tuple[str, str]] = Counter()
    for kind, q in mixed:
        t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        result = index.search(q)
        cpu_times.append((time.thread_time_ns() - c0) / 1e6)
        times.setdefault(kind, []).append((time.perf_counter_ns() - t0) / 1e6)
        statuses[(kind, result.status)] += 1
    every = sorted(t for ts in times.values() for t in ts)

    print(f"register: {len(rows)} municipalities")
    print(
        f"index build (from parsed rows, best of 3): {min(builds) * 1000:.0f} ms, "
        f"CPU time {min(cpu_builds) * 1000:.0f} ms"
    )
    print(
        f"index memory (tracemalloc, without the register rows): {current / 1e6:.1f} MB "
        f"(peak while building {peak / 1e6:.1f} MB)"
    )
    print(
        f"{len(every)} mixed queries: median {statistics.median(every):.3f} ms, "
        f"p99 {p99(every):.3f} ms, max {every[-1]:.3f} ms"
    )
    print(
        f"  the same in CPU time (not inflated by other processes): median "
        f"{statistics.median(cpu_times):.3f} ms, p99 {p99(cpu_times):.3f} ms"
    )
    for kind, ts in times.items():
        print(f"  {kind:10} n={len(ts):4} median {statistics.median(ts):.3f} ms  p99 {p99(ts):.3f} ms")
    print("outcomes:", ", ".join(f"{k}/{s}={n}" for (k, s), n in sorted(statuses.items())))
    return index


def grade(index: TownIndex, query: str, ags: str) -> str:
    """direct: the answer is that town; first: a list with it first; listed: further down;
    wrong: another town answered as certain; missed: not offered at all."""
    found = index.search(query)
    got = list(found.ags)
    if found.status == "exact":
        return "direct" if got[:1] == [ags] else "wrong"
    if got[:1] == [ags]:
        return "first"
    return "listed" if ags in got else "missed"


def name_evaluation(index: TownIndex, verbose: bool) -> None:
    print()
    print("Town names as people write them (tests/town_queries.py):")
    for label, cases in (("tuning", TUNING), ("held-out", HELD_OUT)):
        grades: Counter[str] = Counter()
        misses = []
        for query, ags in cases:
            outcome = grade(index, query, ags)
            grades[outcome] += 1
            if outcome not in ("direct", "first"):
                misses.append(f"{outcome}: {query}")
        n = len(cases)
        print(
            f"  {label:8} n={n:3}  directly {grades['direct'] / n:6.1%}  directly or first in the list "
            f"{(grades['direct'] + grades['first']) / n:6.1%}  further down {grades['listed']}  "
            f"not offered {grades['missed']}  wrong town as certain {grades['wrong']}"
        )
        if verbose and label == "tuning":  # never print the held-out misses: nobody tunes on them
            for line in misses:
                print(f"      {line}")


# --- first answer after a start ----------------------------------------------------------------


async def local_first_answer(rounds: int) -> None:
    """In-process, no homeserver: a new bot on a migrated database runs the start-up hooks as the
    runtime does after its first sync, then answers its first and second ``!berechtigt``. CPU
    time (all threads of the process) is not inflated by other processes on the machine."""
    from commands.registry import REGISTRY
    from tests.local_bot import make_local_bot

    first_wall: list[float] = []
    first_cpu: list[float] = []
    second_wall: list[float] = []
    second_cpu: list[float] = []
    hooks_cpu: list[float] = []
    for _ in range(rounds):
        folder = Path(tempfile.mkdtemp(prefix="kleinstadtbot-bench-local-"))
        bot = await make_local_bot(folder)
        try:
            await bot.text("!ping")  # the dispatcher and the renderer are warm
            cpu = time.process_time()
            for hook in REGISTRY.startup:
                with contextlib.suppress(Exception):  # as the runtime: some need a homeserver
                    await hook(bot.services)
            hooks_cpu.append(time.process_time() - cpu)
            for query, walls, cpus in (
                ("Bad Berleburg", first_wall, first_cpu),
                ("Wittenberge", second_wall, second_cpu),
            ):
                wall, cpu = time.perf_counter(), time.process_time()
                await bot.text(f"!berechtigt {query}")
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
        finally:
            await bot.db.close()
            shutil.rmtree(folder, ignore_errors=True)
    print()
    print(f"First answer in-process (no homeserver, {rounds} new bots, medians):")
    print(f"  start-up hooks: CPU {statistics.median(hooks_cpu) * 1000:.0f} ms")
    print(
        f"  first !berechtigt: {statistics.median(first_wall) * 1000:.0f} ms, "
        f"CPU {statistics.median(first_cpu) * 1000:.0f} ms"
    )
    print(
        f"  second !berechtigt: {statistics.median(second_wall) * 1000:.0f} ms, "
        f"CPU {statistics.median(second_cpu) * 1000:.0f} ms"
    )


# --- first answer after a start (Synapse) ---------------------------------------------------


async def first_answer(args: argparse.Namespace) -> None:
    from bench.common import Driver, Homeserver, bot_process, summary, write_bot_config

    data = Path(args.data or tempfile.mkdtemp(prefix="kleinstadtbot-bench-eligible-"))
    print()
    print(f"First answer after a start (data folder {data})")
    ready: list[float] = []
    at_ready: list[float] = []
    settled: list[float] = []
    later: list[float] = []
    rss_start: list[float] = []
    rss_after: list[float] = []
    async with Homeserver(data) as hs:
        bot_account = await hs.register("bot")
        driver_account = await hs.register("driver")
        room = await hs.create_room(driver_account, [bot_account.user_id], direct=True)
        await hs.join(bot_account, room)
        config = write_bot_config(data / "bot.yaml", hs.url, bot_account, data / "bot")
        driver = await Driver(hs.url, driver_account).start()
        try:
            # a first start loads the register into the new database; not measured
            proc = bot_process(config, data / "bot.log").start()
            await proc.wait_ready()
            await driver.round_trip(room, "!ping")
            await proc.stop()
            for start in range(args.starts):
                proc = bot_process(config, data / "bot.log").start()
                ready.append(await proc.wait_ready())
                wait = start % 2 == 1
                if wait:
                    await asyncio.sleep(2)
                    rss_start.append(proc.rss_mb())
                took = await driver.round_trip(room, "!berechtigt Bad Berleburg")
                (settled if wait else at_ready).append(took)
                for query in LATER_QUERIES:
                    later.append(await driver.round_trip(room, f"!berechtigt {query}"))
                await asyncio.sleep(1)
                rss_after.append(proc.rss_mb())
                await proc.stop()
        finally:
            await driver.close()
    if not args.keep and not args.data:
        shutil.rmtree(data, ignore_errors=True)

    def ms(values: list[float]) -> str:
        s = summary(values)
        low, high = min(values) * 1000, max(values) * 1000
        return f"median {s['median'] * 1000:6.0f} ms  (min {low:.0f}, max {high:.0f}, n={len(values)})"

    print(f"  start to ready (warm restart):           {ms(ready)}")
    print(f"  first !berechtigt, sent at ready:        {ms(at_ready)}")
    print(f"  first !berechtigt, sent 2 s after ready: {ms(settled)}")
    s = summary(later)
    print(
        f"  later !berechtigt:                       median {s['median'] * 1000:6.0f} ms  "
        f"p90 {s['p90'] * 1000:.0f} ms  (n={len(later)})"
    )
    print(
        f"  RSS 2 s after ready {statistics.median(rss_start):.1f} MB; after eleven answers "
        f"{statistics.median(rss_after):.1f} MB (medians)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--first-answer", action="store_true", help="also measure through Synapse")
    parser.add_argument("--starts", type=int, default=6, help="restarts measured with --first-answer")
    parser.add_argument("--misses", action="store_true", help="list the tuning half's misses")
    parser.add_argument(
        "--local-rounds", type=int, default=5, help="new bots for the in-process first answer"
    )
    parser.add_argument("--no-lookup", action="store_true", help="skip parts 1 and 2")
    parser.add_argument("--data", help="folder for Synapse and bot data (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    args = parser.parse_args()
    if not args.no_lookup:
        rows = parse_register_csv(SHIPPED_CSV.read_text(encoding="utf-8"))
        index = lookup(rows)
        name_evaluation(index, args.misses)
    asyncio.run(local_first_answer(args.local_rounds))
    if args.first_answer:
        asyncio.run(first_answer(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
