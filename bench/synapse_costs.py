"""What Synapse spends on the bot's requests: a reply by its content, a first sync by its filter.

The floors under two figures of ``bench/peers.sh`` that the bot does not compute itself:

- ``replies``: one user sends ``!ping``s, a second answers each with every content shape in turn
  (the shape order flips every round): a bare notice as the nio floor sends it, with HTML, as a
  reply, with ``m.mentions``, and as kleinstadtbot sends it (all of these).
- ``first-sync``: a bot account joined to ``--rooms`` rooms; each round, a new device of it asks
  for its first sync without a filter, with kleinstadtbot's first-sync filter, and with variants
  (the order flips every round), one of them listing a tenth of the rooms (would a first sync
  taken in several requests, a few rooms each, cost Synapse less per request?), and the same
  rooms through simplified sliding sync (MSC4186): all in one request, and in pages of
  ``SLIDING_PAGE`` rooms (the sum of the pages per round). Per round as
  well as the mean: in one Synapse only the first request meets caches as a fresh Synapse has
  them; with ``--fresh`` Synapse is restarted before each request, as the peerbench runs (one
  new Synapse each) see it.
- ``syncs``: the sync that brings a command, by how the filter travels: none (the nio floor),
  kleinstadtbot's filter inline in every request, the same filter stored once (its ID).

Synapse's own accounting of each request (CPU, database time: its INFO access log) is read back,
so other processes on a shared machine do not count. It runs a throwaway Synapse with the
shared peerbench sandbox (``$PEERBENCH/synapse-sandbox.sh``, the migrated template under
``$PB_HOME``; see ``bench/peers.sh``).

    .venv/bin/python bench/synapse_costs.py replies [--rounds 60]
    .venv/bin/python bench/synapse_costs.py first-sync [--rooms 1000] [--rounds 2] [--fresh]
    .venv/bin/python bench/synapse_costs.py syncs [--rounds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.sync_loop import sync_filter  # noqa: E402

PB_HOME = Path(os.environ.get("PB_HOME", Path(tempfile.gettempdir()) / "peerbench"))
PEERBENCH = Path(os.environ.get("PEERBENCH", REPO.parent / "shared" / "peerbench"))
SYNAPSE_PYTHON = os.environ.get("SYNAPSE_PYTHON", str(PB_HOME / "nio-venv" / "bin" / "python"))
ACCESS = re.compile(
    r"Processed request: ([0-9.]+)sec/[0-9.]+sec ru=\(([0-9.]+)sec, ([0-9.]+)sec\) "
    r"db=\(([0-9.]+)sec/[0-9.]+sec/\d+\) (\d+)B (\d+) \"(\S+) (\S+)"
)
PING_BODY = "🏓 Pong! kleinstadtbot 0.1.0, läuft seit 5 Sekunden."


class Sandbox:
    def __init__(self, folder: Path):
        self.folder = folder
        self.env = {**os.environ, "SYNAPSE_PYTHON": SYNAPSE_PYTHON, "SANDBOX_LOG_LEVEL": "INFO"}
        self.url = ""

    def run(self, *args: str) -> str:
        script = str(PEERBENCH / "synapse-sandbox.sh")
        done = subprocess.run(
            ["bash", script, *args], env=self.env, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    def __enter__(self) -> Sandbox:
        templates = sorted(PB_HOME.glob("hs-template-*/TEMPLATE_READY"))
        if templates:  # a migrated database whose background updates are done (peerbench builds it)
            for item in templates[-1].parent.iterdir():
                if item.name.startswith("homeserver.db") or item.name in (
                    "shared_secret",
                    "localhost.signing.key",
                ):
                    shutil.copy2(item, self.folder / item.name)
        self.url = self.run("up", str(self.folder), "auto").splitlines()[-1]
        return self

    def __exit__(self, *exc: object) -> None:
        self.run("down", str(self.folder))

    def register(self, name: str, password: str) -> dict[str, Any]:
        return dict(json.loads(self.run("register", str(self.folder), name, password)))

    def accounting(self) -> list[dict[str, Any]]:
        """Synapse's record of each request: wall and CPU seconds, database seconds, size."""
        rows = []
        for line in (self.folder / "homeserver.log").read_text(errors="replace").splitlines():
            match = ACCESS.search(line)
            if match:
                wall, user, system, db, size, status, method, path = match.groups()
                rows.append(
                    {
                        "wall": float(wall),
                        "cpu": float(user) + float(system),
                        "db": float(db),
                        "bytes": int(size),
                        "status": int(status),
                        "method": method,
                        "path": path,
                    }
                )
        return rows


