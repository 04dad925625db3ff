"""Broadcasts to many rooms through a local Synapse: speed, CPU, and pacing under rate limits.

Part 1 (raised limits): one Synapse with raised ``rc_*`` limits, kleinstadtbot as a separate
process (``python -m bot.cli run --config …``, encryption on as in production), ``--rooms``
(1,000) public rooms made by a coordinator's account and joined with the bot's token before it
starts, recorded as topic channels. The coordinator composes ``!rundschreiben themen`` in a direct chat
and confirms; the script measures from the confirmation until the broadcast is done in the
bot's database: messages per second, and the bot's CPU time (user + system, psutil) per message.

Part 2 (Synapse's default limits: ``rc_message`` 0.2 events a second after a burst of 10):
``--limited-rooms`` (60) rooms, set up with the bot and the coordinator exempted through the
admin API (``override_ratelimit``); the bot's exemption is lifted before it confirms. Every event
the bot posts from then on counts against the limit (the announcements, its progress message
and the edits of it, the final report), so the minimum time is ``(events - 10) / 0.2`` seconds;
the script prints the measured time against it (target: at least 90 % of the allowed rate).

Both parts then read every room back (``/messages``) and count the bot's announcements: every
room must hold exactly one (duplicates and misses are printed).

    .venv/bin/python -m bench.broadcast [--rooms 1000] [--limited-rooms 60] [--skip-raised]
                                        [--skip-limited] [--data DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil

from bench.common import Homeserver, bot_process, write_bot_config
from bot.homeserver import Account, LocalSynapse
from config.topics import fold

RATE, BURST = 0.2, 10  # Synapse's default rc_message


class LimitedHomeserver(Homeserver):
    """``bench.common.Homeserver`` on a Synapse with its default rate limits."""

    def __init__(self, data: Path):
        super().__init__(data)
        self.synapse = LocalSynapse(data / "synapse", raised_limits=False)


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def query(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    with sqlite3.connect(db, timeout=30) as conn:
        return conn.execute(sql, params).fetchall()


async def populate(hs: Homeserver, owner: Account, bot: Account, rooms: int, parallel: int = 10) -> list[str]:
    """``rooms`` public rooms made by ``owner`` and joined with the bot's token (before the bot
    starts: its first sync finds them)."""
    gate = asyncio.Semaphore(parallel)
    started = time.perf_counter()

    async def one(i: int) -> str:
        async with gate:
            body = {"preset": "public_chat", "name": f"Kanal {i:04d}"}
            room_id = (await hs.call("POST", "/createRoom", owner.access_token, body))["room_id"]
            await hs.join(bot, room_id)
            return room_id

    made = list(await asyncio.gather(*(one(i) for i in range(rooms))))
    print(f"  {rooms} rooms created and joined in {time.perf_counter() - started:.0f} s", flush=True)
    return made


async def wait_joined(db: Path, rooms: list[str], timeout: float = 900) -> None:
    """Until the bot recorded a join of every room (``room_joins``)."""
    wanted = set(rooms)
    deadline = time.monotonic() + timeout
    while True:
        joined = {r[0] for r in query(db, "SELECT room_id FROM room_joins")}
        if wanted <= joined:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the bot joined {len(wanted & joined)} of {len(wanted)} rooms")
        await asyncio.sleep(1)


def register_channels(db: Path, rooms: list[str], creator: str) -> None:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    with sqlite3.connect(db, timeout=30) as conn:
        conn.executemany(
            "INSERT INTO topic_channels (room_id, name, name_key, topic_id, description, join_rule,"
            " created_by, created_at) VALUES (?, ?, ?, NULL, '', 'invite', ?, ?)",
            [(r, f"Kanal {i:04d}", fold(f"Kanal {i:04d}"), creator, now) for i, r in enumerate(rooms)],
        )


async def say(hs: Homeserver, who: Account, room_id: str, body: str) -> None:
    content = {"msgtype": "m.text", "body": body}
    txn = f"bench{time.time_ns()}"
    await hs.call("PUT", f"/rooms/{room_id}/send/m.room.message/{txn}", who.access_token, content)


async def wait_for(check: Any, timeout: float, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(every)


async def bot_events(hs: Homeserver, reader: Account, room_id: str, bot: str) -> list[dict]:
    data = await hs.call(
        "GET", f"/rooms/{room_id}/messages", reader.access_token, params={"dir": "b", "limit": "100"}
    )
    return [e for e in data.get("chunk", []) if e.get("sender") == bot]


def is_announcement(event: dict) -> bool:
    relates = event.get("content", {}).get("m.relates_to") or {}
    return event["type"] in ("m.room.message", "m.room.encrypted") and relates.get("rel_type") != "m.replace"


async def check_rooms(hs: Homeserver, reader: Account, rooms: list[str], bot: str) -> tuple[int, int]:
    """(duplicates, missing) over every room."""
    gate = asyncio.Semaphore(10)
    counts: list[int] = []

    async def one(room_id: str) -> None:
        async with gate:
            counts.append(sum(1 for e in await bot_events(hs, reader, room_id, bot) if is_announcement(e)))

    await asyncio.gather(*(one(r) for r in rooms))
    return sum(c - 1 for c in counts if c > 1), sum(1 for c in counts if c == 0)


async def run_part(
    label: str, hs: Homeserver, rooms_wanted: int, work: Path, limited: bool, concurrency: int
) -> None:
    print(f"\n== {label}: {rooms_wanted} rooms, {concurrency} sends in flight ==", flush=True)
    admin = await asyncio.to_thread(hs.synapse.register, "admin", None, True)
    coordinator = await hs.register("koordination")
    bot = await hs.register("kleinstadtbot")
    if limited:
        for account in (coordinator, bot):  # set-up runs exempt, as operators would do it
            await asyncio.to_thread(hs.synapse.override_ratelimit, account.user_id, admin.access_token)
    config = write_bot_config(
        work / f"{label}.yaml", hs.url, bot, work / label, coordinators=[coordinator.user_id],
        display_name=None, avatar=None, broadcasts={"concurrency": concurrency},
    )  # fmt: skip
    db = work / label / "bot.db"
    rooms = await populate(hs, coordinator, bot, rooms_wanted)
    proc = bot_process(config, work / f"{label}.log").start()
    try:
        await proc.wait_ready()
        dm = await hs.create_room(coordinator, [bot.user_id], direct=True)
        await wait_joined(db, [dm])
        register_channels(db, rooms, coordinator.user_id)
        await say(hs, coordinator, dm, "!rundschreiben themen\n**Messung:** bitte ignorieren.")
        await wait_for(
            lambda: query(db, "SELECT 1 FROM broadcasts WHERE id = 1 AND preview_event_id IS NOT NULL"), 120
        )
        if limited:
            await asyncio.to_thread(hs.synapse.clear_ratelimit_override, bot.user_id, admin.access_token)
        assert hs.synapse.process is not None
        synapse_pid = hs.synapse.process.pid
        cpu_before, synapse_before = cpu_seconds(proc.pid), cpu_seconds(synapse_pid)
        started = time.perf_counter()
        confirmed_ms = int(time.time() * 1000)
        await say(hs, coordinator, dm, "!rundschreiben senden 1")
        await wait_for(
            lambda: query(db, "SELECT op_done FROM broadcasts WHERE id = 1 AND state = 'done'"),
            3600,
            every=0.02,
        )
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(proc.pid) - cpu_before
        synapse_cpu = cpu_seconds(synapse_pid) - synapse_before
        sent = query(
            db, "SELECT count(*) FROM broadcast_deliveries WHERE broadcast_id = 1 AND state = 'sent'"
        )
        failed = query(
            db, "SELECT count(*) FROM broadcast_deliveries WHERE broadcast_id = 1 AND state != 'sent'"
        )
        await asyncio.sleep(1)  # the final report is posted right after the outbox is done
        others = [
            e
            for e in await bot_events(hs, coordinator, dm, bot.user_id)
            if e["origin_server_ts"] >= confirmed_ms
        ]
        duplicates, missing = await check_rooms(hs, coordinator, rooms, bot.user_id)
        messages = sent[0][0]
        print(
            f"  delivered {messages}, not delivered {failed[0][0]},"
            f" duplicates {duplicates}, missing {missing}"
        )
        print(f"  {elapsed:.1f} s from confirmation to done: {messages / elapsed:.1f} messages/s")
        print(f"  bot CPU {cpu:.1f} s: {cpu / messages * 1000:.2f} ms per message")
        print(f"  Synapse CPU {synapse_cpu:.1f} s: {synapse_cpu / messages * 1000:.1f} ms per message")
        print(f"  machine load average (1 min) at the end: {psutil.getloadavg()[0]:.1f}")
        events = messages + len(others)
        print(
            f"  bot events in that time: {messages} announcements + {len(others)} in the coordinator's chat"
        )
        if limited:
            minimum = max(0.0, (events - BURST) / RATE)
            print(
                f"  minimum the limit allows for {events} events: {minimum:.0f} s; measured {elapsed:.0f} s:"
                f" {minimum / elapsed * 100:.1f} % of the allowed rate"
            )
            log = (work / f"{label}.log").read_text(errors="replace")
            print(f"  429 refusals seen by nio: {log.count('Got 429 response')}")
    finally:
        await proc.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rooms", type=int, default=1000)
    parser.add_argument("--limited-rooms", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=4, help="broadcasts.concurrency of the bot")
    parser.add_argument("--skip-raised", action="store_true")
    parser.add_argument("--skip-limited", action="store_true")
    parser.add_argument("--data", type=Path, help="keep Synapse, bot data and logs here")
    args = parser.parse_args()
    work = args.data or Path(tempfile.mkdtemp(prefix="kleinstadtbot-bench-broadcast-"))
    try:
        if not args.skip_raised:
            async with Homeserver(work / "raised") as hs:
                await run_part("raised", hs, args.rooms, work, False, args.concurrency)
        if not args.skip_limited:
            async with LimitedHomeserver(work / "limited") as hs:
                await run_part("limited", hs, args.limited_rooms, work, True, args.concurrency)
    finally:
        if args.data is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
