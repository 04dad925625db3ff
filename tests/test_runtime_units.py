"""The Matrix runtime without a homeserver: mention and reply-fallback stripping, bad sync bodies."""

import asyncio
import contextlib
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.incoming import leading_pill, message_request, strip_mention, strip_reply_fallback

if TYPE_CHECKING:
    from config.settings import Settings

BOT = "@kleinstadtbot:localhost"


def test_strip_mention_removes_the_bot_however_it_is_written():
    assert strip_mention("kleinstadtbot: Wer darf mitmachen?", BOT) == "Wer darf mitmachen?"
    assert strip_mention("@kleinstadtbot:localhost Wer darf mitmachen?", BOT) == "Wer darf mitmachen?"
    assert strip_mention("Kleinstadt Bot: Was kostet das?", BOT, "Kleinstadt Bot") == "Was kostet das?"
    assert strip_mention("Akademie-Bot: Was kostet das?", BOT) == "Was kostet das?"  # shown name
    assert strip_mention("Wo ist das? Danke", BOT) == "Wo ist das? Danke"


def test_the_bots_id_inside_the_text_stays():
    """Only a leading mention is the address; further on, the ID is an argument."""
    command = "!tandem anlegen @anna:localhost @kleinstadtbot:localhost Wohnen"
    assert strip_mention(command, BOT) == command
    assert strip_mention(f"@kleinstadtbot:localhost {command}", BOT) == command
    assert strip_mention("Frage an @kleinstadtbot:localhost zum Kongress", BOT) == (
        "Frage an @kleinstadtbot:localhost zum Kongress"
    )


def test_a_leading_pill_goes_even_without_a_colon():
    html = '<a href="https://matrix.to/#/@kleinstadtbot:localhost">Akademie-Bot</a> Wo sitzt ihr?'
    assert leading_pill(html, BOT) == "Akademie-Bot"
    assert strip_mention("Akademie-Bot Wo sitzt ihr?", BOT, pill="Akademie-Bot") == "Wo sitzt ihr?"
    assert leading_pill(f"Frage an {html}", BOT) is None  # not leading: not the address


async def test_a_command_naming_the_bot_reaches_the_refusal_for_the_bot_through_the_dispatcher(local_bot):
    """The request the runtime builds from Element's event (a pill for the bot in the body and
    in ``m.mentions``) keeps both IDs, so the dispatcher's tandem command refuses the bot."""
    from nio import RoomMessageText

    from commands.context import Reply

    body = "!tandem anlegen @anna:localhost @kleinstadtbot:localhost Wohnen"
    event = RoomMessageText.from_dict(
        {
            "type": "m.room.message",
            "sender": "@koordination:localhost",
            "event_id": "$tandem",
            "origin_server_ts": 1,
            "content": {
                "msgtype": "m.text",
                "body": body,
                "format": "org.matrix.custom.html",
                "formatted_body": '!tandem anlegen @anna:localhost <a href="https://matrix.to/#/'
                '@kleinstadtbot:localhost">Kleinstadtbot</a> Wohnen',
                "m.mentions": {"user_ids": [BOT]},
            },
        }
    )
    request = message_request("!dm:localhost", event, event.source["content"], BOT, "Kleinstadtbot")
    assert request.mentions_bot and request.body == body

    async def send(reply: Reply) -> str | None:
        return await local_bot.matrix.send(reply, request)

    assert await local_bot.dispatcher.handle(request, send)
    assert "Bot selbst" in local_bot.matrix.sent[-1].body


def test_reply_fallback_is_removed():
    body = "> <@anna:localhost> Hallo\n> zweite Zeile\n\n!ping"
    assert strip_reply_fallback(body) == "!ping"
    assert strip_reply_fallback("!ping") == "!ping"


async def test_a_first_sync_body_that_is_not_json_is_an_error_for_the_back_off(tmp_path):
    from nio import SyncError

    from bot.runtime import KleinstadtBot
    from config.settings import Settings

    bot = KleinstadtBot(
        Settings(
            homeserver="http://127.0.0.1:9",
            user_id="@bot:localhost",
            access_token="t",
            database=tmp_path / "bot.db",
        )
    )
    try:
        for body in ("<html>Bad Gateway</html>", '{"next_batch": "s1", "rooms": {"join": {"!a:x": {'):
            result = await bot.sync.receive(body, since=None)
            assert isinstance(result, SyncError) and "not valid JSON" in result.message
    finally:
        await bot.client.close()


