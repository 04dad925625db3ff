"""Shared pieces of the benchmarks: a local Synapse, the bot and an echo floor as subprocesses,
and a driving Matrix client that measures round trips.

Also runnable as ``python -m bench.common echo ...``: the minimal nio echo client (the floor of
any nio bot) that answers every ``m.text`` with an ``m.notice`` replying to it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pstats
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402
import psutil  # noqa: E402
import yaml  # noqa: E402
from nio import AsyncClient, AsyncClientConfig, RoomMessageNotice, RoomMessageText  # noqa: E402

from bot.homeserver import Account, LocalSynapse  # noqa: E402

PYTHON = sys.executable
SYNC_TIMEOUT_MS = 30_000  # the same long-poll timeout for the bot and the echo floor


# --- figures ------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "mean": statistics.fmean(values),
        "n": len(values),
    }


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM: the highest resident set size of the process so far (Linux)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


# --- homeserver -----------------------------------------------------------------------------


class Homeserver:
    """A LocalSynapse plus a few raw client-API calls (aiohttp) for fast setup."""

    def __init__(self, data: Path):
        self.synapse = LocalSynapse(data / "synapse")
        self.session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return self.synapse.url

    async def __aenter__(self) -> Homeserver:
        await asyncio.to_thread(self.synapse.start)
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.session:
            await self.session.close()
        await asyncio.to_thread(self.synapse.stop)

    async def register(self, localpart: str) -> Account:
        return await asyncio.to_thread(self.synapse.register, localpart)

    async def call(
        self, method: str, path: str, token: str, body: dict | None = None, params: dict | None = None
    ) -> dict:
        assert self.session is not None
        for _attempt in range(20):
            async with self.session.request(
                method,
                f"{self.url}/_matrix/client/v3{path}",
                json=body,
                params=params,
                headers={"Authorization": f"Bearer {token}"},
            ) as resp:
                data = await resp.json(content_type=None)
                if resp.status == 429:
                    await asyncio.sleep((data.get("retry_after_ms") or 200) / 1000)
                    continue
                if resp.status >= 400:
                    raise RuntimeError(f"{method} {path}: {resp.status} {data}")
                return data
        raise RuntimeError(f"{method} {path}: still rate limited")

    async def new_device(self, account: Account, name: str) -> Account:
        """A fresh device (and token) for ``account`` via password login."""
        assert self.session is not None
        body = {
            "type": "m.login.password",
            "password": account.password,
            "initial_device_display_name": name,
            "identifier": {"type": "m.id.user", "user": account.user_id},
        }
        async with self.session.post(f"{self.url}/_matrix/client/v3/login", json=body) as resp:
            data = await resp.json(content_type=None)
            if resp.status >= 400:
                raise RuntimeError(f"login: {resp.status} {data}")
        return Account(data["user_id"], data["access_token"], data["device_id"], account.password)

    async def create_room(
        self, creator: Account, invite: list[str], direct: bool = False, name: str | None = None
    ) -> str:
        body: dict[str, Any] = {
            "preset": "trusted_private_chat" if direct else "private_chat",
            "invite": invite,
            "is_direct": direct,
        }
        if name:
            body["name"] = name
        return (await self.call("POST", "/createRoom", creator.access_token, body))["room_id"]

    async def join(self, account: Account, room_id: str) -> None:
        await self.call("POST", f"/join/{room_id}", account.access_token, {})


# --- processes under test -------------------------------------------------------------------


def write_bot_config(path: Path, url: str, account: Account, data: Path, **extra: Any) -> Path:
    """A production-like config: encryption on, INFO logs; the per-user rate limit is lifted
    (10,000 commands per window, the highest the settings accept) so the benchmark's single
    driving user is never throttled."""
    data.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "homeserver": url,
        "user_id": account.user_id,
        "access_token": account.access_token,
        "device_id": account.device_id,
        "database": str(data / "bot.db"),
        "coordinators": [],
        "encryption": True,
        "log_level": "INFO",
        "sync": {"timeout_ms": SYNC_TIMEOUT_MS},
        "rate_limit": {"commands": 10_000, "window_seconds": 60},
    }
    config.update(extra)
    path.write_text(yaml.safe_dump(config))
    return path


class Proc:
    """A benchmarked process: started, watched for a ready line in its log, stopped by PID."""

    def __init__(
        self, name: str, argv: list[str], log: Path, ready_marker: str, env: dict[str, str] | None = None
    ):
        self.name, self.argv, self.log, self.ready_marker = name, argv, log, ready_marker
        self.env = env
        self.process: subprocess.Popen | None = None
        self.started = 0.0
        self._offset = 0

    def start(self) -> Proc:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        handle = self.log.open("ab")
        self._offset = self.log.stat().st_size
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            self.argv,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, **(self.env or {})},
            start_new_session=True,
        )
        handle.close()
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def output(self) -> str:
        with self.log.open("rb") as handle:
            handle.seek(self._offset)
            return handle.read().decode(errors="replace")

    async def wait_ready(self, timeout: float = 180) -> float:
        """Seconds from start until the ready line appeared."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.ready_marker in self.output():
                return time.perf_counter() - self.started
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.output()[-3000:]}"
                )
            await asyncio.sleep(0.02)
        raise TimeoutError(f"{self.name} not ready within {timeout} s:\n{self.output()[-3000:]}")

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def peak_mb(self) -> float | None:
        return peak_rss_mb(self.pid)

    async def stop(self, timeout: float = 30) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, timeout)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            await asyncio.to_thread(process.wait, 5)


def bot_process(config: Path, log: Path) -> Proc:
    return Proc(
        "kleinstadtbot", [PYTHON, "-m", "bot.cli", "run", "--config", str(config)], log, "kleinstadtbot ready"
    )


