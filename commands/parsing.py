"""Splitting a command line into words, with double quotes (also typographic ones) grouping.

Single quotes are ordinary characters, because names such as "Mont'" or "Hof's" occur and phones
insert apostrophes freely; only double quotes group words.
"""

from __future__ import annotations

OPENING = {'"': '"', "„": "“", "“": "”", "”": "”", "«": "»", "»": "«"}
MAX_COMMAND_LENGTH = 2000


class QuoteError(ValueError):
    """A quote was opened and never closed."""


def split_words(text: str) -> list[str]:
    words: list[str] = []
    current: list[str] = []
    in_word = False
    closing: str | None = None
    for char in text:
        if closing is not None:
            if char == closing or (char in '"”“' and closing in '"”“'):
                closing = None
            else:
                current.append(char)
            continue
        if char in OPENING:
            closing = OPENING[char]
            in_word = True
        elif char.isspace():
            if in_word:
                words.append("".join(current))
                current, in_word = [], False
        else:
            current.append(char)
            in_word = True
    if closing is not None:
        raise QuoteError(text)
    if in_word:
        words.append("".join(current))
    return words


def split_command(body: str, prefix: str) -> tuple[str, list[str]] | None:
    """``"!eligible Bad Berleburg"`` → ``("eligible", ["Bad", "Berleburg"])``; None if no command."""
    text = body.strip()
    if not text.startswith(prefix):
        return None
    text = text[len(prefix) :]
    if not text or text[0].isspace():
        return None
    words = split_words(text)
    if not words:
        return None
    return words[0].lower(), words[1:]