# --- a sync batch that fails part-way -------------------------------------------------------

BOT_ID = "@bot:localhost"
DM = "!dm:localhost"


class StandIn:
    """A homeserver stand-in: the first sync carries one ``!ping`` in a room new to the bot;
    later syncs are empty long-polls. Sending the answer waits until ``release`` is set."""

    def __init__(self) -> None:
        self.syncs: list[str] = []
        self.sends: list[str] = []
        self.send_arrived = asyncio.Event()
        self.release = asyncio.Event()

    def batch(self) -> dict:
        now = int(time.time() * 1000)
        ping = {
            "type": "m.room.message",
            "sender": "@anna:localhost",
            "event_id": "$ping",
            "origin_server_ts": now,
            "content": {"msgtype": "m.text", "body": "!ping"},
        }
        join = {
            "type": "m.room.member",
            "state_key": BOT_ID,
            "sender": BOT_ID,
            "event_id": "$join",
            "origin_server_ts": now - 1000,
            "content": {"membership": "join"},
        }
        joined = {
            "timeline": {"events": [ping], "limited": False, "prev_batch": "p0"},
            "state": {"events": [join]},
            "summary": {"m.joined_member_count": 2},
        }
        return {"next_batch": "s1", "rooms": {"join": {DM: joined}}}

    async def sync(self, http: web.Request) -> web.Response:
        since = http.query.get("since", "")
        self.syncs.append(since)
        if since:
            await asyncio.sleep(0.1)
            return web.json_response({"next_batch": since})
        if lists_no_rooms(http):  # a first start's position
            return web.json_response({"next_batch": "s1"})
        return web.json_response(self.batch())

    async def send(self, http: web.Request) -> web.Response:
        self.sends.append(http.match_info["txn"])
        self.send_arrived.set()
        await self.release.wait()
        return web.json_response({"event_id": f"$answer{len(self.sends)}"})

    def routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("GET", "/_matrix/client/v3/sync", self.sync),
            ("PUT", "/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}", self.send),
        ]


def lists_no_rooms(http: web.Request) -> bool:
    """Whether a sync request's filter leaves out every room (a first start asks where the
    homeserver stands that way, and takes the first sync behind the live syncs)."""
    try:
        sync_filter = json.loads(http.query.get("filter", "{}"))
    except ValueError:
        return False
    return isinstance(sync_filter, dict) and sync_filter.get("room", {}).get("rooms") == []


def _stand_in_settings(url: str, tmp_path: Path) -> "Settings":
    """The bot's settings against a stand-in homeserver at ``url``: a token, no encryption, a
    short long poll."""
    from config.settings import Settings

    return Settings(
        homeserver=url,
        user_id=BOT_ID,
        access_token="fake-token",
        device_id="DEV",
        encryption=False,
        database=tmp_path / "bot.db",
        sync={"timeout_ms": 100},
    )


@contextlib.asynccontextmanager
async def serve(routes: list[tuple[str, str, Any]]):
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


class _Seen(logging.Handler):
    def __init__(self, text: str) -> None:
        super().__init__(logging.ERROR)
        self.text = text
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.seen.set()


async def _until(condition: Any, what: str, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.02)


