"""The Matrix runtime: one long-lived nio client, a sync loop, and the route from event to handler.

Guarantees:
- One device for the bot's life (``bot.session``); the sync token is stored after each batch
  is handled, so a restart continues where it stopped.
- No command is answered twice: answered events are recorded, replies carry transaction IDs
  derived from the command's event ID (a replayed batch re-sends nothing new), and events older
  than the catch-up window or from before the bot joined a room are ignored by timestamp.
- The homeserver being down never ends the loop: backoff with jitter, recovery without restart.
- SIGINT/SIGTERM: the running batch finishes, the token is saved, the database closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
from collections import defaultdict, deque
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import ClientError
from nio import (
    AsyncClient,
    AsyncClientConfig,
    InviteMemberEvent,
    MegolmEvent,
    PowerLevelsEvent,
    RoomMemberEvent,
    RoomMessageText,
    SyncError,
    SyncResponse,
)
from nio.exceptions import LocalProtocolError

from bot.backoff import Backoff
from bot.initial_sync import ROOMS_PER_PART, fetch_initial_sync, split_sync_response
from bot.matrix_port import NioMatrix
from bot.roles import RoleResolver
from bot.sending import MessageSender
from bot.session import LoginFailed, TransientLoginError, login
from commands.context import Clock, Reply, Request, SystemClock
from config.settings import Settings
from storage.database import Database
from storage.runtime_state import RuntimeStateRepository

log = logging.getLogger(__name__)
HANDLED_RETENTION_MS = 3 * 24 * 3600 * 1000
REPLY_FALLBACK = re.compile(r"^(?:>.*\n)+\n", re.MULTILINE)


# The room state the bot needs from sync: encryption (nio must encrypt), membership (lazy-loaded)
# and power levels (their change invalidates cached roles). Names, avatars, aliases and the rest
# are never read.
STATE_TYPES = ["m.room.create", "m.room.encryption", "m.room.member", "m.room.power_levels"]
# The first sync of a new device (no stored token) answers for every room at once, so it leaves
# out what only matters as a change: power levels (roles are read from the server when needed)
# and the create event. For a bot in 1,000 rooms that is over a third less JSON to parse.
INITIAL_STATE_TYPES = ["m.room.encryption", "m.room.member"]
# The timeline adds what the bot answers: messages, and encrypted ones (which nio decrypts).
ANSWERED_TYPES = ["m.room.message", "m.room.encrypted"]
# The event fields nio parses; ``unsigned`` (age, previous content) is dropped except the marker
# of a redacted event.
EVENT_FIELDS = [
    "type",
    "content",
    "sender",
    "state_key",
    "event_id",
    "origin_server_ts",
    "unsigned.redacted_because",
]


def sync_filter(timeline_limit: int, initial: bool = False) -> dict[str, Any]:
    """Lazy-loaded members, needed state and event types only, short timelines, no presence,
    receipts or typing. ``initial``: the leaner filter for a first sync without a token."""
    state_types = INITIAL_STATE_TYPES if initial else STATE_TYPES
    return {
        "event_fields": EVENT_FIELDS,
        "presence": {"not_types": ["*"]},
        "account_data": {"not_types": ["*"]},
        "room": {
            "state": {"lazy_load_members": True, "types": state_types},
            "timeline": {
                "limit": timeline_limit,
                "lazy_load_members": True,
                "types": [*state_types, *ANSWERED_TYPES],
            },
            "ephemeral": {"not_types": ["*"]},
            "account_data": {"not_types": ["*"]},
        },
    }


LEADING_NAME = re.compile(r"^\s*[^:?!.\n]{1,40}:\s+")


def strip_mention(body: str, user_id: str, display_name: str | None = None) -> str:
    """The text of a message that mentions the bot, without the mention: the bot's Matrix ID
    anywhere, or a leading display name / localpart ("kleinstadtbot: …", "Bot, …"). Clients
    write the display name they show, so any short leading "Name: " goes too."""
    text = re.sub(r"[ \t]{2,}", " ", body.replace(user_id, " ")).strip()
    localpart = user_id.split(":", 1)[0].lstrip("@")
    for name in (display_name, localpart):
        if name and text.lower().startswith(name.lower()):
            return text[len(name) :].lstrip(" :,").strip()
    match = LEADING_NAME.match(text)
    return text[match.end() :].strip() if match else text


def strip_reply_fallback(body: str) -> str:
    """Remove the quoted "> <@user> …" block that clients put before a reply's text."""
    return REPLY_FALLBACK.sub("", body, count=1) if body.startswith(">") else body


