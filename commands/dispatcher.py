"""One way through for every message: find the command, check role and rate, bind, run.

Transports (Matrix runtime, console, tests) call ``Dispatcher.handle`` with a ``Request`` and a
``send`` callable; the dispatcher writes every refusal and error itself, so handlers contain no
permission, parsing or error-reporting code. It is also the request boundary: the body is
neutralised (``commands.parsing.neutralise``) before anything reads, stores or echoes it.

And it is the one place where every command's outcome is known (``Handled``): answered,
refused (role), usage error, rate limited or failed. Each handled command is one log line
(command, outcome, duration, sender's Matrix ID; never the text), is counted by the transport's
listeners (``bot.metrics``), and a command declared ``audited`` is recorded in the audit trail
(``storage.audit``).
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from commands.context import Context, Reaction, Redaction, Reply, Request, Role, Services, SessionLost
from commands.parsing import MAX_COMMAND_LENGTH, QuoteError, neutralise, split_command
from commands.ratelimit import RateLimiter, Verdict
from commands.registry import REGISTRY, Arg, Command, Handler, Registry, UsageError
from storage.audit import AuditRepository

log = logging.getLogger(__name__)

RoleResolver = Callable[[str], Awaitable[Role]]
Send = Callable[[Reply], Awaitable[str | None]]
UNKNOWN = "unknown"  # a command word nobody declared (or none could be read)
PLAIN_TEXT = "plain_text"  # a question in plain words (the FAQ)


@dataclass
class Handled:
    """What became of one request for the bot."""

    request: Request
    command: str | None = None  # Command.words, UNKNOWN or PLAIN_TEXT; None: not a command
    outcome: str = "answered"  # answered, refused, usage_error, rate_limited, failed
    seconds: float = 0.0
    cmd: Command | None = None
    words: list[str] = field(default_factory=list)
    values: dict[str, Any] | None = None
    ctx: Context | None = None

    def detail(self) -> dict[str, Any]:
        """What the audit trail keeps of the arguments: the bound values, a message argument
        as its length only; the words as typed where they could not be bound."""
        if self.values is None:
            return {"words": " ".join(self.words)} if self.words else {}
        kinds = {arg.name: arg.kind for arg in self.cmd.args} if self.cmd else {}
        return {
            name: (f"<{len(value)} characters>" if kinds.get(name) == "message" else value)
            for name, value in self.values.items()
            if value is not None
        }


class Dispatcher:
    def __init__(
        self,
        services: Services,
        role_of: RoleResolver,
        registry: Registry = REGISTRY,
    ):
        self.services = services
        self.role_of = role_of
        self.registry = registry
        limits = services.settings.rate_limit
        self.limiter = RateLimiter(limits.commands, limits.window_seconds)
        self.listeners: list[Callable[[Handled], None]] = []  # told of every handled command
        self.audit = AuditRepository(services.db)

    @property
    def locale(self) -> str:
        return self.services.settings.locale

    def wants(self, request: Request) -> bool:
        """Whether ``request`` is for the bot at all (cheap; no I/O)."""
        if request.is_direct or request.mentions_bot:
            return True
        if request.replaces is not None or request.thread_root or request.reply_to:
            self.registry.complete()  # every family's watchers (commands.load_families)
        if request.replaces is not None:
            return bool(self.registry.edits)
        if (request.thread_root or request.reply_to) and self.registry.thread_replies:
            return True
        return neutralise(request.body).lstrip().startswith(self.services.settings.command_prefix)

    async def handle(self, request: Request, send: Send) -> bool:
        """Answer ``request`` if it is for the bot. Returns True when it was handled.

        Nothing raises out of here: whatever fails while answering a request for the bot (reading
        the command, the role lookup, binding the arguments, the handler) is logged with the event
        ID and answered with the generic error notice, so no command is left without a reply and
        no transport loop ends. The one exception is ``SessionLost``: the homeserver no longer
        accepts the bot's token, so no notice could go out either; it is raised to the transport,
        which leaves the request unanswered for a replay after the bot has logged in again."""
        request = replace(request, body=neutralise(request.body))
        if request.replaces is not None:  # an edit is never a command
            self.registry.complete()
            return await self._watch(self.registry.edits, request)
        handled = Handled(request)
        started = time.perf_counter()
        try:
            answered = await self._answer(request, send, handled)
        except SessionLost:
            raise
        except Exception as exc:
            if not self.wants(request):
                log.exception(
                    "could not read a message (room %s, event %s)", request.room_id, request.event_id
                )
                return False
            handled.command = handled.command or UNKNOWN
            handled.outcome = "failed"
            await self._report_failure(self._context(request, Role.MEMBER, None, send), exc)
            answered = True
        if answered and handled.command is not None:
            handled.seconds = time.perf_counter() - started
            await self._handled(handled)
        return answered

    async def _answer(self, request: Request, send: Send, handled: Handled) -> bool:
        prefix = self.services.settings.command_prefix
        body, message = self._message_part(request.body, prefix)
        if len(body) > MAX_COMMAND_LENGTH and body.lstrip().startswith(prefix):
            handled.command, handled.outcome = UNKNOWN, "usage_error"
            if not await self._rate_ok(request, send, handled):
                return True
            await self._context(request, Role.MEMBER, None, send).reply(
                "error_too_long", limit=MAX_COMMAND_LENGTH
            )
            return True
        try:
            parsed = split_command(body, prefix)
        except QuoteError:
            handled.command, handled.outcome = UNKNOWN, "usage_error"
            if not await self._rate_ok(request, send, handled):
                return True
            await self._context(request, Role.MEMBER, None, send).reply("error_quote")
            return True
        if parsed is None:
            return await self._plain_text(request, send, handled)
        word, words = parsed
        found = self.registry.find(word)
        handled.command = found.words if found else UNKNOWN
        if not await self._rate_ok(request, send, handled):
            return True
        role = await self.role_of(request.sender)
        cmd = found
        if cmd is None or (cmd.hidden and cmd.role > role):
            handled.command, handled.outcome = UNKNOWN, "usage_error"
            await self._context(request, role, None, send).reply(
                "error_unknown_command",
                word=word,
                suggestions=self.registry.suggest(word, role, prefix),
            )
            return True
        cmd, words, typed = self._resolve_subcommand(cmd, word, words)
        ctx = self._context(request, role, cmd, send, typed)
        handled.command, handled.cmd, handled.words, handled.ctx = cmd.words, cmd, words, ctx
        if cmd.handler is None:
            await ctx.reply("help_command", **self.registry.describe(cmd, role, prefix, self.locale, typed))
            return True
        if role < cmd.role:
            handled.outcome = "refused"
            await ctx.reply(
                "error_denied", needed=cmd.role.label, usage=cmd.usage(prefix, self.locale, typed)
            )
            return True
        try:
            values = cmd.bind(words, message)
        except UsageError as exc:
            handled.outcome = "usage_error"
            await ctx.reply(
                "error_usage",
                problem=exc.problem,
                detail={k: v.usage(self.locale) if isinstance(v, Arg) else v for k, v in exc.detail.items()},
                usage=cmd.usage(prefix, self.locale, typed),
                examples=cmd.example_lines(prefix, self.locale, typed)[:3],
                help_word=prefix + self._help_word() + " " + typed[0],
            )
            return True
        handled.values = values
        if not await self._run(ctx, cmd.handler, values):
            handled.outcome = "failed"
        return True

    # --- pieces ---------------------------------------------------------------------------

    def _context(
        self, request: Request, role: Role, cmd: Command | None, send: Send, typed: tuple[str, ...] = ()
    ) -> Context:
        return Context(request, role, self.locale, self.services, cmd, send, typed=typed)

    async def _rate_ok(self, request: Request, send: Send, handled: Handled) -> bool:
        verdict = self.limiter.check(request.sender, self.services.clock.monotonic())
        if verdict is Verdict.ALLOW:
            return True
        handled.outcome = "rate_limited"
        if verdict is Verdict.WARN:
            wait = self.limiter.retry_after(request.sender, self.services.clock.monotonic())
            await self._context(request, Role.MEMBER, None, send).reply(
                "error_rate_limited", seconds=max(1, round(wait))
            )
        return False

    async def _plain_text(self, request: Request, send: Send, handled: Handled) -> bool:
        self.registry.complete()  # the families' watchers and the plain-text handler
        if (request.thread_root or request.reply_to) and await self._watch(
            self.registry.thread_replies, request
        ):
            return True  # it answered something of a family's (a note on a check-in)
        if not (request.is_direct or request.mentions_bot):
            return False
        handled.command = PLAIN_TEXT
        if not await self._rate_ok(request, send, handled):
            return True
        role = await self.role_of(request.sender)
        ctx = self._context(request, role, None, send)
        handler = self.registry.plain_text
        try:
            if handler is not None and await handler(ctx):
                return True
        except SessionLost:
            raise
        except Exception as exc:  # a broken plain-text handler must not kill the sync loop
            handled.outcome = "failed"
            await self._report_failure(ctx, exc)
            return True
        help_word = self.services.settings.command_prefix + self._help_word()
        await ctx.reply("plain_text_fallback", help_word=help_word)
        return True

    def _message_part(self, body: str, prefix: str) -> tuple[str, str | None]:
        """A command that takes a message (``Arg`` kind ``message``) reads only its first line as
        words; the lines after it are the message, exactly as written. Other commands read the
        whole body."""
        head, newline, rest = body.lstrip().partition("\n")
        if not newline:
            return body, None
        try:
            parsed = split_command(head, prefix)
        except QuoteError:
            return body, None
        cmd = self.registry.find(parsed[0]) if parsed else None
        if parsed is None or cmd is None:
            return body, None
        cmd, _, _ = self._resolve_subcommand(cmd, parsed[0], parsed[1])
        return (head, rest) if cmd.takes_message() else (body, None)

    def _resolve_subcommand(
        self, cmd: Command, word: str, words: list[str]
    ) -> tuple[Command, list[str], tuple[str, ...]]:
        """The subcommand the words name, the remaining words, and the command's words as the
        sender typed them (usage lines and examples repeat them)."""
        typed = [word]
        while words and cmd.subcommands:
            sub = cmd.subcommands.get(words[0].lower())
            if sub is None:
                break
            typed.append(words[0].lower())
            cmd, words = sub, words[1:]
        return cmd, words, tuple(typed)

    async def _run(self, ctx: Context, handler: Handler, values: dict[str, Any]) -> bool:
        """Run the handler; False when it failed (reported to the sender)."""
        try:
            await handler(ctx, **values)
        except SessionLost:
            raise
        except Exception as exc:
            await self._report_failure(ctx, exc)
            return False
        return True

    async def _handled(self, handled: Handled) -> None:
        """One log line, the listeners (metrics), and the audit trail for an audited command.
        The log line names the command, never the text: the sender's Matrix ID is the only
        personal data in it (docs/operations.md, "Logs")."""
        request = handled.request
        log.info(
            "command %s %s in %.0f ms (sender %s, room %s, event %s)",
            handled.command,
            handled.outcome,
            handled.seconds * 1000,
            request.sender,
            request.room_id,
            request.event_id,
            extra={
                "command": handled.command,
                "outcome": handled.outcome,
                "duration_ms": round(handled.seconds * 1000, 1),
                "sender": request.sender,
                "room_id": request.room_id,
                "event_id": request.event_id,
            },
        )
        for listener in self.listeners:
            try:
                listener(handled)
            except Exception:
                log.exception("a listener failed on command %s", handled.command)
        if handled.cmd is not None and handled.cmd.audited:
            await self._record(handled)

    async def _record(self, handled: Handled) -> None:
        assert handled.cmd is not None
        try:
            detail = handled.detail()
            json.dumps(detail)  # arguments are words and numbers; anything else becomes text
        except (TypeError, ValueError):
            detail = {k: str(v) for k, v in handled.detail().items()}
        try:
            await self.audit.record(
                actor=handled.request.sender,
                action=handled.cmd.words,
                outcome=handled.outcome,
                at=self.services.clock.now(),
                detail=detail,
                result=[reply.template for reply in handled.ctx.sent] if handled.ctx else [],
                room_id=handled.request.room_id,
            )
        except Exception:  # the command happened; a full disk must not turn it into an error reply
            log.exception("could not record command %s in the audit trail", handled.cmd.words)

    async def _report_failure(self, ctx: Context, exc: Exception) -> None:
        ref = secrets.token_hex(4)
        log.error(
            "command failed (ref %s, command %s, room %s, event %s)",
            ref,
            ctx.command.name if ctx.command else "-",
            ctx.request.room_id,
            ctx.request.event_id,
            exc_info=exc,
        )
        try:
            await ctx.reply("error_internal", ref=ref)
        except SessionLost:
            raise
        except Exception:
            log.exception("could not report failure %s", ref)

    def _help_word(self) -> str:
        help_cmd = self.registry.find("help")
        return help_cmd.display_name(self.locale) if help_cmd else "help"

    # --- what families watch besides commands ------------------------------------------------

    async def react(self, reaction: Reaction) -> bool:
        """A reaction; True when a family took it (e.g. an answer to a check-in)."""
        self.registry.complete()
        return await self._watch(self.registry.reactions, reaction)

    async def redact(self, redaction: Redaction) -> bool:
        self.registry.complete()
        return await self._watch(self.registry.redactions, redaction)

    async def _watch(self, watchers: list[Callable[[Services, Any], Awaitable[bool]]], event: Any) -> bool:
        """Offer ``event`` to each watcher until one takes it. A failing watcher is logged and
        never ends the transport's loop."""
        for watcher in watchers:
            try:
                if await watcher(self.services, event):
                    return True
            except SessionLost:
                raise
            except Exception:  # the event's ID, never its text (a Request carries the body)
                log.exception(
                    "%s could not handle %s %s",
                    getattr(watcher, "__name__", watcher),
                    type(event).__name__,
                    getattr(event, "event_id", "-"),
                )
        return False
