"""Benchmark of the scheduling engine with 10,000 active schedules.

Prints, with no assertions:
- rebuild: the time to rebuild the agenda from the database at start (``Scheduling.load``);
- memory: resident memory the agenda adds (RSS before and after, and tracemalloc's count);
- punctuality: how long after its due time each occurrence is delivered (median, p99, max)
  while all 10,000 are active, on the real clock: 2,000 occurrences fall due over about 20 s.

Usage: ``.venv/bin/python bench/schedules.py [--schedules 10000] [--firing 2000]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil

from commands.context import Services, SystemClock
from commands.rhythm import parse_rhythm
from commands.scheduling import Occurrence, Scheduling
from config.settings import Settings
from storage.database import Database

RHYTHMS = [
    "alle 2 Wochen dienstags 10 Uhr",
    "wöchentlich montags 9:30",
    "monatlich am ersten Montag 9:30",
    "every 2 weeks thursday 14:00",
    "monthly on the last friday at 11:00",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(schedules: int, firing: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="kleinstadtbot-bench-"))
    db = await Database(folder / "bench.db").open()
    now = int(time.time())
    start = now + 5
    rows = []
    for i in range(schedules):
        rhythm = parse_rhythm(RHYTHMS[i % len(RHYTHMS)]).anchored(datetime.now(UTC).date())
        # the first ``firing`` are due over the next seconds, the rest in the coming weeks
        due = start + (i * 20) // firing if i < firing else now + 86_400 + i
        rows.append(
            ("checkin", f"tandem-{i}", rhythm.to_json(), "Europe/Berlin", due, json.dumps({}), now, now)
        )
    async with db.transaction() as conn:
        await conn.executemany(
            "INSERT INTO schedules (kind, subject, rhythm, timezone, next_due, data, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    del rows
    gc.collect()

    delays: list[float] = []
    all_fired = asyncio.Event()

    async def deliver(services: Services, occurrence: Occurrence) -> str | None:
        delays.append(time.time() - occurrence.due.timestamp())
        if len(delays) >= firing:
            all_fired.set()
        return None

    services = Services(settings=Settings(), db=db, matrix=None, clock=SystemClock())  # type: ignore[arg-type]
    process = psutil.Process(os.getpid())
    rss_before = process.memory_info().rss
    tracemalloc.start()
    engine = Scheduling(services, {"checkin": deliver})
    began = time.perf_counter()
    loaded = await engine.load()
    rebuild = time.perf_counter() - began
    traced = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    rss_after = process.memory_info().rss
    print(f"schedules: {loaded} active")
    print(f"rebuild at start: {rebuild * 1000:.1f} ms")
    print(f"agenda memory: {traced / 1e6:.2f} MB traced, RSS +{(rss_after - rss_before) / 1e6:.2f} MB")

    runner = asyncio.ensure_future(engine.run())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_fired.wait(), 60)
    await engine.stop()
    runner.cancel()
    await db.close()
    if not delays:
        print("no occurrence fired")
        return
    print(
        f"fired {len(delays)} of {firing} due while {loaded} were active: delay after due time"
        f" median {percentile(delays, 0.5) * 1000:.0f} ms, p99 {percentile(delays, 0.99) * 1000:.0f} ms,"
        f" max {max(delays) * 1000:.0f} ms"
    )
    print(f"RSS at the end: {process.memory_info().rss / 1e6:.1f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--schedules", type=int, default=10_000)
    parser.add_argument("--firing", type=int, default=2_000)
    args = parser.parse_args()
    asyncio.run(main(args.schedules, args.firing))
