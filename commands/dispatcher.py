"""One way through for every message: find the command, check role and rate, bind, run.

Transports (Matrix runtime, console, tests) call ``Dispatcher.handle`` with a ``Request`` and a
``send`` callable; the dispatcher writes every refusal and error itself, so handlers contain no
permission, parsing or error-reporting code. It is also the request boundary: the body is
neutralised (``commands.parsing.neutralise``) before anything reads, stores or echoes it.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from commands.context import Context, Reaction, Redaction, Reply, Request, Role, Services
from commands.parsing import MAX_COMMAND_LENGTH, QuoteError, neutralise, split_command
from commands.ratelimit import RateLimiter, Verdict
from commands.registry import REGISTRY, Arg, Command, Handler, Registry, UsageError

log = logging.getLogger(__name__)

RoleResolver = Callable[[str], Awaitable[Role]]
Send = Callable[[Reply], Awaitable[str | None]]


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

    @property
    def locale(self) -> str:
        return self.services.settings.locale

    def wants(self, request: Request) -> bool:
        """Whether ``request`` is for the bot at all (cheap; no I/O)."""
        if request.is_direct or request.mentions_bot:
            return True
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
        no transport loop ends."""
        request = replace(request, body=neutralise(request.body))
        if request.replaces is not None:  # an edit is never a command
            return await self._watch(self.registry.edits, request)
        try:
            return await self._answer(request, send)
        except Exception as exc:
            if not self.wants(request):
                log.exception(
                    "could not read a message (room %s, event %s)", request.room_id, request.event_id
                )
                return False
            await self._report_failure(self._context(request, Role.MEMBER, None, send), exc)
            return True

    async def _answer(self, request: Request, send: Send) -> bool:
        prefix = self.services.settings.command_prefix
        body, message = self._message_part(request.body, prefix)
        if len(body) > MAX_COMMAND_LENGTH and body.lstrip().startswith(prefix):
            if not await self._rate_ok(request, send):
                return True
            await self._context(request, Role.MEMBER, None, send).reply(
                "error_too_long", limit=MAX_COMMAND_LENGTH
            )
            return True
        try:
            parsed = split_command(body, prefix)
        except QuoteError:
            if not await self._rate_ok(request, send):
                return True
            await self._context(request, Role.MEMBER, None, send).reply("error_quote")
            return True
        if parsed is None:
            return await self._plain_text(request, send)
        if not await self._rate_ok(request, send):
            return True
        word, words = parsed
        role = await self.role_of(request.sender)
        cmd = self.registry.find(word)
        if cmd is None or (cmd.hidden and cmd.role > role):
            await self._context(request, role, None, send).reply(
                "error_unknown_command",
                word=word,
                suggestions=self.registry.suggest(word, role, prefix),
            )
            return True
        cmd, words, typed = self._resolve_subcommand(cmd, word, words)
        ctx = self._context(request, role, cmd, send, typed)
        if cmd.handler is None:
            await ctx.reply("help_command", **self.registry.describe(cmd, role, prefix, self.locale, typed))
            return True
        if role < cmd.role:
            await ctx.reply(
                "error_denied", needed=cmd.role.label, usage=cmd.usage(prefix, self.locale, typed)
            )
            return True
        try:
            values = cmd.bind(words, message)
        except UsageError as exc:
            await ctx.reply(
                "error_usage",
                problem=exc.problem,
                detail={k: v.usage(self.locale) if isinstance(v, Arg) else v for k, v in exc.detail.items()},
                usage=cmd.usage(prefix, self.locale, typed),
                examples=cmd.example_lines(prefix, self.locale, typed)[:3],
                help_word=prefix + self._help_word() + " " + typed[0],
            )
            return True
        await self._run(ctx, cmd.handler, values)
        return True

    # --- pieces ---------------------------------------------------------------------------

    def _context(
        self, request: Request, role: Role, cmd: Command | None, send: Send, typed: tuple[str, ...] = ()
    ) -> Context:
        return Context(request, role, self.locale, self.services, cmd, send, typed=typed)

    async def _rate_ok(self, request: Request, send: Send) -> bool:
        verdict = self.limiter.check(request.sender, self.services.clock.monotonic())
        if verdict is Verdict.ALLOW:
            return True
        if verdict is Verdict.WARN:
            wait = self.limiter.retry_after(request.sender, self.services.clock.monotonic())
            await self._context(request, Role.MEMBER, None, send).reply(
                "error_rate_limited", seconds=max(1, round(wait))
            )
        return False

    async def _plain_text(self, request: Request, send: Send) -> bool:
        if (request.thread_root or request.reply_to) and await self._watch(
            self.registry.thread_replies, request
        ):
            return True  # it answered something of a family's (a note on a check-in)
        if not (request.is_direct or request.mentions_bot):
            return False
        if not await self._rate_ok(request, send):
            return True
        role = await self.role_of(request.sender)
        ctx = self._context(request, role, None, send)
        handler = self.registry.plain_text
        try:
            if handler is not None and await handler(ctx):
                return True
        except Exception as exc:  # a broken plain-text handler must not kill the sync loop
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

    async def _run(self, ctx: Context, handler: Handler, values: dict[str, Any]) -> None:
        try:
            await handler(ctx, **values)
        except Exception as exc:
            await self._report_failure(ctx, exc)

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
        except Exception:
            log.exception("could not report failure %s", ref)

    def _help_word(self) -> str:
        help_cmd = self.registry.find("help")
        return help_cmd.display_name(self.locale) if help_cmd else "help"

    # --- what families watch besides commands ------------------------------------------------

    async def react(self, reaction: Reaction) -> bool:
        """A reaction; True when a family took it (e.g. an answer to a check-in)."""
        return await self._watch(self.registry.reactions, reaction)

    async def redact(self, redaction: Redaction) -> bool:
        return await self._watch(self.registry.redactions, redaction)

    async def _watch(self, watchers: list[Callable[[Services, Any], Awaitable[bool]]], event: Any) -> bool:
        """Offer ``event`` to each watcher until one takes it. A failing watcher is logged and
        never ends the transport's loop."""
        for watcher in watchers:
            try:
                if await watcher(self.services, event):
                    return True
            except Exception:
                log.exception("%s could not handle %s", getattr(watcher, "__name__", watcher), event)
        return False
