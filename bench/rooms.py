"""Tandem rooms per second against a local Synapse, and pairing time for 2,000 profiled mayors.

Part 1 (needs Synapse from the ``demo``/``test`` extra): one local Synapse with raised rate
limits, kleinstadtbot running in-process (E2E off, see docs/tandems.md), 20 registered mayors
with profiles, and 100 ``!tandem anlegen`` commands handed straight to the dispatcher (no sync
round trip, so the figure is room setup alone: create with power levels and Space parent, Space
child, three invites, DB record, welcome and confirmation).

Part 2 (in-process, no Synapse): 2,000 profiles of real Kleinstädte from the register with two
or three topics each and 300 past tandems; ``suggest_pairs`` alone and the whole
``!tandem vorschlagen`` command (DB load, pairing, rendering) on the in-memory LocalMatrix.

    .venv/bin/python -m bench.rooms [--tandems 100] [--profiles 2000] [--skip-synapse]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import shutil
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Homeserver, summary
from bot.app import build_dispatcher, build_renderer
from bot.local import LocalMatrix
from commands.context import Reply, Request, Role
from commands.pairing import Candidate, suggest_pairs
from config.settings import Settings
from config.topics import default_topics
from storage.community import ProfileRepository, TandemRepository
from storage.database import Database
from storage.municipalities import MunicipalityRepository

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def ms(values: list[float]) -> str:
    s = summary(values)
    return (
        f"median {s['median'] * 1000:8.1f} ms   p90 {s['p90'] * 1000:8.1f} ms   "
        f"p99 {s['p99'] * 1000:8.1f} ms   (n={s['n']})"
    )


async def towns(db: Database, count: int, rng: random.Random) -> list:
    small = [t for t in await MunicipalityRepository(db).all() if 5_000 <= t.population < 20_000]
    return rng.sample(small, count)


async def add_profiles(db: Database, people: list[tuple[str, object]], rng: random.Random) -> None:
    repo = ProfileRepository(db)
    ids = [t.id for t in default_topics()]
    for user, town in people:
        await repo.set_town(
            user,
            ags=town.ags,
            town=town.name,
            kreis=town.kreis,
            land=town.land,
            population=town.population,
            now=NOW,
        )
        for topic in rng.sample(ids, rng.choice((2, 3))):
            await repo.add_topic(user, topic, NOW)


# --- part 1: tandem rooms on Synapse --------------------------------------------------------


async def bench_rooms(count: int, work: Path) -> None:
    from bot.runtime import KleinstadtBot

    async with Homeserver(work) as hs:
        bot_account = await hs.register("kleinstadtbot")
        coordinator = await hs.register("koordination")
        mayors = [await hs.register(f"mayor{i:02d}") for i in range(20)]
        settings = Settings(
            homeserver=hs.url,
            user_id=bot_account.user_id,
            access_token=bot_account.access_token.strip(),
            device_id=bot_account.device_id,
            database=work / "bot" / "bot.db",
            coordinators=[coordinator.user_id],
            encryption=False,
            tandem_encrypted=False,
            log_level="WARNING",
            rate_limit={"commands": 10_000, "window_seconds": 60},
        )
        bot = KleinstadtBot(settings)
        task = asyncio.ensure_future(bot.run())
        await asyncio.wait_for(bot.ready.wait(), 120)
        try:
            rng = random.Random(5)
            await add_profiles(
                bot.db,
                [(m.user_id, t) for m, t in zip(mayors, await towns(bot.db, len(mayors), rng), strict=True)],
                rng,
            )
            dm = await hs.create_room(coordinator, [bot_account.user_id], direct=True)
            for _ in range(200):
                if dm in bot.client.rooms:
                    break
                await asyncio.sleep(0.05)
            pairs = list(itertools.combinations([m.user_id for m in mayors], 2))
            rng.shuffle(pairs)
            timings: list[float] = []
            started = time.perf_counter()
            for n, (a, b) in enumerate(pairs[:count]):
                request = Request(
                    sender=coordinator.user_id,
                    room_id=dm,
                    event_id=f"$bench{n}",
                    body=f"!tandem anlegen {a} {b} Innenstadt",
                    is_direct=True,
                )

                async def send(reply: Reply, request: Request = request) -> str | None:
                    return await bot.matrix.send(reply, request)

                t0 = time.perf_counter()
                await bot.dispatcher.handle(request, send)
                timings.append(time.perf_counter() - t0)
            total = time.perf_counter() - started
            states = await bot.db.fetchall("SELECT state, count(*) FROM tandems GROUP BY state")
            print(f"tandem rooms on Synapse: {count} in {total:.1f} s = {count / total:.1f} rooms/s")
            print(f"  per tandem             {ms(timings)}")
            print(f"  records by state       {dict((r[0], r[1]) for r in states)}")
        finally:
            bot.request_stop()
            await asyncio.wait_for(task, 60)


# --- part 2: pairing ------------------------------------------------------------------------


async def bench_pairing(count: int, work: Path) -> None:
    settings = Settings(
        user_id="@kleinstadtbot:localhost",
        database=work / "pairing.db",
        coordinators=["@koordination:localhost"],
    )
    db = await Database(settings.database).open()
    try:
        rng = random.Random(2026)
        places = await towns(db, count, rng)
        people = [(f"@mayor{i:04d}:localhost", t) for i, t in enumerate(places)]
        await add_profiles(db, people, rng)
        tandems = TandemRepository(db)
        for i in range(300):  # history: 150 open, 150 ended
            (ua, ta), (ub, tb) = people[2 * i], people[2 * i + 1]
            tid = await tandems.start(
                user_a=ua,
                user_b=ub,
                ags_a=ta.ags,
                ags_b=tb.ags,
                town_a=ta.name,
                town_b=tb.name,
                kreis_a=ta.kreis,
                kreis_b=tb.kreis,
                topic_id="wohnen",
                topic_label="Wohnen",
                created_by="@koordination:localhost",
                now=NOW,
            )
            await tandems.set_state(tid, "active" if i % 2 else "ended", actor=None, now=NOW)
        profiles = await ProfileRepository(db).all_with_topics()
        candidates = [
            Candidate(p.user_id, p.ags, p.town, p.kreis, p.population, frozenset(p.topics)) for p in profiles
        ]
        active, past = await tandems.pairing_history()
        pure: list[float] = []
        for _ in range(20):
            t0 = time.perf_counter()
            found = suggest_pairs(candidates, active=active, past=past)
            pure.append(time.perf_counter() - t0)
        tracemalloc.start()
        suggest_pairs(candidates, active=active, past=past)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        matrix = LocalMatrix(settings.user_id, build_renderer(settings))

        async def role_of(user: str) -> Role:
            return Role.COORDINATOR if user in settings.coordinators else Role.MEMBER

        dispatcher = build_dispatcher(settings, db, matrix, role_of)
        command: list[float] = []
        for n in range(20):
            request = Request(
                sender="@koordination:localhost",
                room_id="!dm:localhost",
                event_id=f"$s{n}",
                body="!tandem vorschlagen",
                is_direct=True,
            )

            async def send(reply: Reply, request: Request = request) -> str | None:
                return await matrix.send(reply, request)

            t0 = time.perf_counter()
            await dispatcher.handle(request, send)
            command.append(time.perf_counter() - t0)
        print(
            f"pairing for {len(candidates)} profiled mayors ({len(found)} suggestions, "
            f"{len(active)} open (person, topic), {len(past)} past pair keys):"
        )
        print(f"  suggest_pairs          {ms(pure)}   peak {peak / 2**20:.1f} MiB")
        print(f"  !tandem vorschlagen    {ms(command)}")
    finally:
        await db.close()


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-rooms-"))
    try:
        await bench_pairing(args.profiles, work)
        if not args.skip_synapse:
            await bench_rooms(args.tandems, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.rooms")
    parser.add_argument("--tandems", type=int, default=100)
    parser.add_argument("--profiles", type=int, default=2000)
    parser.add_argument("--skip-synapse", action="store_true")
    asyncio.run(main(parser.parse_args()))