class Client:
    def __init__(self, session: aiohttp.ClientSession, url: str, token: str):
        self.session, self.url, self.token = session, url, token

    async def call(
        self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None
    ) -> Any:
        for _ in range(20):
            async with self.session.request(
                method,
                self.url + path,
                json=body,
                params=params,
                headers={"Authorization": f"Bearer {self.token}"},
            ) as response:
                data = await response.json(content_type=None)
                if response.status == 429:
                    await asyncio.sleep(0.5)
                    continue
                if response.status >= 400:
                    raise RuntimeError(f"{method} {path}: {response.status} {data}")
                return data
        raise RuntimeError(f"{method} {path}: still rate limited")


def shapes(driver: str) -> dict[str, Callable[[str], dict[str, Any]]]:
    html = {"format": "org.matrix.custom.html", "formatted_body": f"<p>{PING_BODY}</p>"}

    def reply(event_id: str) -> dict[str, Any]:
        return {"m.relates_to": {"m.in_reply_to": {"event_id": event_id}}}

    return {
        "notice (nio floor)": lambda e: {"msgtype": "m.notice", "body": "!ping"},
        "+ HTML": lambda e: {"msgtype": "m.notice", "body": PING_BODY, **html},
        "+ reply relation": lambda e: {"msgtype": "m.notice", "body": "!ping", **reply(e)},
        "+ m.mentions (empty)": lambda e: {"msgtype": "m.notice", "body": "!ping", "m.mentions": {}},
        "+ m.mentions (the sender)": lambda e: {
            "msgtype": "m.notice",
            "body": "!ping",
            "m.mentions": {"user_ids": [driver]},
        },
        "kleinstadtbot (all of these)": lambda e: {
            "msgtype": "m.notice",
            "body": PING_BODY,
            **html,
            **reply(e),
            "m.mentions": {"user_ids": [driver]},
        },
    }


async def replies(sandbox: Sandbox, rounds: int) -> None:
    bot, driver = (
        sandbox.register("bot", secrets.token_hex(8)),
        sandbox.register("driver", secrets.token_hex(8)),
    )
    kinds = shapes(driver["user_id"])
    tags = {name: f"shape{i}" for i, name in enumerate(kinds)}
    async with aiohttp.ClientSession() as session:
        them, us = (
            Client(session, sandbox.url, driver["access_token"]),
            Client(session, sandbox.url, bot["access_token"]),
        )
        room = (
            await them.call(
                "POST",
                "/_matrix/client/v3/createRoom",
                {"preset": "private_chat", "invite": [bot["user_id"]]},
            )
        )["room_id"]
        await us.call("POST", f"/_matrix/client/v3/join/{room}", {})
        for n in range(rounds):
            txn = f"ping.{secrets.token_hex(6)}"
            command = await them.call(
                "PUT",
                f"/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}",
                {"msgtype": "m.text", "body": "!ping"},
            )
            order = list(kinds) if n % 2 == 0 else list(reversed(kinds))
            for name in order:
                path = (
                    f"/_matrix/client/v3/rooms/{room}/send/m.room.message/{tags[name]}.{secrets.token_hex(6)}"
                )
                await us.call("PUT", path, kinds[name](command["event_id"]))
    time.sleep(1)  # the access log is written after the response
    rows = sandbox.accounting()
    print(f"Synapse's work per reply ({rounds} each, alternating; medians)\n")
    print("| reply content | CPU ms | database ms | wall ms |")
    print("|---|---:|---:|---:|")
    for name, tag in tags.items():
        mine = [r for r in rows if r["method"] == "PUT" and f"/{tag}." in r["path"]]
        print(
            f"| {name} | {1000 * statistics.median(r['cpu'] for r in mine):.1f} "
            f"| {1000 * statistics.median(r['db'] for r in mine):.1f} "
            f"| {1000 * statistics.median(r['wall'] for r in mine):.1f} |"
        )


