"""Outgoing messages: content conventions, stable transaction IDs, HTTP 429 against a real server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from nio import AsyncClient, AsyncClientConfig

import bot.sending as sending
from bot.rendering import Renderer
from bot.sending import MessageSender, message_content, transaction_id
from commands.context import MatrixError, Reply, Request, SessionLost

BOT = "@kleinstadtbot:localhost"
MAYOR = "@buergermeisterin:localhost"
ROOM = "!dm:localhost"


def request(event_id: str | None = "$cmd1", thread_root: str | None = None) -> Request:
    return Request(sender=MAYOR, room_id=ROOM, body="!ping", event_id=event_id, thread_root=thread_root)


# --- content -----------------------------------------------------------------------------------


def test_reply_content_is_a_notice_with_html_mentions_and_reply_relation():
    content = message_content("Hallo", "<p>Hallo</p>", request(), ["@anna:localhost"])
    assert content == {
        "msgtype": "m.notice",
        "body": "Hallo",
        "format": "org.matrix.custom.html",
        "formatted_body": "<p>Hallo</p>",
        "m.relates_to": {"m.in_reply_to": {"event_id": "$cmd1"}},
        "m.mentions": {"user_ids": [MAYOR, "@anna:localhost"]},
    }


def test_reply_in_a_thread_stays_in_the_thread_with_in_reply_to():
    content = message_content("x", "<p>x</p>", request(thread_root="$root"), [])
    assert content["m.relates_to"] == {
        "rel_type": "m.thread",
        "event_id": "$root",
        "is_falling_back": False,
        "m.in_reply_to": {"event_id": "$cmd1"},
    }
    assert content["m.mentions"] == {"user_ids": [MAYOR]}


def test_message_without_request_has_no_relation_and_empty_mentions():
    content = message_content("x", "<p>x</p>", None, [])
    assert "m.relates_to" not in content
    assert content["m.mentions"] == {}  # explicitly mentions nobody: no accidental pings
    deduplicated = message_content("x", "<p>x</p>", request(), [MAYOR, "@a:x.org", "@a:x.org"])
    assert deduplicated["m.mentions"]["user_ids"] == [MAYOR, "@a:x.org"]


def test_transaction_ids_are_stable_and_distinct():
    assert transaction_id("event", "$e", "0") == transaction_id("event", "$e", "0")
    assert transaction_id("event", "$e", "0") != transaction_id("event", "$e", "1")
    assert transaction_id("event", "$e", "0") != transaction_id("key", "$e", "0")
    # the separator keeps ("ab", "c") and ("a", "bc") apart
    assert transaction_id("ab", "c") != transaction_id("a", "bc")
    assert transaction_id("key", "k").startswith("ksb") and len(transaction_id("key", "k")) == 35


# --- a recording homeserver stand-in -----------------------------------------------------------


@contextlib.asynccontextmanager
async def serve(*routes: tuple[str, str, Any]):
    """A local aiohttp server with ``(method, path, handler)`` routes; yields its base URL."""
    app = web.Application()
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    finally:
        await runner.cleanup()


SEND_PATH = "/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}"


@dataclass
class FakeHomeserver:
    """Answers PUT …/send/m.room.message/{txn} with 429 ``limited`` times, then 200."""

    limited: int | None  # None: always 429
    retry_after_ms: int = 200
    hits: list[tuple[float, str, str, dict]] = field(default_factory=list)
    url: str = ""

    async def handle(self, http: web.Request) -> web.Response:
        content = json.loads(await http.text())
        self.hits.append((time.monotonic(), http.match_info["room"], http.match_info["txn"], content))
        if self.limited is None or len(self.hits) <= self.limited:
            return web.json_response(
                {
                    "errcode": "M_LIMIT_EXCEEDED",
                    "error": "Too many requests",
                    "retry_after_ms": self.retry_after_ms,
                },
                status=429,
            )
        return web.json_response({"event_id": f"$sent{len(self.hits)}"})

    async def start(self) -> FakeHomeserver:
        self._stack = contextlib.AsyncExitStack()
        self.url = await self._stack.enter_async_context(serve(("PUT", SEND_PATH, self.handle)))
        return self

    async def stop(self) -> None:
        await self._stack.aclose()

    @property
    def txns(self) -> list[str]:
        return [hit[2] for hit in self.hits]


def nio_client(url: str, max_rate_limited: int) -> AsyncClient:
    """Configured like the bot's client (bot/runtime.py), without encryption."""
    client = AsyncClient(
        url,
        BOT,
        device_id="DEV",
        config=AsyncClientConfig(
            encryption_enabled=False,
            store_sync_tokens=False,
            max_limit_exceeded=max_rate_limited,
            max_timeouts=1,
            request_timeout=10,
            backoff_factor=0.5,
            max_timeout_retry_wait_time=1,
        ),
    )
    client.restore_login(BOT, "DEV", "fake-token")
    return client


