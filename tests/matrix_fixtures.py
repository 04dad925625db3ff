"""Real-homeserver test support: a bot running in-process and second Matrix clients.

The clients use access tokens from shared-secret registration (no logins, which Synapse limits
per IP) and bounded HTTP 429/timeout retries, so a rate-limited test fails instead of hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nio import (
    AsyncClient,
    AsyncClientConfig,
    JoinResponse,
    LogoutResponse,
    MegolmEvent,
    RoomCreateError,
    RoomGetStateEventError,
    RoomGetStateResponse,
    RoomMessageNotice,
    RoomMessageText,
    RoomPreset,
    RoomSendError,
    SyncResponse,
)

from bot.catch_up import Gap, fetch_gap
from bot.homeserver import Account, LocalSynapse
from bot.runtime import KleinstadtBot
from commands.context import Clock
from config.settings import Settings

_names = itertools.count(1)
WAIT = 30.0
# The second clients' live syncs: long timelines, so a burst of answers (thirty commands waiting
# in one room) reaches them in full; Synapse's default of 10 would leave a gap (filled if it does).
LIVE_LIMIT = 100
LIVE_FILTER = {"room": {"timeline": {"limit": LIVE_LIMIT}}}
GAP_FILTER = {"types": ["m.room.message", "m.room.encrypted"]}


def unique(prefix: str) -> str:
    return f"{prefix}{next(_names)}"


@dataclass
class RunningBot:
    settings: Settings
    bot: KleinstadtBot
    task: asyncio.Task

    @property
    def user_id(self) -> str:
        return self.settings.user_id

    async def stop(self) -> None:
        self.bot.request_stop()
        await asyncio.wait_for(self.task, WAIT)


async def start_bot(settings: Settings, clock: Clock | None = None) -> RunningBot:
    bot = KleinstadtBot(settings, clock)
    task = asyncio.ensure_future(bot.run())
    ready = asyncio.ensure_future(bot.ready.wait())
    done, _ = await asyncio.wait({task, ready}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    if ready not in done:
        ready.cancel()
        if task.done():
            task.result()  # raise what went wrong
        raise TimeoutError("bot did not become ready")
    return RunningBot(settings, bot, task)


def bot_settings(synapse: LocalSynapse, account: Account, data: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "homeserver": synapse.url,
        "user_id": account.user_id,
        "password": account.password,
        "database": data / "bot.db",
        "coordinators": [],
        "log_level": "DEBUG",
    }
    values.update(overrides)
    if "access_token" in values:
        values.pop("password", None)
    return Settings(**values)


@dataclass
class UserClient:
    """A second Matrix client playing a mayor or a coordinator."""

    account: Account
    client: AsyncClient
    events: list[tuple[str, Any]] = field(default_factory=list)
    task: asyncio.Task | None = None
    _since: str | None = None  # the live syncs' position
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def user_id(self) -> str:
        return self.account.user_id

    async def start(self) -> UserClient:
        self.client.add_event_callback(self._on_event, (RoomMessageNotice, RoomMessageText, MegolmEvent))
        await self.client.sync(timeout=0, full_state=True)
        if self.client.should_upload_keys:
            await self.client.keys_upload()
        self._since = self.client.next_batch
        self.client.add_response_callback(self._on_sync, SyncResponse)
        self.task = asyncio.ensure_future(self.client.sync_forever(timeout=1000, sync_filter=LIVE_FILTER))
        return self

    async def _on_event(self, room: Any, event: Any) -> None:
        async with self._changed:
            self.events.append((room.room_id, event))
            self._changed.notify_all()

    async def _on_sync(self, response: SyncResponse) -> None:
        """A live timeline that still came back limited (a burst of more than ``LIVE_LIMIT``
        events between two syncs of a slow client) misses events: they are fetched and put
        before the timeline's, so this client, like Element, sees every event of the room."""
        since, self._since = self._since, response.next_batch
        for room_id, info in response.rooms.join.items():
            if info.timeline.limited and info.timeline.prev_batch and since:
                await self._fill_gap(room_id, info.timeline, since)

    async def _fill_gap(self, room_id: str, timeline: Any, since: str) -> None:
        gap = await fetch_gap(self.client, Gap(room_id, timeline.prev_batch, since, 0), GAP_FILTER)
        shown = {event.event_id for event in timeline.events}
        async with self._changed:
            at = next(
                (n for n, (r, e) in enumerate(self.events) if r == room_id and e.event_id in shown),
                len(self.events),
            )
            seen = (RoomMessageNotice, RoomMessageText, MegolmEvent)
            self.events[at:at] = [(room_id, event) for event in gap if isinstance(event, seen)]
            self._changed.notify_all()

    async def close(self) -> None:
        if self.task:
            self.client.stop_sync_forever()
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task
        await self.client.close()

    async def create_room(
        self, invite: list[str], encrypted: bool = False, direct: bool = True, name: str | None = None
    ) -> str:
        state = (
            [{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}]
            if encrypted
            else []
        )
        response = await self.client.room_create(
            name=name,
            invite=invite,
            is_direct=direct,
            initial_state=state,
            preset=RoomPreset.trusted_private_chat if direct else RoomPreset.private_chat,
        )
        assert not isinstance(response, RoomCreateError), response
        # nio encrypts (or decides not to) from its own view of the room: wait for the sync that
        # brings it, or a message sent at once fails with KeyError in room_send
        deadline = asyncio.get_running_loop().time() + WAIT
        while response.room_id not in self.client.rooms:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{response.room_id} never came in this client's sync")
            await asyncio.sleep(0.02)
        return response.room_id

    async def wait_joined(self, room_id: str, user_id: str, timeout: float = WAIT) -> None:
        """Until this client's own sync shows ``user_id`` joined (the homeserver has it then too),
        so a message to an encrypted room is encrypted for the new member's devices."""
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            room = self.client.rooms.get(room_id)
            if room is not None and user_id in room.users and user_id not in room.invited_users:
                return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"{user_id} did not join {room_id}")

    async def dm(self, bot_user: str, encrypted: bool = False) -> str:
        room_id = await self.create_room([bot_user], encrypted=encrypted)
        await self.wait_joined(room_id, bot_user)
        return room_id

    async def send(
        self, room_id: str, body: str, thread_root: str | None = None, html: str | None = None
    ) -> str:
        content: dict[str, Any] = {"msgtype": "m.text", "body": body}
        if html:
            content.update(format="org.matrix.custom.html", formatted_body=html)
        if thread_root:
            content["m.relates_to"] = {"rel_type": "m.thread", "event_id": thread_root}
        response = await self.client.room_send(
            room_id, "m.room.message", content, ignore_unverified_devices=True
        )
        assert not isinstance(response, RoomSendError), response
        return response.event_id

    def notices(self, room_id: str, sender: str | None = None) -> list[Any]:
        return [
            e
            for r, e in self.events
            if r == room_id and isinstance(e, RoomMessageNotice) and (sender is None or e.sender == sender)
        ]

    def replies_to(self, room_id: str, event_id: str) -> list[Any]:
        return [e for e in self.notices(room_id) if _in_reply_to(e) == event_id]

    async def wait_reply(self, room_id: str, event_id: str, timeout: float = WAIT) -> Any:
        """The bot's notice that answers ``event_id``."""

        async def found() -> Any:
            async with self._changed:
                while not self.replies_to(room_id, event_id):
                    await self._changed.wait()
                return self.replies_to(room_id, event_id)[0]

        return await asyncio.wait_for(found(), timeout)

    async def wait_notice(self, room_id: str, predicate: Any, timeout: float = WAIT) -> Any:
        async def found() -> Any:
            async with self._changed:
                while True:
                    for event in self.notices(room_id):
                        if predicate(event):
                            return event
                    await self._changed.wait()

        return await asyncio.wait_for(found(), timeout)

    async def ask(self, room_id: str, body: str, timeout: float = WAIT, **kwargs: Any) -> Any:
        """Send ``body`` and return the bot's answer to it."""
        event_id = await self.send(room_id, body, **kwargs)
        return await self.wait_reply(room_id, event_id, timeout)

    async def join(self, room_id: str, timeout: float = WAIT) -> None:
        """Accept an invitation and wait until this client's own sync shows the room joined
        (then a message to an encrypted room can be encrypted)."""
        response = await self.client.join(room_id)
        assert isinstance(response, JoinResponse), response
        deadline = asyncio.get_running_loop().time() + timeout
        while self.user_id not in getattr(self.client.rooms.get(room_id), "users", {}):
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{self.user_id} did not see itself join {room_id}")
            await asyncio.sleep(0.1)

    async def state(self, room_id: str, event_type: str, state_key: str = "") -> dict[str, Any] | None:
        """The content of a state event as the homeserver has it now; None if there is none."""
        response = await self.client.room_get_state_event(room_id, event_type, state_key)
        if isinstance(response, RoomGetStateEventError):
            assert response.status_code == "M_NOT_FOUND", response
            return None
        return response.content

    async def member_event(self, room_id: str, user_id: str) -> dict[str, Any]:
        """The whole current ``m.room.member`` event of ``user_id`` (who sent it, the reason)."""
        response = await self.client.room_get_state(room_id)
        assert isinstance(response, RoomGetStateResponse), response
        for event in response.events:
            if event["type"] == "m.room.member" and event["state_key"] == user_id:
                return event
        raise AssertionError(f"{user_id} has no membership in {room_id}")