@dataclass
class _Batch:
    token: str
    done: bool = False
    task: asyncio.Task | None = None


class KleinstadtBot:
    def __init__(self, settings: Settings, clock: Clock | None = None):
        self.settings = settings
        self.clock = clock or SystemClock()
        self.db = Database(settings.database)
        self.repo = RuntimeStateRepository(self.db)
        store = settings.store_dir / "crypto"
        store.mkdir(parents=True, exist_ok=True)
        self.client = AsyncClient(
            settings.homeserver or "",
            settings.user_id or "",
            device_id=settings.device_id,
            store_path=str(store),
            config=AsyncClientConfig(
                encryption_enabled=settings.encryption,
                store_sync_tokens=False,
                max_limit_exceeded=settings.retry.max_rate_limited,
                max_timeouts=settings.retry.max_timeouts,
                request_timeout=settings.retry.request_timeout_seconds,
                backoff_factor=0.5,
                max_timeout_retry_wait_time=30,
            ),
        )
        # rendering, commands and the scheduler are set up in _prepare, while the first sync runs
        self.sender = MessageSender(self.client, None)
        self.matrix = NioMatrix(self.client, self.sender)
        self.roles = RoleResolver(settings, self.client)
        self.dispatcher = None
        self.ready = asyncio.Event()
        self.stopped = asyncio.Event()
        self._stop = asyncio.Event()
        self._sync_task: asyncio.Task | None = None
        self._joins: dict[str, int] = {}
        self._batches: deque[_Batch] = deque()
        self._room_tails: dict[str, asyncio.Task] = {}
        self._token_lock = asyncio.Lock()
        self._prepared: asyncio.Task | None = None
        self._startup: asyncio.Task | None = None
        self._accepted: dict[str, int] = {}
        self._noticed: set[str] = set()  # rooms told once that a message could not be decrypted
        self._backoff = Backoff(settings.sync.backoff_initial_seconds, settings.sync.backoff_max_seconds)
        self.answered = 0  # commands answered since start (for operators and benchmarks)
        self.scheduler = None

    # --- life cycle ----------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()
        if self._sync_task is not None and not self._sync_task.done():
            self._sync_task.cancel()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def run(self) -> None:
        """Log in, then sync until asked to stop. Never returns on homeserver failures.

        The first sync (seconds of server time for a bot in many rooms) is requested before the
        slower local set-up (remaining migrations, command families), which runs meanwhile."""
        await self.db.open(migrate=False)
        try:
            await self.db.migrate(until=1)  # the runtime's own tables: session, sync token
            if not await self._connect():
                return
            await self._sync_loop(self._prepare())
        finally:
            await self.close()

    async def _prepare(self) -> None:
        """Local set-up that the first sync batch needs, run while the server answers it."""
        from bot.app import build_dispatcher, build_renderer
        from bot.scheduler import build_scheduler

        await self.db.migrate()
        self.sender.renderer = build_renderer(self.settings)
        self.dispatcher = build_dispatcher(self.settings, self.db, self.matrix, self.roles, self.clock)
        self.scheduler = build_scheduler(self.settings, self._prune)
        self.sender.joined = self._joins.__contains__
        await self._prune()
        self._joins.update(await self.repo.all_joins())
        self._noticed = await self.repo.undecryptable_noticed_rooms()
        self.scheduler.start()

    async def _prune(self) -> None:
        """Daily housekeeping: forget answered events older than the retention period."""
        await self.repo.prune_handled(self._now_ms() - HANDLED_RETENTION_MS)

    async def _connect(self) -> bool:
        while not self._stop.is_set():
            try:
                how = await login(self.client, self.settings, self.repo)
                self._backoff.succeeded()
                log.info(
                    "connected to %s as %s (device %s, %s)",
                    self.settings.homeserver,
                    self.client.user_id,
                    self.client.device_id,
                    how,
                )
                return True
            except LoginFailed:
                raise
            except (TransientLoginError, TimeoutError, OSError, ClientError, LocalProtocolError) as exc:
                await self._pause(self._backoff.failed(str(exc) or type(exc).__name__))
        return False

    async def _sync_loop(self, preparation: Any) -> None:
        token = await self.repo.sync_token()
        prepared = self._prepared = asyncio.ensure_future(preparation)
        room_filter = sync_filter(self.settings.sync.timeline_limit)
        first = True
        while not self._stop.is_set():
            if token is None:
                # a new device or database: the first sync, fetched as text and handled in parts
                request = fetch_initial_sync(
                    self.client, sync_filter(self.settings.sync.timeline_limit, initial=True)
                )
            else:
                # No full state after a restart: nio keeps which rooms are encrypted in its store,
                # rooms are rebuilt as events arrive, and members are fetched when needed.
                request = self.client.sync(
                    timeout=0 if first else self.settings.sync.timeout_ms,
                    sync_filter=room_filter,
                    since=token,
                )
            self._sync_task = asyncio.ensure_future(request)
            try:
                response = await self._sync_task
            except asyncio.CancelledError:
                if self._stop.is_set():
                    break
                raise
            except (TimeoutError, OSError, ClientError) as exc:
                await self._pause(self._backoff.failed(type(exc).__name__))
                continue
            finally:
                self._sync_task = None
            if not isinstance(response, SyncError):
                if not prepared.done():
                    await prepared
                prepared.result()  # a failed set-up ends the bot here, loudly
                response = await self._receive(response)  # now the batch's token, or an error
            if isinstance(response, SyncError):
                if response.status_code in ("M_UNKNOWN_TOKEN", "M_MISSING_TOKEN"):
                    if self.settings.access_token is not None:
                        raise LoginFailed("the access token is no longer valid")
                    await self.repo.forget_session()
                    if not await self._connect():
                        break
                    continue
                await self._pause(self._sync_failed(response))
                continue
            self._backoff.succeeded()
            token = response
            self.sender.note_sync()
            await self._housekeeping()
            if first:
                first = False
                # beside the loop: a hook that creates the Space must not hold up the next sync
                self._startup = asyncio.ensure_future(self._run_startup_hooks())
                self.ready.set()
                log.info("kleinstadtbot ready: %d rooms", len(self._joins))
        await self._drain()

    def _sync_failed(self, error: SyncError) -> float:
        """Seconds to wait after a refused sync: the back-off, or longer if the homeserver asks
        for it (HTTP 429 with ``retry_after_ms``)."""
        delay = self._backoff.failed(f"{error.status_code} {error.message}")
        return max(delay, (error.retry_after_ms or 0) / 1000)

    async def _receive(self, response: SyncResponse | str) -> str | SyncError:
        """Hand a sync batch to the handlers; returns its token. The body of a first sync (text)
        is split into parts of a few rooms (``bot.initial_sync``), each received by nio and
        dispatched before the next is parsed; nio then keeps only the rooms with messages to
        handle, as after a restart."""
        if isinstance(response, SyncResponse):  # nio has received it already
            self._dispatch(response)
            return response.next_batch
        token = None
        try:
            for part in split_sync_response(response, ROOMS_PER_PART):
                batch = SyncResponse.from_dict(part)
                del part
                if isinstance(batch, SyncError):
                    return batch
                self.client.next_batch = None  # nio skips a response whose token it has seen
                await self.client.receive_response(batch)
                self._forget_idle_rooms(batch, keep=self._dispatch(batch))
                token = batch.next_batch
        except ValueError as exc:
            return SyncError(f"the sync response is not valid JSON: {exc}")
        return token

    async def _drain(self, timeout: float = 30) -> None:
        """On shutdown: let running batches and start-up work finish (tokens are then stored)."""
        running = [b.task for b in self._batches if b.task is not None and not b.task.done()]
        running += [t for t in (self._prepared, self._startup) if t is not None and not t.done()]
        if running:
            log.info("finishing %d task(s) in flight", len(running))
            await asyncio.wait(running, timeout=timeout)

    async def _housekeeping(self) -> None:
        """What nio's sync_forever does between syncs: keys and to-device messages."""
        if self.client.olm is None:
            return
        try:
            await self.client.send_to_device_messages()
            if self.client.should_upload_keys:
                await self.client.keys_upload()
            if self.client.should_query_keys:
                await self.client.keys_query()
            if self.client.should_claim_keys:
                await self.client.keys_claim(self.client.get_users_for_key_claiming())
        except (TimeoutError, OSError, ClientError, LocalProtocolError) as exc:
            log.warning("encryption housekeeping failed, will retry: %s", exc)

    async def _run_startup_hooks(self) -> None:
        from bot.profile import present_bot
        from commands.registry import REGISTRY

        for hook in REGISTRY.startup:
            try:
                await hook(self.dispatcher.services)
            except Exception:
                log.exception("startup hook %s failed", getattr(hook, "__name__", hook))
        await present_bot(self.client, self.settings, self.repo)  # name and avatar; never raises

    async def close(self) -> None:
        if self.stopped.is_set():
            return
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        with contextlib.suppress(Exception):
            await self.client.close()  # closes HTTP; never logs out: the device stays
        await self.db.close()
        self.stopped.set()

    # --- routing -------------------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)

    def _dispatch(self, response: SyncResponse) -> set[str]:
        """Hand a sync batch to a task so that syncing goes on while handlers run (a handler
        that creates a room needs the next sync to see it). What must happen in order is done
        here, synchronously: join times, role invalidation, and per-room ordering of events.
        Returns the rooms with messages to handle."""
        per_room: dict[str, list] = defaultdict(list)
        new_joins: dict[str, int] = {}
        leave_checks: list[str] = []
        for room_id, info in response.rooms.join.items():
            if room_id not in self._joins:
                new_joins[room_id] = self._join_time(room_id, info)
            for event in [*info.state, *info.timeline.events]:
                if isinstance(event, PowerLevelsEvent):
                    self.roles.invalidate(room_id)
            for event in info.timeline.events:
                if isinstance(event, RoomMemberEvent) and event.membership == "leave":
                    leave_checks.append(room_id)
                if isinstance(event, RoomMessageText | MegolmEvent):
                    per_room[room_id].append(event)
        for room_id in response.rooms.leave:
            self._joins.pop(room_id, None)
        self._joins.update(new_joins)
        room_tasks = [self._chain(room_id, events) for room_id, events in per_room.items()]
        batch = _Batch(response.next_batch)
        self._batches.append(batch)
        # the batch task keeps only what it needs, not the whole parsed response
        invites, leaves = dict(response.rooms.invite), list(response.rooms.leave)
        batch.task = asyncio.ensure_future(
            self._finish_batch(batch, invites, leaves, new_joins, leave_checks, room_tasks)
        )
        return set(per_room)

    def _forget_idle_rooms(self, part: SyncResponse, keep: set[str]) -> None:
        """Of the rooms in a part of a first sync, nio keeps only those with messages to handle,
        as after a restart: the others are rebuilt when their next event arrives or the bot
        posts there (nio's store keeps which rooms are encrypted; members are fetched then).
        nio holds about 3 KB per room, which a bot in thousands of rooms would otherwise carry
        for nothing."""
        for room_id in part.rooms.join:
            if room_id not in keep:
                self.client.rooms.pop(room_id, None)

    def _chain(self, room_id: str, events: list) -> asyncio.Task:
        """Events of one room are handled in order, after that room's earlier batches."""
        previous = self._room_tails.get(room_id)
        task = asyncio.ensure_future(self._handle_room(room_id, events, previous))
        self._room_tails[room_id] = task

        def forget(done: asyncio.Task) -> None:
            if self._room_tails.get(room_id) is done:
                del self._room_tails[room_id]

        task.add_done_callback(forget)
        return task

    async def _finish_batch(
        self,
        batch: _Batch,
        invites: dict[str, Any],
        leaves: list[str],
        new_joins: dict[str, int],
        leave_checks: list[str],
        room_tasks: list[asyncio.Task],
    ) -> None:
        try:
            for room_id, info in invites.items():
                await self._on_invite(room_id, info)
            for room_id in leaves:
                await self.repo.forget_room(room_id)
            await self.repo.record_joins(new_joins)
            for room_id in dict.fromkeys(leave_checks):
                await self._maybe_leave_empty(room_id)
            if room_tasks:
                await asyncio.gather(*room_tasks)
        except Exception:
            log.exception("sync batch %s could not be handled completely", batch.token)
        finally:
            batch.done = True
            await self._store_handled_position()

    async def _store_handled_position(self) -> None:
        """Store the sync token of the last batch that is handled together with all before it:
        a restart replays nothing that was answered and skips nothing that was not."""
        async with self._token_lock:
            token = None
            while self._batches and self._batches[0].done:
                token = self._batches.popleft().token
            if token is not None:
                await self.repo.save_sync_token(token)

    def _join_time(self, room_id: str, info: Any) -> int:
        """Since when the room's messages are meant for the bot: its invitation if the sync
        carries it (Element sends the first message of a new direct chat right after inviting),
        else its join, else now. Anything older is history and never answered."""
        invited = joined = None
        for event in [*info.state, *info.timeline.events]:
            if isinstance(event, RoomMemberEvent) and event.state_key == self.client.user_id:
                if event.membership == "invite":
                    invited = event.server_timestamp
                elif event.membership == "join":
                    joined = event.server_timestamp
        return invited or self._accepted.pop(room_id, None) or joined or self._now_ms()

    async def _handle_room(self, room_id: str, events: list, previous: asyncio.Task | None) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        for event in events:
            try:
                await self._handle_event(room_id, event)
            except Exception:
                log.exception("event %s in %s could not be handled", event.event_id, room_id)

    def _is_fresh(self, room_id: str, timestamp: int) -> bool:
        if timestamp < self._joins.get(room_id, 0):
            return False
        window_ms = int(self.settings.sync.catch_up_minutes * 60_000)
        return timestamp >= self._now_ms() - window_ms

    async def _handle_event(self, room_id: str, event: Any) -> None:
        if event.sender == self.client.user_id or not self._is_fresh(room_id, event.server_timestamp):
            return
        if isinstance(event, MegolmEvent):
            await self._undecryptable(room_id, event)
            return
        source = event.source.get("content", {})
        relates = source.get("m.relates_to") or {}
        if relates.get("rel_type") == "m.replace":
            return  # edits are not new commands
        request = self._request(room_id, event, source, relates)
        if not request.mentions_bot and not self.dispatcher.wants(request):
            # not a command: only a direct chat makes plain text meant for the bot
            if not await self._is_direct(room_id):
                return
            request = replace(request, is_direct=True)
        if event.decrypted and room_id in self._noticed:
            # decryption works again here: a later failure is worth a notice again
            self._noticed.discard(room_id)
            await self.repo.clear_undecryptable_notice(room_id)
        if await self.repo.is_handled(event.event_id):
            return

        async def send(reply: Reply) -> str | None:
            return await self.matrix.send(reply, request)

        try:
            if await self.dispatcher.handle(request, send):
                self.answered += 1
                await self.repo.mark_handled(event.event_id, room_id, self._now_ms())
        finally:
            self.sender.forget(event.event_id)

    def _request(self, room_id: str, event: RoomMessageText, content: dict, relates: dict) -> Request:
        room = self.client.rooms.get(room_id)
        body = strip_reply_fallback(event.body or "")
        me = self.client.user_id
        mentioned = me in ((content.get("m.mentions") or {}).get("user_ids") or [])
        html = content.get("formatted_body") or ""
        if not mentioned and (me in body or f"matrix.to/#/{me}" in html):
            mentioned = True
        if mentioned:
            body = strip_mention(body, me, room.user_name(me) if room is not None else None)
        thread_root = relates.get("event_id") if relates.get("rel_type") == "m.thread" else None
        return Request(
            sender=event.sender,
            room_id=room_id,
            body=body,
            event_id=event.event_id,
            thread_root=thread_root,
            timestamp_ms=event.server_timestamp,
            mentions_bot=mentioned,
        )

    async def _is_direct(self, room_id: str) -> bool:
        """A room with the bot and one other person. Member counts come from sync summaries;
        a room the bot knows no counts for yet costs one members request, once."""
        room = self.client.rooms.get(room_id)
        if room is None:
            return False
        counted = room.summary is not None and room.summary.joined_member_count is not None
        if not counted and not room.members_synced:
            await self.client.joined_members(room_id)
        return room.joined_count <= 2 and room.invited_count == 0

    async def _undecryptable(self, room_id: str, event: MegolmEvent) -> None:
        log.warning("cannot decrypt %s in %s (session %s)", event.event_id, room_id, event.session_id)
        with contextlib.suppress(Exception):
            await self.client.request_room_key(event)
        if not await self.repo.claim_undecryptable_notice(room_id, self._now_ms()):
            return
        self._noticed.add(room_id)
        request = Request(
            sender=event.sender,
            room_id=room_id,
            body="",
            event_id=event.event_id,
            timestamp_ms=event.server_timestamp,
        )
        try:
            await self.matrix.send(Reply("undecryptable"), request)
        except Exception:
            log.exception("could not tell %s about an undecryptable message", room_id)

    async def _on_invite(self, room_id: str, info: Any) -> None:
        inviter = None
        for event in info.invite_state:
            if (
                isinstance(event, InviteMemberEvent)
                and event.state_key == self.client.user_id
                and event.membership == "invite"
            ):
                inviter = event.sender
        server = inviter.split(":", 1)[1] if inviter and ":" in inviter else None
        if server in self.settings.invite_servers:
            response = await self.client.join(room_id)
            if getattr(response, "room_id", None):
                # the next sync dates the invitation; this is the fallback if it cannot
                self._accepted[room_id] = self._now_ms()
                log.info("joined %s on invitation by %s", room_id, inviter)
            else:
                log.warning("could not join %s: %s", room_id, getattr(response, "message", response))
        else:
            log.info("rejecting invitation to %s from %s (server not allowed)", room_id, inviter)
            await self.client.room_leave(room_id)

    async def _maybe_leave_empty(self, room_id: str) -> None:
        if not self.settings.leave_empty_rooms:
            return
        room = self.client.rooms.get(room_id)
        if room is not None and room.joined_count <= 1 and room.invited_count == 0:
            log.info("leaving %s: no one else is left", room_id)
            await self.client.room_leave(room_id)
            await self.client.room_forget(room_id)
            self._joins.pop(room_id, None)
            await self.repo.forget_room(room_id)


async def run_bot(settings: Settings) -> int:
    bot = KleinstadtBot(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, bot.request_stop)
    try:
        await bot.run()
    except LoginFailed as exc:
        log.error("cannot log in: %s", exc)
        return 3
    log.info("kleinstadtbot stopped")
    return 0