async def test_a_batch_that_fails_part_way_keeps_its_token_until_replayed(tmp_path, monkeypatch):
    """Recording the room's join fails (a locked database, once) while the room's command is
    being answered. The batch's token is not stored: not while the answer is still being sent,
    and not after it (the join is unrecorded work). A restart replays the batch: the join is
    recorded, the command is not answered again, and the token is stored."""
    import sqlite3

    from bot.runtime import KleinstadtBot
    from storage.database import Database
    from storage.runtime_state import RuntimeStateRepository

    real_record_joins = RuntimeStateRepository.record_joins
    join_failed = asyncio.Event()

    async def record_joins(self: RuntimeStateRepository, joins: dict[str, int]) -> None:
        if joins and not join_failed.is_set():
            join_failed.set()
            raise sqlite3.OperationalError("database is locked")
        await real_record_joins(self, joins)

    monkeypatch.setattr(RuntimeStateRepository, "record_joins", record_joins)
    seen = _Seen("could not be handled completely")
    logging.getLogger().addHandler(seen)
    server = StandIn()
    try:
        async with serve(server.routes()) as url:
            settings = _stand_in_settings(url, tmp_path)
            bot = KleinstadtBot(settings)
            task = asyncio.ensure_future(bot.run())
            try:
                await asyncio.wait_for(server.send_arrived.wait(), 20)
                await asyncio.wait_for(join_failed.wait(), 20)
                syncs = len(server.syncs)
                # the loop goes on meanwhile: three more syncs after the failure
                await _until(lambda: _true(len(server.syncs) >= syncs + 3), "the sync loop stopped")
                assert await bot.repo.sync_token() is None  # the answer is still on its way
                server.release.set()

                async def answered() -> bool:
                    return await bot.repo.is_handled("$ping")

                await _until(answered, "the command was not answered")
                await asyncio.wait_for(seen.seen.wait(), 20)  # the batch is over, as failed
            finally:
                server.release.set()
                bot.request_stop()
                await asyncio.wait_for(task, 20)
            db = await Database(settings.database).open(migrate=False)
            try:
                assert await RuntimeStateRepository(db).sync_token() is None
            finally:
                await db.close()

            # the restart replays the batch
            replayed = KleinstadtBot(settings)
            task = asyncio.ensure_future(replayed.run())
            try:
                await asyncio.wait_for(replayed.ready.wait(), 20)

                async def stored() -> bool:
                    return await replayed.repo.sync_token() == "s1"

                await _until(stored, "the replayed batch's token was not stored")
                assert await replayed.repo.joined_at(DM) is not None
            finally:
                replayed.request_stop()
                await asyncio.wait_for(task, 20)
    finally:
        logging.getLogger().removeHandler(seen)
    assert len(server.sends) == 1  # answered once: the replay sent nothing
    # the restart synced from the start: each start asked for the position and the first sync
    assert server.syncs.count("") == 4


async def _true(value: bool) -> bool:
    return value


async def test_the_stored_token_never_passes_a_batch_that_is_unfinished_or_failed():
    from bot.batches import Batches, BatchIncomplete

    class Tokens:
        def __init__(self) -> None:
            self.saved: list[str] = []

        async def save_sync_token(self, token: str) -> None:
            self.saved.append(token)

    tokens = Tokens()
    batches = Batches(tokens)  # type: ignore[arg-type]
    gates = {name: asyncio.Event() for name in ("s1", "s2", "s3", "s4")}

    async def work(name: str, fails: bool = False) -> None:
        await gates[name].wait()
        if fails:
            raise BatchIncomplete("a step failed")

    batches.add("s1", work("s1"))
    batches.add("s2", work("s2"))
    batches.add("s3", work("s3", fails=True))
    batches.add("s4", work("s4"))
    gates["s2"].set()  # done, but s1 before it is not
    await _until(lambda: _true(len(batches.running) == 3), "s2 did not finish")
    assert tokens.saved == []
    gates["s1"].set()
    await _until(lambda: _true(tokens.saved == ["s2"]), "s1 and s2 were not stored together")
    gates["s4"].set()
    gates["s3"].set()
    await batches.drain(timeout=5)
    assert tokens.saved == ["s2"] and batches.held_at == "s3"
    batches.add("s5", asyncio.sleep(0))  # a later batch, complete: still nothing past s3
    await batches.drain(timeout=5)
    assert tokens.saved == ["s2"]