@dataclass
class LimitedHomeserver:
    """A Synapse with its default rate limits and an admin who may lift them for an account
    (the admin API operators use, ``override_ratelimit``): set-up runs exempt, the test not."""

    synapse: LocalSynapse
    admin: Account

    def exempt(self, user_id: str, messages_per_second: int = 0, burst_count: int = 0) -> None:
        self.synapse.override_ratelimit(user_id, self.admin.access_token, messages_per_second, burst_count)

    def limit(self, user_id: str) -> None:
        self.synapse.clear_ratelimit_override(user_id, self.admin.access_token)


async def sign_out(homeserver: str, user_id: str, device_id: str, token: str) -> None:
    """What "sign out" of the bot's session in Element does: the token, the device and the
    device's keys are deleted on the server."""
    client = AsyncClient(homeserver, user_id)
    client.restore_login(user_id, device_id, token)
    try:
        assert isinstance(await client.logout(), LogoutResponse)
    finally:
        await client.close()


def assert_answers(answer: Any, command_id: str, sender: str) -> None:
    """The bot's conventions for an answer: an ``m.notice`` with HTML and plain text that
    replies to the command and mentions its sender."""
    content = answer.source["content"]
    assert content["msgtype"] == "m.notice", content
    assert content["format"] == "org.matrix.custom.html" and content["formatted_body"].strip()
    assert content["body"].strip() and content["body"] != content["formatted_body"]
    assert _in_reply_to(answer) == command_id
    assert sender in content["m.mentions"]["user_ids"]


def _in_reply_to(event: Any) -> str | None:
    relates = event.source.get("content", {}).get("m.relates_to") or {}
    return (relates.get("m.in_reply_to") or {}).get("event_id")


async def user_client(synapse: LocalSynapse, account: Account, store: Path) -> UserClient:
    store.mkdir(parents=True, exist_ok=True)
    client = AsyncClient(
        synapse.url,
        account.user_id,
        device_id=account.device_id,
        store_path=str(store),
        config=AsyncClientConfig(
            encryption_enabled=True,
            store_sync_tokens=False,
            max_limit_exceeded=3,
            max_timeouts=3,
            request_timeout=30,
        ),
    )
    client.restore_login(account.user_id, account.device_id, account.access_token)
    return await UserClient(account, client).start()
