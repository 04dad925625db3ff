"""Reading user text: neutralising characters that spoof, splitting a command line into words
(double quotes, also typographic ones, group words), and the one rule for numbers.

Single quotes are ordinary characters, because names such as "Mont'" or "Hof's" occur and phones
insert apostrophes freely; only double quotes group words.
"""

from __future__ import annotations

import re

OPENING = {'"': '"', "„": "“", "“": "”", "”": "”", "«": "»", "»": "«"}
MAX_COMMAND_LENGTH = 2000


# Unicode's Bidi_Control characters: embeddings, overrides and isolates (U+202A–U+202E,
# U+2066–U+2069) reorder the text around them, so an echo could show reversed text in the bot's
# voice; the marks (U+061C, U+200E, U+200F) are invisible as well and have no use in German.
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# C0 controls except tab and line feed, DEL and C1 controls: ESC (U+001B) drives terminals.
CONTROLS = "".join(chr(c) for c in (*range(0x20), *range(0x7F, 0xA0)) if chr(c) not in "\t\n")
_NEUTRAL: dict[int, str | None] = {
    ord(char): "\n" if char == "\r" else " " if char.isspace() else None for char in BIDI_CONTROLS + CONTROLS
}
# Lone surrogates (a console reading bytes that are not UTF-8, an escape in an event's JSON) can be
# neither stored nor sent: the replacement character shows where something unreadable was.
_NEUTRAL.update(dict.fromkeys(range(0xD800, 0xE000), "\ufffd"))


def neutralise(text: str) -> str:
    """``text`` without the characters that make it display other than it reads.

    Bidirectional formatting characters and control characters are dropped; those that separate
    words stay separators (``\\r\\n`` and ``\\r`` become ``\\n``, vertical tab, form feed and the
    like a space), so "Bad\\x0cBerleburg" is still two words. A lone surrogate becomes U+FFFD, so
    the result can always be encoded (UTF-8, JSON, SQLite).
    """
    return text.replace("\r\n", "\n").translate(_NEUTRAL)


def is_digits(text: str) -> bool:
    """Whether ``text`` is one or more ASCII digits 0–9 and nothing else: the one rule for numbers
    in user input. ``str.isdigit`` is not that rule: it also accepts "²", "①" and the digits of
    other scripts, which ``int`` refuses or reads as a number the user did not see."""
    return text.isascii() and text.isdigit()


def parse_number(text: str, separators: str = ".", max_digits: int = 9) -> int | None:
    """A whole number as people write it: ``42``, ``12000``, or in groups of three with one of
    ``separators`` between them (``12.000``, ``1.234.567``). None for anything else (``1.2.3``,
    ``12.00``, ``-3``, ``1,5``, ``²``) and for more than ``max_digits`` digits."""
    if is_digits(text):
        digits = text
    elif separators and re.fullmatch(f"[0-9]{{1,3}}(?:[{re.escape(separators)}][0-9]{{3}})+", text):
        digits = re.sub(f"[{re.escape(separators)}]", "", text)
    else:
        return None
    if len(digits) > max_digits:
        return None
    return int(digits)


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
