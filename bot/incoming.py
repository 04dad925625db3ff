"""An incoming message event becomes a ``Request`` for the dispatcher.

Only messages meant for the bot are answered: a command (the prefix), a message that mentions
the bot, or plain text in a direct chat. Events from before the bot came into the room or older
than the catch-up window are ignored by timestamp, answered events are recorded, and the bot's
own messages and edits are never commands.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from dataclasses import replace
from html import unescape
from typing import Any

from nio import AsyncClient, MegolmEvent, ReactionEvent, RedactionEvent, RoomMessageText

from bot.encryption import UndecryptableNotices
from bot.membership import Membership
from bot.sending import MessageSender
from commands.context import Clock, MatrixPort, Reaction, Redaction, Reply, Request
from commands.dispatcher import Dispatcher
from config.settings import Settings
from storage.runtime_state import RuntimeStateRepository

log = logging.getLogger(__name__)

# The events routing queues for a room, in order: text messages and encrypted ones (decrypted
# where nio can), reactions and redactions (answers to check-ins, a ✅ on a broadcast preview).
HANDLED_EVENTS = (RoomMessageText, MegolmEvent, ReactionEvent, RedactionEvent)
REPLY_FALLBACK = re.compile(r"^(?:>.*\n)+\n", re.MULTILINE)
# A short leading "Name: " is how clients write a mention of the name they show for the bot.
LEADING_NAME = re.compile(r"^\s*[^:?!.\n]{1,40}:\s+")
ANSWERED_KEPT = 4096  # events this process answered, remembered without asking the database


def strip_mention(body: str, user_id: str, display_name: str | None = None, pill: str | None = None) -> str:
    """The text of a message that mentions the bot, without a leading mention: the bot's Matrix
    ID or the text of a pill linking to it (with or without a colon after it), its display name
    or localpart followed by a colon or comma, or any short leading "Name: " (clients write the
    name they show). Further on, the ID is left alone: there it is an argument, as in
    ``!tandem anlegen @anna:example.org @kleinstadtbot:example.org Wohnen``, which the command
    refuses by name."""
    text = body.strip()
    for name, needs_colon in (
        (user_id, False),
        (pill, False),
        (display_name, True),
        (localpart(user_id), True),
    ):
        if not name or not text.lower().startswith(name.lower()):
            continue
        rest = text[len(name) :]
        if rest[:1] in (":", ","):
            return rest[1:].strip()
        if not needs_colon and (not rest or rest[0].isspace()):
            return rest.strip()
    match = LEADING_NAME.match(text)
    return text[match.end() :].strip() if match else text


def localpart(user_id: str) -> str:
    return user_id.split(":", 1)[0].lstrip("@")


def leading_pill(html: str, user_id: str) -> str | None:
    """The text of a pill for ``user_id`` that starts the HTML body, as plain text."""
    match = re.match(
        rf'\s*(?:<p>\s*)?<a\s+href="https://matrix\.to/#/{re.escape(user_id)}"[^>]*>(.*?)</a>',
        html,
        re.DOTALL,
    )
    if match is None:
        return None
    return unescape(re.sub(r"<[^>]+>", "", match.group(1))).strip() or None


def strip_reply_fallback(body: str) -> str:
    """Remove the quoted "> <@user> …" block that clients put before a reply's text."""
    return REPLY_FALLBACK.sub("", body, count=1) if body.startswith(">") else body


def message_request(
    room_id: str, event: Any, content: dict[str, Any], bot_user: str, display_name: str | None
) -> Request:
    """The ``Request`` for a text message: reply fallback and a leading mention of the bot
    removed, its thread, whether it mentions the bot (``m.mentions``, or the ID or a pill)."""
    body = strip_reply_fallback(getattr(event, "body", "") or "")
    mentioned = bot_user in ((content.get("m.mentions") or {}).get("user_ids") or [])
    html = content.get("formatted_body") or ""
    if not mentioned and (bot_user in body or f"matrix.to/#/{bot_user}" in html):
        mentioned = True
    if mentioned:
        body = strip_mention(body, bot_user, display_name, leading_pill(html, bot_user))
    relates = content.get("m.relates_to") or {}
    thread_root = relates.get("event_id") if relates.get("rel_type") == "m.thread" else None
    reply_to = (relates.get("m.in_reply_to") or {}).get("event_id")
    return Request(
        sender=event.sender,
        room_id=room_id,
        body=body,
        event_id=event.event_id,
        thread_root=thread_root,
        timestamp_ms=event.server_timestamp,
        mentions_bot=mentioned,
        reply_to=reply_to if reply_to != thread_root else None,
    )