@pytest.fixture
def renderer() -> Renderer:
    return Renderer("de", extra_globals={"prefix": "!"})


async def test_rate_limited_send_is_retried_with_the_same_transaction_id(renderer):
    server = await FakeHomeserver(limited=2, retry_after_ms=200).start()
    client = nio_client(server.url, max_rate_limited=5)
    try:
        sender = MessageSender(client, renderer)
        started = time.monotonic()
        event_id = await asyncio.wait_for(
            sender.send(Reply("ping", {"version": "t", "uptime_seconds": 5}), request()), 20
        )
        elapsed = time.monotonic() - started
    finally:
        await client.close()
        await server.stop()
    assert event_id == "$sent3"
    assert len(server.hits) == 3  # delivered once, after two refusals
    assert len(set(server.txns)) == 1
    assert server.txns[0] == transaction_id("event", "$cmd1", "0")
    assert elapsed >= 0.38  # retry_after_ms honoured twice
    gaps = [b[0] - a[0] for a, b in zip(server.hits, server.hits[1:], strict=False)]
    assert all(gap >= 0.18 for gap in gaps), gaps
    room, content = server.hits[-1][1], server.hits[-1][3]
    assert room == ROOM
    assert content["msgtype"] == "m.notice" and content["body"].startswith("🏓 Pong!")
    assert content["m.relates_to"] == {"m.in_reply_to": {"event_id": "$cmd1"}}


async def test_always_rate_limited_gives_up_with_matrix_error(renderer):
    server = await FakeHomeserver(limited=None, retry_after_ms=20).start()
    client = nio_client(server.url, max_rate_limited=1)
    waits: list[float] = []

    async def quick_sleep(seconds: float) -> None:
        """The sender's own backoff waits are recorded and shortened."""
        waits.append(seconds)
        await asyncio.sleep(0.01)

    try:
        sender = MessageSender(client, renderer, sleep=quick_sleep)
        with pytest.raises(MatrixError) as info:
            await asyncio.wait_for(
                sender.send(Reply("ping", {"version": "t", "uptime_seconds": 5}), request()), 30
            )
    finally:
        await client.close()
        await server.stop()
    assert "failed after 4 attempts" in str(info.value)
    assert "M_LIMIT_EXCEEDED" in str(info.value)
    # nio: 1 retry per attempt; MessageSender: 4 attempts, backing off 1, 2, 4 s in between
    assert len(server.hits) == sending.SEND_ATTEMPTS * 2
    assert waits == [1.0, 2.0, 4.0]
    assert len(set(server.txns)) == 1