def echo_process(
    url: str, account: Account, store: Path, log: Path, since_ms: int = 0, encryption: bool = True
) -> Proc:
    argv = [
        PYTHON,
        "-m",
        "bench.common",
        "echo",
        "--homeserver",
        url,
        "--user",
        account.user_id,
        "--device",
        account.device_id,
        "--store",
        str(store),
        "--since-ms",
        str(since_ms),
    ]
    if not encryption:
        argv.append("--no-encryption")
    # the access token goes in the environment, not on the command line
    return Proc("nio echo", argv, log, "echo ready", env={"BENCH_ECHO_TOKEN": account.access_token})


def profiled(proc: Proc, out: Path) -> Proc:
    """The same process under cProfile (python -m cProfile -o out -m bot.cli ...)."""
    argv = list(proc.argv)
    assert argv[1] == "-m"
    proc.argv = [PYTHON, "-m", "cProfile", "-o", str(out), *argv[1:]]
    return proc


def top(path: Path, limit: int = 25, sort: str = "cumulative") -> str:
    from io import StringIO

    buffer = StringIO()
    stats = pstats.Stats(str(path), stream=buffer)
    stats.sort_stats(sort).print_stats(limit)
    return buffer.getvalue()


# --- the driving client ---------------------------------------------------------------------


class Driver:
    """A plain nio client (no encryption) that sends commands and times the answers.

    A round trip runs from just before the send request until the driver's own sync delivers
    the notice that replies to the command (``m.in_reply_to``)."""

    def __init__(self, url: str, account: Account):
        self.account = account
        self.client = AsyncClient(
            url,
            account.user_id,
            device_id=account.device_id,
            config=AsyncClientConfig(
                encryption_enabled=False,
                store_sync_tokens=False,
                max_limit_exceeded=10,
                max_timeouts=3,
                request_timeout=60,
            ),
        )
        self.client.restore_login(account.user_id, account.device_id, account.access_token)
        self.arrivals: dict[str, float] = {}
        self._changed = asyncio.Condition()
        self.task: asyncio.Task | None = None

    async def start(self) -> Driver:
        self.client.add_event_callback(self._on_notice, RoomMessageNotice)
        await self.client.sync(timeout=0)
        self.task = asyncio.ensure_future(self.client.sync_forever(timeout=SYNC_TIMEOUT_MS))
        return self

    async def _on_notice(self, room: Any, event: Any) -> None:
        now = time.perf_counter()
        relates = event.source.get("content", {}).get("m.relates_to") or {}
        target = (relates.get("m.in_reply_to") or {}).get("event_id")
        if target:
            async with self._changed:
                self.arrivals.setdefault(target, now)
                self._changed.notify_all()

    async def send(self, room_id: str, body: str) -> str:
        response = await self.client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": body})
        event_id = getattr(response, "event_id", None)
        if not event_id:
            raise RuntimeError(f"send failed: {response}")
        return event_id

    async def wait_answer(self, event_id: str, timeout: float = 60) -> float:
        """perf_counter time at which the answer to ``event_id`` arrived."""

        async def found() -> float:
            async with self._changed:
                while event_id not in self.arrivals:
                    await self._changed.wait()
                return self.arrivals[event_id]

        return await asyncio.wait_for(found(), timeout)

    async def round_trip(self, room_id: str, body: str = "!ping", timeout: float = 60) -> float:
        started = time.perf_counter()
        event_id = await self.send(room_id, body)
        return await self.wait_answer(event_id, timeout) - started

    async def close(self) -> None:
        if self.task:
            self.client.stop_sync_forever()
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task
        await self.client.close()


# --- the echo floor (subprocess) ------------------------------------------------------------


async def _echo(args: argparse.Namespace) -> None:
    token = os.environ["BENCH_ECHO_TOKEN"]
    store = Path(args.store)
    store.mkdir(parents=True, exist_ok=True)
    client = AsyncClient(
        args.homeserver,
        args.user,
        device_id=args.device,
        store_path=str(store),
        config=AsyncClientConfig(encryption_enabled=not args.no_encryption, store_sync_tokens=False),
    )
    client.restore_login(args.user, args.device, token)

    async def on_text(room: Any, event: RoomMessageText) -> None:
        if event.sender == client.user_id or event.server_timestamp < args.since_ms:
            return
        await client.room_send(
            room.room_id,
            "m.room.message",
            {
                "msgtype": "m.notice",
                "body": event.body,
                "m.relates_to": {"m.in_reply_to": {"event_id": event.event_id}},
            },
            ignore_unverified_devices=True,
        )

    client.add_event_callback(on_text, RoomMessageText)

    async def announce() -> None:
        await client.synced.wait()
        print(f"echo ready: {len(client.rooms)} rooms", flush=True)

    announcer = asyncio.ensure_future(announce())
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    syncing = asyncio.ensure_future(client.sync_forever(timeout=SYNC_TIMEOUT_MS))
    await asyncio.wait({syncing, asyncio.ensure_future(stop.wait())}, return_when=asyncio.FIRST_COMPLETED)
    announcer.cancel()
    syncing.cancel()
    with contextlib.suppress(BaseException):
        await syncing
    await client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.common")
    sub = parser.add_subparsers(dest="mode", required=True)
    echo = sub.add_parser("echo", help="minimal nio echo client (token in $BENCH_ECHO_TOKEN)")
    echo.add_argument("--homeserver", required=True)
    echo.add_argument("--user", required=True)
    echo.add_argument("--device", required=True)
    echo.add_argument("--store", required=True)
    echo.add_argument("--since-ms", type=int, default=0, help="ignore messages older than this")
    echo.add_argument("--no-encryption", action="store_true")
    args = parser.parse_args(argv)
    asyncio.run(_echo(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