async def test_a_stopped_first_sync_names_the_live_token_only_when_all_after_it_is_handled():
    """What a clean stop during a first sync's pages may keep (``Batches.handled_behind``): the
    token of the last live batch, once every batch after the held place and every part of it
    routed so far is handled; nothing while one runs or after one failed."""
    from bot.batches import Batches, BatchIncomplete

    class Tokens:
        async def save_sync_token(self, token: str) -> None:
            raise AssertionError(f"{token} stored while the first sync is held")

    async def fails() -> None:
        raise BatchIncomplete("a step failed")

    batches = Batches(Tokens())  # type: ignore[arg-type]
    held = batches.hold()
    assert batches.handled_behind(held) is None  # no live batch yet
    gate = asyncio.Event()
    batches.add("p1", gate.wait(), into=held)  # a page's answers, still running
    batches.add("s1", asyncio.sleep(0))
    batches.add("s2", asyncio.sleep(0))
    await _until(lambda: _true(len(batches.running) == 1), "the live batches did not finish")
    assert batches.handled_behind(held) is None
    gate.set()
    await batches.release(held, complete=False)  # stopped: the held place stays in the way
    assert batches.handled_behind(held) == "s2"
    slow = asyncio.Event()
    batches.add("s3", slow.wait())
    assert batches.handled_behind(held) is None  # s3 still runs
    slow.set()
    await batches.drain(timeout=5)
    assert batches.handled_behind(held) == "s3"
    batches.add("s4", fails())
    await batches.drain(timeout=5)
    assert batches.handled_behind(held) is None  # a failed batch must be replayed

    failed_part = Batches(Tokens())  # type: ignore[arg-type]
    other = failed_part.hold()
    failed_part.add("p1", fails(), into=other)
    failed_part.add("s1", asyncio.sleep(0))
    await failed_part.release(other, complete=False)
    await failed_part.drain(timeout=5)
    assert failed_part.handled_behind(other) is None  # a page's answers failed


# --- the order of a round trip: the answer before the next long poll -------------------------


class RoundTripStandIn:
    """A homeserver stand-in that records the order of requests: the first sync is empty, the
    second carries a ``!ping`` in a direct chat, later ones are empty long-polls. Stores filters."""

    def __init__(self, commands: int = 1) -> None:
        self.log: list[tuple[str, str, str]] = []  # (kind, since or txn, filter)
        self.answered = asyncio.Event()
        self.commands = commands  # in the second sync
        self.release = asyncio.Event()  # answers wait for it when there are several commands
        if commands == 1:
            self.release.set()

    async def sync(self, http: web.Request) -> web.Response:
        since = http.query.get("since", "")
        self.log.append(("sync", since, http.query.get("filter", "")))
        if since == "":
            return web.json_response({"next_batch": "s1"})
        if since == "s1":
            batch = StandIn().batch()
            events = batch["rooms"]["join"][DM]["timeline"]["events"]
            events += [dict(events[0], event_id=f"$ping{n}") for n in range(1, self.commands)]
            return web.json_response(batch | {"next_batch": "s2"})
        await asyncio.sleep(0.05)
        return web.json_response({"next_batch": since})

    async def send(self, http: web.Request) -> web.Response:
        self.log.append(("send", http.match_info["txn"], ""))
        self.answered.set()
        await self.release.wait()
        return web.json_response({"event_id": f"$answer{len(self.log)}"})

    async def store_filter(self, http: web.Request) -> web.Response:
        body = await http.json()
        self.log.append(("filter", "", json.dumps(body["room"]["timeline"]["types"])))
        return web.json_response({"filter_id": "7"})

    def routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("GET", "/_matrix/client/v3/sync", self.sync),
            ("PUT", "/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}", self.send),
            ("POST", "/_matrix/client/v3/user/{user}/filter", self.store_filter),
        ]


async def test_a_batchs_answer_goes_out_before_the_next_long_poll_which_names_the_stored_filter(tmp_path):
    """As a bare nio bot's callbacks do, the answer to a command is sent before the sync loop
    asks for the next batch, so the homeserver persists it before it takes up the long poll.
    The filter of later syncs is stored once after the start; from then on the syncs name it
    instead of carrying it."""
    from bot.runtime import KleinstadtBot
    from bot.sync_loop import ANSWERED_TYPES

    server = RoundTripStandIn()
    async with serve(server.routes()) as url:
        settings = _stand_in_settings(url, tmp_path)
        bot = KleinstadtBot(settings)
        task = asyncio.ensure_future(bot.run())
        try:
            await asyncio.wait_for(server.answered.wait(), 30)

            def syncs_after_upload() -> int:
                kinds = [kind for kind, *_ in server.log]
                return kinds[kinds.index("filter") :].count("sync") if "filter" in kinds else 0

            await _until(lambda: _true(syncs_after_upload() >= 3), "no syncs after the filter was stored")
        finally:
            bot.request_stop()
            await asyncio.wait_for(task, 20)
    kinds = [(kind, key) for kind, key, _ in server.log]
    answer = next(i for i, (kind, _) in enumerate(kinds) if kind == "send")
    after_command = kinds.index(("sync", "s2"))
    assert answer < after_command, kinds  # the answer first, then the next long poll
    stored = [i for i, (kind, *_) in enumerate(server.log) if kind == "filter"]
    assert len(stored) == 1 and json.loads(server.log[stored[0]][2])[-len(ANSWERED_TYPES) :] == ANSWERED_TYPES
    later = [flt for kind, since, flt in server.log[stored[0] :] if kind == "sync"]
    assert later[-2:] == ["7", "7"]  # the stored filter's ID, not the filter
    assert server.log[0][2].startswith("{")  # the start did not wait for the upload