async def test_transaction_ids_per_event_index_and_per_key(renderer):
    server = await FakeHomeserver(limited=0).start()
    client = nio_client(server.url, max_rate_limited=1)
    ping = Reply("ping", {"version": "t", "uptime_seconds": 5})
    try:
        sender = MessageSender(client, renderer)
        await sender.send(ping, request("$a"))
        await sender.send(ping, request("$a"))
        await sender.send(ping, request("$b"))
        await sender.send(
            Reply(
                "ping", {"version": "t", "uptime_seconds": 5}, room_id="!other:localhost", key="welcome:anna"
            ),
            request("$a"),
        )
        # after a crash the same batch is replayed by a new sender: identical IDs
        replay = MessageSender(client, renderer)
        await replay.send(ping, request("$a"))
        await replay.send(ping, request("$a"))
        sender.forget("$a")
        await sender.send(ping, request("$a"))
    finally:
        await client.close()
        await server.stop()
    a0, a1 = transaction_id("event", "$a", "0"), transaction_id("event", "$a", "1")
    assert server.txns == [
        a0,
        a1,
        transaction_id("event", "$b", "0"),
        transaction_id("key", "welcome:anna"),
        a0,
        a1,
        a0,
    ]
    keyed = server.hits[3]
    assert keyed[1] == "!other:localhost"
    assert "m.relates_to" not in keyed[3]  # a message to another room is not a reply


async def test_forbidden_is_not_retried(renderer):
    hits = []

    async def forbidden(http: web.Request) -> web.Response:
        hits.append(http.match_info["txn"])
        return web.json_response({"errcode": "M_FORBIDDEN", "error": "not in room"}, status=403)

    async with serve(("PUT", SEND_PATH, forbidden)) as url:
        client = nio_client(url, max_rate_limited=1)
        try:
            with pytest.raises(MatrixError) as info:
                await asyncio.wait_for(
                    MessageSender(client, renderer).send(
                        Reply("ping", {"version": "t", "uptime_seconds": 5}), request()
                    ),
                    10,
                )
        finally:
            await client.close()
    assert info.value.errcode == "M_FORBIDDEN"
    assert len(hits) == 1


async def test_dropped_connections_end_in_matrix_error(renderer):
    """A server that closes the connection without answering: after nio's own retries the
    sender retries with the same transaction ID and finally reports a MatrixError."""
    hits = []

    async def drop(http: web.Request) -> web.Response:
        hits.append(http.match_info["txn"])
        http.transport.close()
        return web.Response(status=500)

    async def quick_sleep(seconds: float) -> None:
        await asyncio.sleep(0.01)

    async with serve(("PUT", SEND_PATH, drop)) as url:
        client = nio_client(url, max_rate_limited=1)
        try:
            with pytest.raises(MatrixError):
                await asyncio.wait_for(
                    MessageSender(client, renderer, sleep=quick_sleep).send(
                        Reply("ping", {"version": "t", "uptime_seconds": 5}), request()
                    ),
                    20,
                )
        finally:
            await client.close()
    assert len(hits) >= sending.SEND_ATTEMPTS
    assert len(set(hits)) == 1


async def test_sync_loop_survives_dropped_connections(tmp_path):
    """The runtime's sync loop backs off on a dropped connection instead of ending, and goes on
    from the position it had. (A first start also asks for the first sync of the rooms beside
    the live syncs, in a request of its own: it is told apart by its filter, which lists rooms.)"""
    from bot.runtime import KleinstadtBot
    from config.settings import Settings
    from tests.test_runtime_units import lists_no_rooms

    syncs: list[str] = []  # the live syncs' ``since``, the first (the position) without one
    drops = 10

    async def sync(http: web.Request) -> web.Response:
        nonlocal drops
        if drops and (syncs or "since" in http.query):
            drops -= 1
            http.transport.close()
            return web.Response(status=500)
        if "since" not in http.query and not lists_no_rooms(http):
            return web.json_response({"next_batch": "first"})  # the first sync behind the live ones
        syncs.append(http.query.get("since", ""))
        return web.json_response({"next_batch": f"s{len(syncs)}"})

    async with serve(("GET", "/_matrix/client/v3/sync", sync)) as url:
        settings = Settings(
            homeserver=url,
            user_id=BOT,
            access_token="fake-token",
            device_id="DEV",
            encryption=False,
            database=tmp_path / "bot.db",
            sync={"backoff_initial_seconds": 0.05, "backoff_max_seconds": 0.2, "timeout_ms": 0},
            retry={"max_timeouts": 1},
        )
        bot = KleinstadtBot(settings)
        task = asyncio.ensure_future(bot.run())
        try:
            for _ in range(100):
                if len(syncs) >= 3 or task.done():
                    break
                await asyncio.sleep(0.05)
            if task.done():
                raise AssertionError(f"sync loop ended: {task.exception()!r}")
            assert drops == 0 and len(syncs) >= 3
            assert syncs[:3] == ["", "s1", "s2"]  # each went on from the position before
        finally:
            bot.request_stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)