async def syncs(sandbox: Sandbox, rounds: int) -> None:
    bot, driver = (
        sandbox.register("bot", secrets.token_hex(8)),
        sandbox.register("driver", secrets.token_hex(8)),
    )
    inline = json.dumps(sync_filter(20), separators=(",", ":"))
    async with aiohttp.ClientSession() as session:
        them, us = (
            Client(session, sandbox.url, driver["access_token"]),
            Client(session, sandbox.url, bot["access_token"]),
        )
        room = (
            await them.call(
                "POST",
                "/_matrix/client/v3/createRoom",
                {"preset": "private_chat", "invite": [bot["user_id"]]},
            )
        )["room_id"]
        await us.call("POST", f"/_matrix/client/v3/join/{room}", {})
        stored = (await us.call("POST", f"/_matrix/client/v3/user/{bot['user_id']}/filter", sync_filter(20)))[
            "filter_id"
        ]
        forms: dict[str, str | None] = {
            "no filter (the nio floor)": None,
            "kleinstadtbot's filter inline": inline,
            "the same filter stored (its ID)": stored,
        }
        since = {
            name: (await us.call("GET", "/_matrix/client/v3/sync", params={"timeout": "0"}))["next_batch"]
            for name in forms
        }
        markers: dict[str, list[str]] = {name: [] for name in forms}
        for n in range(rounds):
            await them.call(
                "PUT",
                f"/_matrix/client/v3/rooms/{room}/send/m.room.message/ping.{secrets.token_hex(6)}",
                {"msgtype": "m.text", "body": "!ping"},
            )
            for name in list(forms) if n % 2 == 0 else list(reversed(forms)):
                marker = secrets.token_hex(4)
                params = {"timeout": "0", "since": since[name], "marker": marker}
                if forms[name] is not None:
                    params["filter"] = str(forms[name])
                since[name] = (await us.call("GET", "/_matrix/client/v3/sync", params=params))["next_batch"]
                markers[name].append(marker)
    time.sleep(1)
    rows = [r for r in sandbox.accounting() if "/sync" in r["path"]]
    print(f"Synapse's work for the sync that brings one command ({rounds} each, alternating; medians)\n")
    print("| filter | CPU ms | database ms | wall ms |")
    print("|---|---:|---:|---:|")
    for name, mine_markers in markers.items():
        mine = [r for r in rows if any(f"marker={m}" in r["path"] for m in mine_markers)]
        print(
            f"| {name} | {1000 * statistics.median(r['cpu'] for r in mine):.1f} "
            f"| {1000 * statistics.median(r['db'] for r in mine):.1f} "
            f"| {1000 * statistics.median(r['wall'] for r in mine):.1f} |"
        )


def filters() -> dict[str, dict[str, Any] | None]:
    ours = sync_filter(20, initial=True)
    short = json.loads(json.dumps(ours))
    short["room"]["timeline"]["limit"] = 1
    eager = json.loads(json.dumps(ours))
    eager["room"]["state"]["lazy_load_members"] = eager["room"]["timeline"]["lazy_load_members"] = False
    none = json.loads(json.dumps(ours))
    none["room"]["rooms"] = []
    return {
        "no filter (the nio floor)": None,
        "kleinstadtbot's first-sync filter": ours,
        "the same, timeline limit 1": short,
        "the same, members not lazy-loaded": eager,
        "no rooms at all": none,
    }


SLIDING = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"
SLIDING_PAGE = 50


async def sliding_first_sync(
    session: aiohttp.ClientSession, url: str, password: str, rooms: int, page: int
) -> list[str]:
    """A new device's first look at every room through simplified sliding sync (MSC4186), as the
    bot would take it in pages: each request widens the list by ``page`` rooms (most recent
    first), with the state the bot needs and a timeline of 20. Returns the requests' markers."""
    login = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": "bot"},
        "password": password,
    }
    async with session.post(url + "/_matrix/client/v3/login", json=login) as response:
        token = (await response.json())["access_token"]
    client = Client(session, url, token)
    markers: list[str] = []
    position: str | None = None
    for start in range(0, rooms, page):
        body = {
            "lists": {
                "rooms": {
                    "ranges": [[start, min(rooms, start + page) - 1]],
                    "timeline_limit": 20,
                    "required_state": [["m.room.encryption", ""], ["m.room.member", "$LAZY"]],
                }
            }
        }
        marker = secrets.token_hex(4)
        params = {"timeout": "0", "marker": marker, **({"pos": position} if position else {})}
        answer = await client.call("POST", SLIDING, body, params=params)
        position = answer["pos"]
        markers.append(marker)
    return markers