class IncomingMessages:
    """Hands each message event meant for the bot to the dispatcher, once."""

    def __init__(
        self,
        client: AsyncClient,
        settings: Settings,
        repo: RuntimeStateRepository,
        sender: MessageSender,
        matrix: MatrixPort,
        membership: Membership,
        notices: UndecryptableNotices,
        clock: Clock,
    ):
        self.client = client
        self.settings = settings
        self.repo = repo
        self.sender = sender
        self.matrix = matrix
        self.membership = membership
        self.notices = notices
        self.clock = clock
        self.dispatcher: Dispatcher | None = None  # set once the bot's local set-up is done
        self.answered = 0  # commands answered since start (for operators and benchmarks)
        self._answered_here: OrderedDict[str, None] = OrderedDict()

    def _now_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)

    def cutoff(self, room_id: str) -> int:
        """Messages older than this (ms) are never answered: they came before the bot came into
        the room, or before the catch-up window."""
        window_ms = int(self.settings.sync.catch_up_minutes * 60_000)
        return max(self.membership.since(room_id), self._now_ms() - window_ms)

    async def handle(self, room_id: str, event: Any, maybe_handled: bool = True) -> None:
        """Answer ``event`` if it is meant for the bot and was not answered yet. ``maybe_handled``
        False: no earlier process can have seen it (``Router.route``), so only this process's
        own answers are looked at, not the database."""
        if not isinstance(event, HANDLED_EVENTS):
            return
        if event.sender == self.client.user_id or event.server_timestamp < self.cutoff(room_id):
            return
        if isinstance(event, MegolmEvent):
            await self.notices.report(room_id, event)
            return
        dispatcher = self.dispatcher
        if dispatcher is None:
            raise RuntimeError("an event arrived before the dispatcher was set up")
        if isinstance(event, ReactionEvent):
            reaction = Reaction(
                event.sender, room_id, event.event_id, event.reacts_to, event.key, event.server_timestamp
            )
            await dispatcher.react(reaction)
            return
        if isinstance(event, RedactionEvent):
            redaction = Redaction(
                event.sender, room_id, event.event_id, event.redacts, event.server_timestamp
            )
            await dispatcher.redact(redaction)
            return
        content = event.source.get("content", {})
        if (content.get("m.relates_to") or {}).get("rel_type") == "m.replace":
            await self._edit(dispatcher, room_id, event, content)  # edits are never new commands
            return
        request = message_request(room_id, event, content, self.client.user_id, self._display_name(room_id))
        if not request.mentions_bot and not dispatcher.wants(request):
            # not a command: only a direct chat makes plain text meant for the bot
            if not await self._is_direct(room_id):
                return
            request = replace(request, is_direct=True)
        if event.decrypted:
            await self.notices.decrypted(room_id)
        if event.event_id in self._answered_here or (
            maybe_handled and await self.repo.is_handled(event.event_id)
        ):
            return

        async def send(reply: Reply) -> str | None:
            return await self.matrix.send(reply, request)

        try:
            if await dispatcher.handle(request, send):
                self.answered += 1
                self._answered_here[event.event_id] = None
                if len(self._answered_here) > ANSWERED_KEPT:
                    self._answered_here.popitem(last=False)
                await self.repo.mark_handled(event.event_id, room_id, self._now_ms())
        finally:
            self.sender.forget(event.event_id)

    async def _edit(self, dispatcher: Dispatcher, room_id: str, event: Any, content: dict[str, Any]) -> None:
        """An edit goes to the families that watch edits (a note on a check-in corrected)."""
        new = content.get("m.new_content") or {}
        original = (content.get("m.relates_to") or {}).get("event_id")
        if not original or not isinstance(new.get("body"), str):
            return
        request = Request(
            sender=event.sender,
            room_id=room_id,
            body=new["body"],
            event_id=event.event_id,
            timestamp_ms=event.server_timestamp,
            replaces=original,
        )

        async def send(reply: Reply) -> str | None:
            return await self.matrix.send(reply, request)

        await dispatcher.handle(request, send)

    def _display_name(self, room_id: str) -> str | None:
        room = self.client.rooms.get(room_id)
        return room.user_name(self.client.user_id) if room is not None else None

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