async def test_a_rate_limited_first_sync_waits_as_long_as_the_homeserver_asks(tmp_path):
    """A 429 on a first start's first request (the position) honours retry_after_ms."""
    from bot.runtime import KleinstadtBot
    from config.settings import Settings
    from tests.test_runtime_units import lists_no_rooms

    calls: list[tuple[float, str]] = []  # the position's syncs (a first start's first request)

    async def sync(http: web.Request) -> web.Response:
        if not lists_no_rooms(http):  # the first sync behind the live syncs, or a live one
            return web.json_response({"next_batch": "s0", "rooms": {"join": {}}})
        calls.append((time.monotonic(), http.query.get("since", "")))
        if len(calls) == 1:
            return web.json_response(
                {"errcode": "M_LIMIT_EXCEEDED", "error": "Too many requests", "retry_after_ms": 700},
                status=429,
            )
        return web.json_response({"next_batch": f"s{len(calls)}", "rooms": {"join": {}}})

    async with serve(("GET", "/_matrix/client/v3/sync", sync)) as url:
        settings = Settings(
            homeserver=url,
            user_id=BOT,
            access_token="fake-token",
            device_id="DEV",
            encryption=False,
            database=tmp_path / "bot.db",
            sync={"backoff_initial_seconds": 0.05, "backoff_max_seconds": 0.1, "timeout_ms": 0},
        )
        bot = KleinstadtBot(settings)
        task = asyncio.ensure_future(bot.run())
        try:
            await asyncio.wait_for(bot.ready.wait(), 10)
        finally:
            bot.request_stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)
    assert [since for _, since in calls[:2]] == ["", ""]  # both asked for the position: no token yet
    assert calls[1][0] - calls[0][0] >= 0.7  # not the 0.05–0.1 s back-off


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, {"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid access token passed."}),
        (401, {"errcode": "M_MISSING_TOKEN", "error": "Missing access token."}),
        (401, {"errcode": "M_UNKNOWN_TOKEN", "error": "Token expired", "soft_logout": True}),
    ],
)
async def test_a_send_in_a_lost_session_is_not_retried_and_raises_session_lost(renderer, status, error):
    """The homeserver no longer takes the bot's token: the same token fails again, so no retry,
    and a SessionLost (not the room's problem) for the sync loop's new login to resolve."""
    hits = []

    async def unknown_token(http: web.Request) -> web.Response:
        hits.append(http.match_info["txn"])
        return web.json_response(error, status=status)

    async def no_sleep(seconds: float) -> None:
        raise AssertionError("a lost session is not retried")

    async with serve(("PUT", SEND_PATH, unknown_token)) as url:
        client = nio_client(url, max_rate_limited=1)
        try:
            with pytest.raises(SessionLost) as info:
                await asyncio.wait_for(
                    MessageSender(client, renderer, sleep=no_sleep).send(
                        Reply("ping", {"version": "t", "uptime_seconds": 5}), request()
                    ),
                    10,
                )
        finally:
            await client.close()
    assert info.value.errcode == error["errcode"]
    assert len(hits) == 1