async def first_syncs(sandbox: Sandbox, rooms: int, rounds: int, fresh: bool = False) -> None:
    password = secrets.token_hex(8)
    bot, filler = sandbox.register("bot", password), sandbox.register("filler", secrets.token_hex(8))
    variants = filters()
    timeout = aiohttp.ClientTimeout(total=900)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        us, them = (
            Client(session, sandbox.url, bot["access_token"]),
            Client(session, sandbox.url, filler["access_token"]),
        )
        gate = asyncio.Semaphore(8)
        made: list[str] = []

        async def one(n: int) -> None:
            async with gate:
                body = {"preset": "private_chat", "name": f"filler {n}", "invite": [bot["user_id"]]}
                room = (await them.call("POST", "/_matrix/client/v3/createRoom", body))["room_id"]
                await us.call("POST", f"/_matrix/client/v3/join/{room}", {})
                made.append(room)

        await asyncio.gather(*(one(n) for n in range(rooms)))
        print(f"{rooms} rooms made", file=sys.stderr)
        # a first sync taken in parts: the same filter listing a tenth of the rooms
        tenth = json.loads(json.dumps(variants["kleinstadtbot's first-sync filter"]))
        tenth["room"]["rooms"] = sorted(made)[: max(1, rooms // 10)]
        variants["the same, a tenth of the rooms listed"] = tenth
        seen: dict[str, list[tuple[str, int]]] = {name: [] for name in variants}
        for n in range(rounds):
            for name in list(variants) if n % 2 == 0 else list(reversed(variants)):
                if fresh:  # a restarted Synapse: every first sync meets empty caches
                    sandbox.run("down", str(sandbox.folder))
                    sandbox.url = sandbox.run("up", str(sandbox.folder), "auto").splitlines()[-1]
                login = {
                    "type": "m.login.password",
                    "identifier": {"type": "m.id.user", "user": "bot"},
                    "password": password,
                }
                async with session.post(sandbox.url + "/_matrix/client/v3/login", json=login) as response:
                    token = (await response.json())["access_token"]
                marker = secrets.token_hex(4)  # finds this request in the access log
                params = {"timeout": "0", "set_presence": "offline", "marker": marker}
                if variants[name] is not None:
                    params["filter"] = json.dumps(variants[name], separators=(",", ":"))
                await Client(session, sandbox.url, token).call(
                    "GET", "/_matrix/client/v3/sync", params=params
                )
                seen[name].append((marker, n))
                print(f"  {name} done", file=sys.stderr)
            # the same through sliding sync (MSC4186), where there are rooms to page through
            for page in dict.fromkeys((rooms, SLIDING_PAGE)) if rooms else ():
                requests = -(-rooms // page)
                name = (
                    "sliding sync, every room in one request"
                    if requests == 1
                    else f"sliding sync, pages of {page} rooms (the sum of {requests} requests)"
                )
                markers = await sliding_first_sync(session, sandbox.url, password, rooms, page)
                seen.setdefault(name, []).extend((marker, n) for marker in markers)
                print(f"  {name} done", file=sys.stderr)
    time.sleep(1)
    rows = [r for r in sandbox.accounting() if "/sync" in r["path"]]
    caches = "Synapse restarted before each" if fresh else "one Synapse"
    print(
        f"Synapse's work for the first sync of a new device in {rooms} rooms "
        f"({rounds} each, alternating; {caches})"
    )
    print()
    print("| filter | CPU s | database s | wall s | MiB | CPU s per round |")
    print("|---|---:|---:|---:|---:|---|")
    for name, markers in seen.items():
        # per round: the sum over the round's requests (one, or a sliding sync's pages)
        per_round: dict[int, list[dict[str, Any]]] = {}
        for marker, n in markers:
            per_round.setdefault(n, []).extend(r for r in rows if f"marker={marker}" in r["path"])
        totals = [
            {key: sum(r[key] for r in found) for key in ("cpu", "db", "wall", "bytes")}
            for _, found in sorted(per_round.items())
        ]
        cpu, db = statistics.fmean(t["cpu"] for t in totals), statistics.fmean(t["db"] for t in totals)
        wall, size = (
            statistics.fmean(t["wall"] for t in totals),
            statistics.fmean(t["bytes"] for t in totals) / 2**20,
        )
        each = ", ".join(f"{t['cpu']:.2f}" for t in totals)
        most = max(r["cpu"] for found in per_round.values() for r in found)
        print(
            f"| {name} | {cpu:.2f} | {db:.2f} | {wall:.2f} | {size:.2f} "
            f"| {each} (one request at most {most:.2f}) |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("replies").add_argument("--rounds", type=int, default=60)
    first = sub.add_parser("first-sync")
    first.add_argument("--rooms", type=int, default=1000)
    first.add_argument("--rounds", type=int, default=2)
    first.add_argument(
        "--fresh",
        action="store_true",
        help="restart Synapse before each first sync (empty caches, as after its start)",
    )
    sub.add_parser("syncs").add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="synapse-costs-") as folder, Sandbox(Path(folder)) as sandbox:
        if args.what == "replies":
            asyncio.run(replies(sandbox, args.rounds))
        elif args.what == "syncs":
            asyncio.run(syncs(sandbox, args.rounds))
        else:
            asyncio.run(first_syncs(sandbox, args.rooms, args.rounds, args.fresh))
    return 0


if __name__ == "__main__":
    sys.exit(main())
