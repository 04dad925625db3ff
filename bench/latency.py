"""Round trip of ``!ping`` through kleinstadtbot against the floor of any nio bot, plus memory.

One local Synapse, one driving client, two processes under test started the same way:
kleinstadtbot (``python -m bot.cli run``) and a minimal nio echo client (``bench.common echo``),
each alone in its own direct room with the driver. Round trips alternate between the two (and
the order flips every pair) so drift on the machine hits both alike.

    .venv/bin/python -m bench.latency [--rounds 200] [--warmup 20] [--commands 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    SYNC_TIMEOUT_MS,
    Driver,
    Homeserver,
    Proc,
    bot_process,
    echo_process,
    profiled,
    summary,
    top,
    write_bot_config,
)

TARGET_RATIO = 1.10


def cpu_seconds(proc: Proc) -> float:
    """CPU time (user + system) the process has used so far."""
    times = psutil.Process(proc.pid).cpu_times()
    return times.user + times.system


def line(label: str, values: list[float]) -> str:
    s = summary(values)
    return (
        f"{label:<15} median {s['median'] * 1000:7.1f} ms   p90 {s['p90'] * 1000:7.1f} ms   "
        f"p99 {s['p99'] * 1000:7.1f} ms   mean {s['mean'] * 1000:7.1f} ms   (n={s['n']})"
    )


async def run(args: argparse.Namespace) -> int:
    data = Path(args.data or tempfile.mkdtemp(prefix="kleinstadtbot-bench-latency-"))
    print(f"data folder: {data}")
    async with Homeserver(data) as hs:
        bot_account = await hs.register("bot")
        echo_account = await hs.register("echo")
        driver_account = await hs.register("driver")
        bot_room = await hs.create_room(driver_account, [bot_account.user_id], direct=True)
        echo_room = await hs.create_room(driver_account, [echo_account.user_id], direct=True)
        await hs.join(bot_account, bot_room)
        await hs.join(echo_account, echo_room)

        config = write_bot_config(data / "bot.yaml", hs.url, bot_account, data / "bot")
        bot = bot_process(config, data / "bot.log")
        if args.profile:
            profiled(bot, data / "bot.prof")
        bot.start()
        echo = echo_process(hs.url, echo_account, data / "echo-store", data / "echo.log").start()
        driver: Driver | None = None
        try:
            await asyncio.gather(bot.wait_ready(), echo.wait_ready())
            await asyncio.sleep(1)  # let both settle after their first sync
            rss_start = {"bot": bot.rss_mb(), "echo": echo.rss_mb()}
            driver = await Driver(hs.url, driver_account).start()
            targets: dict[str, tuple[Proc, str]] = {"bot": (bot, bot_room), "echo": (echo, echo_room)}
            times: dict[str, list[float]] = {"bot": [], "echo": []}
            sent = {"bot": 0, "echo": 0}

            async def one(name: str) -> float:
                sent[name] += 1
                return await driver.round_trip(targets[name][1], "!ping")

            for i in range(args.warmup):
                for name in ("bot", "echo") if i % 2 == 0 else ("echo", "bot"):
                    await one(name)
            cpu_before = {name: cpu_seconds(proc) for name, (proc, _) in targets.items()}
            for i in range(args.rounds):
                for name in ("bot", "echo") if i % 2 == 0 else ("echo", "bot"):
                    times[name].append(await one(name))
            cpu_per_trip = {
                name: (cpu_seconds(proc) - cpu_before[name]) / args.rounds
                for name, (proc, _) in targets.items()
            }
            # more commands, alternating as before, until each process has answered args.commands
            i = 0
            while sent["bot"] < args.commands or sent["echo"] < args.commands:
                for name in ("bot", "echo") if i % 2 == 0 else ("echo", "bot"):
                    if sent[name] < args.commands:
                        await one(name)
                i += 1
            await asyncio.sleep(1)
            rss_after = {"bot": bot.rss_mb(), "echo": echo.rss_mb()}
            peak = {"bot": bot.peak_mb(), "echo": echo.peak_mb()}
        finally:
            if driver is not None:
                await driver.close()
            await asyncio.gather(bot.stop(), echo.stop())

    bot_s, echo_s = summary(times["bot"]), summary(times["echo"])
    ratio = bot_s["median"] / echo_s["median"]
    print()
    print(
        f"Round trip of !ping, {args.rounds} each after {args.warmup} warm-up rounds, alternating, "
        f"same Synapse, same driver, long-poll timeout {SYNC_TIMEOUT_MS // 1000} s for both"
    )
    print(line("kleinstadtbot", times["bot"]))
    print(line("nio echo floor", times["echo"]))
    print(
        f"CPU per round trip (the measured ones, user + system): kleinstadtbot "
        f"{cpu_per_trip['bot'] * 1000:.1f} ms, nio echo floor {cpu_per_trip['echo'] * 1000:.1f} ms"
    )
    verdict = "OK" if ratio <= TARGET_RATIO else "MISSED"
    print(
        f"ratio median    {ratio:.3f}x   (p90 {bot_s['p90'] / echo_s['p90']:.3f}x)   "
        f"target <= {TARGET_RATIO:.2f}x: {verdict}"
    )
    print()
    print("Resident memory (RSS) of the processes")
    for name, label in (("bot", "kleinstadtbot"), ("echo", "nio echo floor")):
        print(
            f"{label:<15} after start {rss_start[name]:6.1f} MB   after {sent[name]} commands "
            f"{rss_after[name]:6.1f} MB   peak {peak[name] or 0:6.1f} MB"
        )
    if args.profile and (data / "bot.prof").exists():
        print("\n(--profile: kleinstadtbot ran under cProfile, so its figures above are inflated)")
        print("--- cProfile of kleinstadtbot, top by own time ---")
        print(top(data / "bot.prof", args.profile_lines, sort="tottime"))
    if not args.keep and not args.data:
        shutil.rmtree(data, ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=200, help="measured round trips per process")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured round trips per process first")
    parser.add_argument(
        "--commands", type=int, default=1000, help="commands per process before the second memory reading"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="run kleinstadtbot under cProfile and print where its time goes",
    )
    parser.add_argument("--profile-lines", type=int, default=30)
    parser.add_argument("--data", help="folder for Synapse and bot data (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
