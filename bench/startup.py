"""Start-up of kleinstadtbot joined to 1,000 rooms: seconds to the first answered command, memory.

One local Synapse; the bot's account is joined to ``--rooms`` rooms (created by a helper account,
joined with the bot's token through the client API). Then, in turns and ``--repeat`` times:

- bare nio: a bare nio AsyncClient as a subprocess (no sync filter; token login, first full
  sync, answers one command), on a fresh device with an empty store;
- cold: kleinstadtbot (``python -m bot.cli run``) on a fresh device with an empty database;
- warm: the same kleinstadtbot restarted on its database (persisted sync token).

Each measurement runs from just before the process is spawned until the driving client (already
syncing) receives the answer to ``!ping``, sent in a fresh direct room right after the spawn; the
process's CPU time until then is printed too (robust to other load on a shared machine).
``--rooms 0`` measures the start itself. ``--profile`` profiles a cold and a warm start (CPU
time, all threads) until the first answer.

    .venv/bin/python -m bench.startup [--rooms 1000] [--repeat 2] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    Driver,
    Homeserver,
    Proc,
    bot_process,
    echo_process,
    top,
    write_bot_config,
)
from bot.homeserver import Account
from bot.runtime import sync_filter
from config.settings import SyncSettings

WARM_TARGET_S = 2.0
MEMORY_TARGET_MB = 80.0


async def populate(hs: Homeserver, helper: Account, bot: Account, rooms: int, batch: int) -> float:
    """Create ``rooms`` rooms with the bot invited and join them as the bot, ``batch`` at a time."""
    started = time.perf_counter()
    gate = asyncio.Semaphore(batch)

    async def one() -> None:
        async with gate:
            room_id = await hs.create_room(helper, [bot.user_id])
            await hs.join(bot, room_id)

    done = 0
    for chunk in range(0, rooms, 100):
        await asyncio.gather(*(one() for _ in range(chunk, min(rooms, chunk + 100))))
        done = min(rooms, chunk + 100)
        print(f"  {done} rooms joined ({time.perf_counter() - started:.0f} s)", flush=True)
    return time.perf_counter() - started


async def sync_sizes(hs: Homeserver, account: Account) -> list[str]:
    """Size and server time of the syncs the two clients make at start (also warms Synapse)."""
    session = hs.session
    assert session is not None
    lines = []
    limit = SyncSettings().timeline_limit
    bot_filter, first_filter = json.dumps(sync_filter(limit)), json.dumps(sync_filter(limit, initial=True))

    async def fetch(label: str, params: dict) -> dict:
        started = time.perf_counter()
        async with session.get(
            f"{hs.url}/_matrix/client/v3/sync",
            params=params,
            headers={"Authorization": f"Bearer {account.access_token}"},
        ) as resp:
            raw = await resp.read()
        seconds = time.perf_counter() - started
        lines.append(f"  {label:<44} {len(raw) / 2**20:6.2f} MB in {seconds:5.2f} s")
        return json.loads(raw)

    await fetch("initial sync, no filter (warm-up)", {"timeout": "0"})
    await fetch("initial sync, no filter", {"timeout": "0"})
    await fetch("initial sync, bot's filter for later syncs", {"timeout": "0", "filter": bot_filter})
    first = await fetch("initial sync, bot's first-sync filter", {"timeout": "0", "filter": first_filter})
    await fetch(
        "since token + full_state, bot filter",
        {"timeout": "0", "filter": bot_filter, "since": first["next_batch"], "full_state": "true"},
    )
    await fetch(
        "since token, bot filter (warm start)",
        {"timeout": "0", "filter": bot_filter, "since": first["next_batch"]},
    )
    return lines


class Measure:
    def __init__(self, label: str):
        self.label = label
        self.seconds: list[float] = []
        self.ready: list[float] = []
        self.cpu: list[float] = []
        self.rss: list[float] = []
        self.rss_settled: list[float] = []
        self.peak: list[float] = []

    def row(self) -> str:
        def fmt(values: list[float], unit: str, digits: int = 2) -> str:
            if not values:
                return "-"
            each = ", ".join(f"{v:.{digits}f}" for v in values)
            return f"{statistics.median(values):.{digits}f} {unit} ({each})"

        return (
            f"{self.label:<14} first answer {fmt(self.seconds, 's')}\n"
            f"{'':<14} ready line   {fmt(self.ready, 's')}\n"
            f"{'':<14} CPU to answer {fmt(self.cpu, 's')}\n"
            f"{'':<14} RSS at answer {fmt(self.rss, 'MB', 1)}\n"
            f"{'':<14} RSS 3 s later {fmt(self.rss_settled, 'MB', 1)}, peak {fmt(self.peak, 'MB', 1)}"
        )


def until_answer(proc: Proc, out: Path) -> Proc:
    """The same process under cProfile until its first answer is sent
    (``bench/first_answer_profile.py``): what the first answer costs, not the run."""
    assert proc.argv[1:3] == ["-m", "bot.cli"]
    script = Path(__file__).resolve().with_name("first_answer_profile.py")
    proc.argv = [proc.argv[0], str(script), str(out), *proc.argv[3:]]
    return proc


async def first_answer(hs: Homeserver, driver: Driver, bot: Account, proc: Proc, measure: Measure) -> None:
    """Start ``proc``, send !ping in a fresh direct room at once, time the answer."""
    room = await hs.create_room(driver.account, [bot.user_id], direct=True)
    await hs.join(bot, room)
    await asyncio.sleep(0.5)  # the room's creation settles before the clock starts
    proc.start()
    event_id = await driver.send(room, "!ping")
    try:
        arrived = await driver.wait_answer(event_id, timeout=180)
    except TimeoutError:
        raise RuntimeError(f"{proc.name} did not answer:\n{proc.output()[-3000:]}") from None
    measure.seconds.append(arrived - proc.started)
    times = psutil.Process(proc.pid).cpu_times()
    measure.cpu.append(times.user + times.system)
    measure.rss.append(proc.rss_mb())
    ready = await proc.wait_ready()
    measure.ready.append(ready)
    await asyncio.sleep(3)
    measure.rss_settled.append(proc.rss_mb())
    measure.peak.append(proc.peak_mb() or 0)
    await proc.stop()


async def run(args: argparse.Namespace) -> int:
    data = Path(args.data or tempfile.mkdtemp(prefix="kleinstadtbot-bench-startup-"))
    print(f"data folder: {data}")
    async with Homeserver(data) as hs:
        state = data / "populated.json"  # with --data, a second run reuses the rooms
        saved = json.loads(state.read_text()) if state.exists() else {}
        if saved.get("rooms") == args.rooms:
            bot_account, helper, driver_account = (Account(**saved[k]) for k in ("bot", "helper", "driver"))
            populate_s = saved["seconds"]
            print(f"reusing {args.rooms} rooms in {data}")
        else:
            bot_account = await hs.register("bot")
            helper = await hs.register("roomhelper")
            driver_account = await hs.register("driver")
            print(f"creating and joining {args.rooms} rooms, {args.batch} in parallel ...")
            populate_s = await populate(hs, helper, bot_account, args.rooms, args.batch)
            state.write_text(
                json.dumps(
                    {
                        "rooms": args.rooms,
                        "seconds": populate_s,
                        "bot": asdict(bot_account),
                        "helper": asdict(helper),
                        "driver": asdict(driver_account),
                    }
                )
            )
        probe = await hs.new_device(bot_account, "probe")
        sizes = await sync_sizes(hs, probe)
        driver = await Driver(hs.url, driver_account).start()
        bare, cold, warm = Measure("bare nio"), Measure("cold"), Measure("warm")
        try:
            for rep in range(args.repeat):
                print(f"round {rep + 1} of {args.repeat} ...", flush=True)
                for folder in (f"bare-{rep}", f"bot-{rep}", "bot-profile"):  # cold means empty
                    shutil.rmtree(data / folder, ignore_errors=True)
                device = await hs.new_device(bot_account, f"bare-{rep}")
                since_ms = int(time.time() * 1000)
                proc = echo_process(
                    hs.url,
                    device,
                    data / f"bare-{rep}" / "store",
                    data / f"bare-{rep}.log",
                    since_ms=since_ms,
                )
                await first_answer(hs, driver, bot_account, proc, bare)

                device = await hs.new_device(bot_account, f"bot-{rep}")
                config = write_bot_config(data / f"bot-{rep}.yaml", hs.url, device, data / f"bot-{rep}")
                log = data / f"bot-{rep}.log"
                await first_answer(hs, driver, bot_account, bot_process(config, log), cold)
                await first_answer(hs, driver, bot_account, bot_process(config, log), warm)
            profiles = []
            if args.profile:
                print("profiling a cold and a warm start (cProfile; slower than the figures above) ...")
                device = await hs.new_device(bot_account, "bot-profile")
                config = write_bot_config(data / "bot-profile.yaml", hs.url, device, data / "bot-profile")
                for kind in ("cold", "warm"):
                    out = data / f"profile-{kind}.prof"
                    proc = until_answer(bot_process(config, data / "bot-profile.log"), out)
                    await first_answer(hs, driver, bot_account, proc, Measure(kind))
                    for _ in range(50):
                        if out.exists():
                            break
                        await asyncio.sleep(0.1)
                    profiles.append((kind, out))
        finally:
            await driver.close()

    print()
    print(
        f"Setup: {args.rooms} rooms created and joined in {populate_s:.0f} s; "
        "sync responses at start (fresh device):"
    )
    print("\n".join(sizes))
    print()
    print(
        f"Seconds from process start to the first answered !ping ({args.rooms + 1}+ rooms), "
        f"median of {args.repeat} (each run in brackets)"
    )
    for measure in (bare, cold, warm):
        print(measure.row())
    cold_s, bare_s, warm_s = (statistics.median(m.seconds) for m in (cold, bare, warm))
    memory = max(statistics.median(cold.rss_settled), statistics.median(warm.rss_settled))
    print()
    print(
        f"cold {cold_s:.2f} s vs bare nio {bare_s:.2f} s: ratio {cold_s / bare_s:.2f}x, "
        f"target cold < bare: {'OK' if cold_s < bare_s else 'MISSED'}"
    )
    print(
        f"warm {warm_s:.2f} s, target < {WARM_TARGET_S:.0f} s: {'OK' if warm_s < WARM_TARGET_S else 'MISSED'}"
    )
    print(
        f"memory (RSS 3 s after the answer) {memory:.1f} MB, target < {MEMORY_TARGET_MB:.0f} MB: "
        f"{'OK' if memory < MEMORY_TARGET_MB else 'MISSED'}"
    )
    for kind, path in profiles:
        if path.exists():
            print(f"\n--- cProfile, {kind} start, top by cumulative time ---")
            print(top(path, args.profile_lines))
    if not args.keep and not args.data:
        shutil.rmtree(data, ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rooms", type=int, default=1000, help="rooms the bot is joined to")
    parser.add_argument("--batch", type=int, default=20, help="room creations/joins in parallel")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of bare / cold / warm")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile a cold and a warm start, each until its first answer",
    )
    parser.add_argument("--profile-lines", type=int, default=30)
    parser.add_argument("--data", help="folder for Synapse and bot data (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
