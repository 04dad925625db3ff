"""``kleinstadtbot console``: talk to the bot in the terminal, no homeserver needed.

The same dispatcher, handlers and templates as in Matrix; replies are printed as plain text.
One command per line from standard input, so it works interactively and in a pipe. A command
that fails is answered with the dispatcher's error notice like in Matrix, and the console reads
on; nothing it prints carries control characters (no ESC reaches the terminal) or bidi overrides.
Bytes that are not valid in the terminal's encoding are read and written as U+FFFD (a strict
decoder would end the console on the first such byte).
"""

from __future__ import annotations

import asyncio
import io
import itertools
import sys
import time
from typing import TextIO

from bot.app import build_dispatcher, build_renderer, config_roles, open_database
from bot.local import LocalMatrix, SentMessage
from commands.context import Reply, Request
from commands.parsing import neutralise
from config.settings import Settings

CONSOLE_ROOM = "!console:localhost"


async def run_console(
    settings: Settings, as_user: str | None = None, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout
) -> int:
    user = as_user or (settings.coordinators[0] if settings.coordinators else "@gast:localhost")
    bot_user = settings.user_id or "@kleinstadtbot:localhost"
    renderer = build_renderer(settings)
    interactive = stdin.isatty()
    for stream in (stdin, stdout):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="replace")

    def show(message: SentMessage) -> None:
        where = "" if message.room_id == CONSOLE_ROOM else f"[{message.room_id}] "
        stdout.write(neutralise(f"{where}{message.body}") + "\n\n")
        stdout.flush()

    db = await open_database(settings)
    try:
        matrix = LocalMatrix(bot_user, renderer, on_send=show)
        dispatcher = build_dispatcher(settings, db, matrix, config_roles(settings))
        if interactive:
            stdout.write(
                f"kleinstadtbot – Konsole. Sie schreiben als {user}. "
                f"Beenden mit Strg-D.\n{settings.command_prefix}hilfe zeigt alle Befehle.\n\n"
            )
        counter = itertools.count(1)
        loop = asyncio.get_running_loop()
        while True:
            if interactive:
                stdout.write("> ")
                stdout.flush()
            line = await loop.run_in_executor(None, stdin.readline)
            if not line:
                break
            text = line.strip()
            if not text:
                continue
            request = Request(
                sender=user,
                room_id=CONSOLE_ROOM,
                body=text,
                event_id=f"$console{next(counter)}",
                timestamp_ms=int(time.time() * 1000),
                is_direct=True,
            )

            async def send(reply: Reply, request: Request = request) -> str | None:
                return await matrix.send(reply, request)

            await dispatcher.handle(request, send)
    finally:
        await db.close()
    return 0
