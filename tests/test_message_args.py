"""Commands that take a message (``Arg`` kind ``message``): the first line is read as words, the
lines after it reach the handler exactly as written, however long, with quotes and Markdown."""

from __future__ import annotations

from commands.parsing import MAX_COMMAND_LENGTH
from commands.registry import Arg

COORD = "@koordination:localhost"


async def test_the_lines_after_the_command_line_arrive_as_written(local_bot, declare):
    seen: list[tuple[str, str | None]] = []

    @declare(
        "ansage",
        summary="test",
        args=[Arg("target", "word"), Arg("text", "message", label="Text")],
    )
    async def announce(ctx, target: str, text: str | None) -> None:
        seen.append((target, text))
        await ctx.reply("ping")

    long_text = '**Einladung** zur „Transferwerkstatt“ – bitte "anmelden"\n\n- eins\n- zwei\n' + (
        "x" * (MAX_COMMAND_LENGTH * 3)
    )
    await local_bot.say(f"!ansage tandems\n{long_text}")
    assert seen == [("tandems", long_text.rstrip("\n"))]
    # without lines after it the message is missing: the usage reply names it with its line break
    refused = await local_bot.text("!ansage tandems")
    assert "Es fehlt noch eine Angabe" in refused and "↵ <Text>" in refused
    assert len(seen) == 1
    # an unclosed quote in the message is text, not a broken command line
    await local_bot.say("!ansage alle\nSie sagte „bis morgen")
    assert seen[-1] == ("alle", "Sie sagte „bis morgen")
    # the command line itself keeps the length limit of every command
    refused = await local_bot.text("!ansage " + "x" * MAX_COMMAND_LENGTH + "\nText")
    assert "zu lang" in refused and len(seen) == 2


async def test_other_commands_still_read_every_line_as_words(local_bot, declare):
    seen: list[str] = []

    @declare("echo2", summary="test", args=[Arg("words", "text")])
    async def echo(ctx, words: str) -> None:
        seen.append(words)
        await ctx.reply("ping")

    await local_bot.say("!echo2 eins\nzwei")
    assert seen == ["eins zwei"]
    refused = await local_bot.text("!echo2 " + "x " * MAX_COMMAND_LENGTH)
    assert "zu lang" in refused and len(seen) == 1