async def test_the_first_sync_request_goes_out_while_the_set_up_imports(tmp_path, monkeypatch):
    """The homeserver computes the first sync while the bot imports and builds its renderer and
    dispatcher: the set-up's imports run beside the event loop, so the first sync request
    reaches the server while they are under way (the stand-in, on the same loop, could not see
    it if the imports held the loop)."""
    from bot import runtime

    server = RoundTripStandIn()
    seen_at_set_up: list[str] = []
    import_set_up = runtime._import_set_up

    def set_up_after_the_request() -> None:  # in the worker thread
        deadline = time.monotonic() + 10
        while not server.log and time.monotonic() < deadline:
            time.sleep(0.01)
        seen_at_set_up.extend(kind for kind, *_ in server.log)
        import_set_up()

    monkeypatch.setattr(runtime, "_import_set_up", set_up_after_the_request)
    async with serve(server.routes()) as url:
        kb = runtime.KleinstadtBot(_stand_in_settings(url, tmp_path))
        task = asyncio.ensure_future(kb.run())
        try:
            await asyncio.wait_for(server.answered.wait(), 30)
        finally:
            kb.request_stop()
            await asyncio.wait_for(task, 20)
    assert seen_at_set_up[:1] == ["sync"]  # the first sync had reached the server


async def test_a_batch_of_many_commands_does_not_hold_up_the_next_sync(tmp_path, monkeypatch):
    """The catch-up after a start or an outage (here five commands in one batch, their answers
    held by the homeserver) does not keep the next sync waiting: commands that come meanwhile
    are not queued behind it. (The hold for a batch of a few is made a minute long here, so a
    hold would show.)"""
    import bot.sync_loop
    from bot.runtime import KleinstadtBot

    monkeypatch.setattr(bot.sync_loop, "ANSWERS_AHEAD", 60.0)

    server = RoundTripStandIn(commands=5)
    async with serve(server.routes()) as url:
        settings = _stand_in_settings(url, tmp_path)
        bot = KleinstadtBot(settings)
        task = asyncio.ensure_future(bot.run())
        try:
            await asyncio.wait_for(server.answered.wait(), 30)
            await _until(lambda: _true(("sync", "s2") in [k[:2] for k in server.log]), "the next sync waited")
            assert [kind for kind, *_ in server.log].count("send") == 1  # the first answer still held
        finally:
            server.release.set()
            bot.request_stop()
            await asyncio.wait_for(task, 20)


# --- the session lost while answering ---------------------------------------------------------


class LostSessionStandIn:
    """A homeserver stand-in with password logins: the first sync brings the bot into a direct
    chat, the second brings three ``!ping``. Sending the first answer signs the bot's session
    out (its token is no longer accepted, as after "sign out" in Element); a new login gets a
    new token."""

    def __init__(self) -> None:
        self.valid: str | None = None
        self.logins = 0
        self.syncs: list[tuple[str, str | None]] = []
        self.sends: list[tuple[str | None, str, str | None]] = []  # token, txn, command answered

    @staticmethod
    def token(http: web.Request) -> str | None:
        auth = http.headers.get("Authorization", "")
        return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else http.query.get("access_token")

    def refused(self) -> web.Response:
        return web.json_response(
            {"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid access token passed."}, status=401
        )

    async def login(self, http: web.Request) -> web.Response:
        self.logins += 1
        self.valid = f"token{self.logins}"
        return web.json_response({"user_id": BOT_ID, "access_token": self.valid, "device_id": "DEV"})

    async def whoami(self, http: web.Request) -> web.Response:
        if self.token(http) != self.valid:
            return self.refused()
        return web.json_response({"user_id": BOT_ID, "device_id": "DEV"})

    def event(self, event_id: str, body: str, ts: int) -> dict:
        return {
            "type": "m.room.message",
            "sender": "@anna:localhost",
            "event_id": event_id,
            "origin_server_ts": ts,
            "content": {"msgtype": "m.text", "body": body},
        }

    async def sync(self, http: web.Request) -> web.Response:
        since = http.query.get("since", "")
        self.syncs.append((since, self.token(http)))
        if self.token(http) != self.valid:
            return self.refused()
        now = int(time.time() * 1000)
        if since == "":
            join = {
                "type": "m.room.member",
                "state_key": BOT_ID,
                "sender": BOT_ID,
                "event_id": "$join",
                "origin_server_ts": now - 60_000,
                "content": {"membership": "join"},
            }
            room = {
                "timeline": {"events": [], "limited": False, "prev_batch": "p0"},
                "state": {"events": [join]},
                "summary": {"m.joined_member_count": 2},
            }
            return web.json_response({"next_batch": "s1", "rooms": {"join": {DM: room}}})
        if since == "s1":
            commands = [self.event(f"$c{n}", "!ping", now - 1000 + n) for n in (1, 2, 3)]
            room = {"timeline": {"events": commands, "limited": False, "prev_batch": "p1"}}
            return web.json_response({"next_batch": "s2", "rooms": {"join": {DM: room}}})
        await asyncio.sleep(0.05)
        return web.json_response({"next_batch": since})

    async def send(self, http: web.Request) -> web.Response:
        content = json.loads(await http.text())
        answered = ((content.get("m.relates_to") or {}).get("m.in_reply_to") or {}).get("event_id")
        token = self.token(http)
        self.sends.append((token, http.match_info["txn"], answered))
        if self.logins == 1 and token == self.valid:
            self.valid = None  # signed out at the moment of the first answer
        if token != self.valid:
            return self.refused()
        return web.json_response({"event_id": f"$answer{len(self.sends)}"})

    def routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("POST", "/_matrix/client/v3/login", self.login),
            ("GET", "/_matrix/client/v3/account/whoami", self.whoami),
            ("GET", "/_matrix/client/v3/sync", self.sync),
            ("PUT", "/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}", self.send),
        ]


async def test_commands_a_lost_session_left_unanswered_are_answered_once_after_the_new_login(tmp_path):
    """The first answer fails with M_UNKNOWN_TOKEN: it is not retried, none of the room's later
    commands is tried with the dead token, nothing is recorded as answered, and the batch's
    token is not stored. The sync loop logs in again and syncs from the stored token: the three
    commands come again and each is answered once, in order."""
    from bot.runtime import KleinstadtBot
    from config.settings import Settings

    server = LostSessionStandIn()
    async with serve(server.routes()) as url:
        settings = Settings(
            homeserver=url,
            user_id=BOT_ID,
            password="secret",
            encryption=False,
            database=tmp_path / "bot.db",
            sync={"timeout_ms": 100},
        )
        bot = KleinstadtBot(settings)
        task = asyncio.ensure_future(bot.run())
        try:

            async def answered() -> bool:
                assert not task.done(), task
                return {a for t, _, a in server.sends if t == "token2"} == {"$c1", "$c2", "$c3"}

            await _until(answered, "the commands were not answered after the new login", timeout=30)

            async def stored() -> bool:
                return await bot.repo.sync_token() == "s2"

            await _until(stored, "the replayed batch's token was not stored")
            assert all([await bot.repo.is_handled(f"$c{n}") for n in (1, 2, 3)])
        finally:
            bot.request_stop()
            await asyncio.wait_for(task, 20)
    assert server.logins == 2
    dead = [s for s in server.sends if s[0] == "token1"]
    assert [a for _, _, a in dead] == ["$c1"]  # tried once, and no later command with the dead token
    after = [a for t, _, a in server.sends if t == "token2"]
    assert after == ["$c1", "$c2", "$c3"]  # each once, in order
    assert ("s1", "token2") in server.syncs  # from the stored token, not the in-memory one
    assert dead[0][1] == server.sends[len(dead)][1]  # the replay's answer has the same transaction ID
