"""Property-based tests (Hypothesis) of everything that reads user input.

- every declared command and subcommand's argument binder, with words shaped for its ``Arg``
  kinds and words of any Unicode: it returns values of the declared kinds or a ``UsageError``,
  nothing else;
- the number rule, the command splitter and ``neutralise``;
- the whole dispatcher with the real handlers and templates (``tests/local_bot.py``): any Unicode
  text up to the length limit and a little beyond, as a member or a coordinator, in a direct chat
  or a group. No exception escapes, no command ends in the generic error notice (that is a handler
  that raised), a command gets exactly one reply, group chatter none, and no reply carries bidi
  formatting or control characters.

Examples are derandomised (the same ones on every run, no example database), so CI is repeatable;
the budget (``max_examples``) keeps the file at a few seconds of work per property.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from commands import load_families
from commands.parsing import (
    BIDI_CONTROLS,
    CONTROLS,
    MAX_COMMAND_LENGTH,
    QuoteError,
    is_digits,
    neutralise,
    parse_number,
    split_command,
)
from commands.registry import MAX_TEXT_ARG, MXID_RE, REGISTRY, Arg, Command, UsageError
from tests.local_bot import make_local_bot

load_families()

SPOOFING = set(BIDI_CONTROLS + CONTROLS)
COORD = "@koordination:localhost"
MAYOR = "@buergermeisterin:localhost"
USAGE_PROBLEMS = {"missing", "extra", "too_long", "not_a_number", "not_a_user", "not_a_choice"}

FAST = settings(max_examples=100, deadline=None, derandomize=True, database=None)
# about 40 commands and subcommands: fewer examples each, some 1,000 in all
PER_COMMAND = settings(FAST, max_examples=25)
SLOW = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- what users type ---------------------------------------------------------------------------

# Characters that have broken or could break readers, drawn often beside any Unicode character.
TRICKY = (
    "²³¹①١٢٣３𝟏"  # digits str.isdigit takes and int refuses or reads differently
    + BIDI_CONTROLS
    + CONTROLS
    + "\"'„“”«»‚‘’"  # quotes, opened and closed in every way
    + " \t\n\u00a0\u2028\u3000"  # whitespace of several kinds
    + "!?@:.,;-_/()[]<>&#0123456789"
    + "\u0301\u200b\ufeff\ufffd"  # a combining mark, zero-width space, BOM, replacement character
    + "ÄÖÜäöüßé🏓"
)
CHARACTERS = st.one_of(st.characters(), st.sampled_from(TRICKY))
TEXT = st.text(CHARACTERS, max_size=60)
WORD = st.text(CHARACTERS, min_size=0, max_size=24)


@st.composite
def long_text(draw: st.DrawFn, limit: int = MAX_COMMAND_LENGTH) -> str:
    """Text up to ``limit`` characters: a drawn piece repeated (Hypothesis draws short text)."""
    piece = draw(st.text(CHARACTERS, min_size=1, max_size=40))
    length = draw(st.integers(0, limit))
    return (piece * (length // len(piece) + 1))[:length]


def numbers() -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers(0, 10**12).map(str),
        st.integers(0, 10**12).map(lambda n: f"{n:,}".replace(",", ".")),
        st.from_regex(r"[0-9.]{1,14}", fullmatch=True),
        st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=6),
        WORD,
    )


def word_for(arg: Arg) -> st.SearchStrategy[str]:
    """Words aimed at one argument kind: well-formed ones, near misses and anything at all."""
    if arg.kind == "int":
        return numbers()
    if arg.kind == "mxid":
        return st.one_of(
            st.from_regex(MXID_RE, fullmatch=True), st.from_regex(r"@[a-z]{1,8}:?", fullmatch=True), WORD
        )
    if arg.kind == "choice":
        return st.one_of(st.sampled_from(arg.choices).map(str.upper), st.sampled_from(arg.choices), WORD)
    return st.one_of(WORD, long_text(MAX_TEXT_ARG + 20))


@st.composite
def words_for(draw: st.DrawFn, cmd: Command) -> list[str]:
    """Argument words for ``cmd``: shaped for its arguments, some left out, some extra."""
    words = [draw(word_for(arg)) for arg in cmd.args]
    words = words[: draw(st.integers(0, len(words)))] if draw(st.booleans()) else words
    return words + draw(st.lists(WORD, max_size=3))


def every_command() -> list[Command]:
    found: list[Command] = []

    def walk(cmd: Command) -> None:
        if cmd not in found:
            found.append(cmd)
            for sub in cmd.unique_subcommands():
                walk(sub)

    for cmd in REGISTRY.commands():
        walk(cmd)
    return found


COMMANDS = every_command()


def command_words() -> list[tuple[str, Command]]:
    """Every way to name a command or subcommand (``tandem info``, ``tandem anlegen``), with it."""
    words: dict[str, Command] = {}
    for cmd in COMMANDS:
        ways = [""]
        for part in cmd.path:
            ways = [f"{way} {name}".strip() for way in ways for name in part.all_names()]
        words.update((way, cmd) for way in ways)
    return sorted(words.items(), key=lambda item: item[0])


COMMAND_WORDS = command_words()


@st.composite
def command_bodies(draw: st.DrawFn) -> str:
    """``!<command> [<subcommand>] <arguments>``: mostly arguments shaped for the command (so
    the handlers run), else any text, short or up to the limit; in the cases and spacings people
    use, sometimes with a bidi override or an escape sequence around."""
    name, cmd = draw(st.sampled_from(COMMAND_WORDS))
    name = draw(st.sampled_from([name, name, name.upper(), name.title()]))
    shape = draw(st.sampled_from(["args", "args", "args", "text", "long"]))
    if shape == "args":
        words = draw(words_for(cmd))
        rest = " ".join(f'"{w}"' if not w or any(c.isspace() for c in w) else w for w in words)
    else:
        rest = draw(TEXT if shape == "text" else long_text())
    separator = draw(st.sampled_from([" ", " ", " ", "  ", "\t", "\n", " \u202e", "\u00a0"]))
    lead = draw(st.sampled_from(["", "", "", "", " ", "\n", "\u202e", "\x1b[2J"]))
    return f"{lead}!{name}{separator}{rest}"


@st.composite
def bodies(draw: st.DrawFn) -> str:
    shape = draw(st.sampled_from(["command"] * 6 + ["over_limit", "bang", "plain", "long"]))
    if shape == "command":
        return draw(command_bodies())
    if shape == "over_limit":
        return draw(command_bodies()) + "x" * MAX_COMMAND_LENGTH
    if shape == "bang":
        return "!" + draw(TEXT)
    return draw(TEXT if shape == "plain" else long_text(MAX_COMMAND_LENGTH + 50))


# --- the binders -------------------------------------------------------------------------------


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(p.name for p in c.path))
@PER_COMMAND
@given(data=st.data())
def test_every_binder_returns_declared_kinds_or_a_usage_error(cmd: Command, data: st.DataObject) -> None:
    words = data.draw(words_for(cmd), label="words")
    message = data.draw(st.one_of(st.none(), TEXT, long_text()), label="message")  # lines after the command
    try:
        values = cmd.bind(words, message)
    except UsageError as exc:
        assert exc.problem in USAGE_PROBLEMS
        return
    assert set(values) == {arg.name for arg in cmd.args}
    for arg in cmd.args:
        value = values[arg.name]
        if value is None:
            assert not arg.required
        elif arg.kind == "int":
            assert type(value) is int and 0 <= value < 10**9
        elif arg.kind == "mxid":
            assert MXID_RE.fullmatch(value)
        elif arg.kind == "choice":
            assert value in arg.choices
        elif arg.kind == "message":
            assert isinstance(value, str) and value.strip()
        else:
            assert isinstance(value, str) and len(value) <= MAX_TEXT_ARG


def test_the_fuzz_reaches_every_kind_of_argument() -> None:
    """The binder property above is only worth what the registry declares: all kinds occur."""
    kinds = {arg.kind for cmd in COMMANDS for arg in cmd.args}
    assert {"word", "text", "int", "mxid", "choice"} <= kinds  # and "message" once a command takes one
    assert len(COMMANDS) >= 20


# --- the number rule, splitting, neutralising --------------------------------------------------


@FAST
@given(text=st.one_of(numbers(), TEXT))
def test_a_number_is_read_only_from_ascii_digits(text: str) -> None:
    value = parse_number(text)
    if value is None:
        return
    assert is_digits(text.replace(".", ""))
    assert value == int(text.replace(".", ""))


@FAST
@given(n=st.integers(0, 999_999_999))
def test_every_number_reads_back_plain_and_grouped(n: int) -> None:
    assert parse_number(str(n)) == n
    assert parse_number(f"{n:,}".replace(",", ".")) == n


@FAST
@given(body=st.one_of(TEXT, long_text(), command_bodies()))
def test_splitting_gives_words_none_or_a_quote_error(body: str) -> None:
    try:
        parsed = split_command(body, "!")
    except QuoteError:
        return
    if parsed is not None:
        word, words = parsed
        assert word and word == word.lower() and all(isinstance(w, str) for w in words)


@FAST
@given(text=st.one_of(TEXT, long_text()))
def test_neutralised_text_has_no_spoofing_characters_and_stays_so(text: str) -> None:
    clean = neutralise(text)
    assert not SPOOFING & set(clean)
    clean.encode("utf-8")  # storable and sendable: no lone surrogates
    assert neutralise(clean) == clean
    assert len(clean) <= len(text)


# --- the whole dispatcher ----------------------------------------------------------------------


@pytest.fixture
async def fuzz_bot(tmp_path):
    """One bot for all examples (state builds up, as it does in a real room); no rate limit."""
    bot = await make_local_bot(tmp_path, rate_limit={"commands": 1_000_000, "window_seconds": 1})
    yield bot
    await bot.db.close()


def command_shaped(body: str) -> bool:
    text = neutralise(body)
    if len(text) > MAX_COMMAND_LENGTH:
        return text.lstrip().startswith("!")
    try:
        return split_command(text, "!") is not None
    except QuoteError:
        return True


@SLOW
@given(
    body=bodies(),
    sender=st.sampled_from([MAYOR, COORD]),
    direct=st.booleans(),
)
async def test_the_dispatcher_answers_anything_once_and_never_spoofably(fuzz_bot, body, sender, direct):
    files_before = len(fuzz_bot.matrix.files)
    sent = await fuzz_bot.say(
        body, sender=sender, is_direct=direct, room_id="!dm:localhost" if direct else "!gruppe:localhost"
    )
    answers = [m.body for m in sent if m.in_reply_to is not None]
    answers += [f"file {name}" for _room, name, _data in fuzz_bot.matrix.files[files_before:]]  # CSV report
    if direct or command_shaped(body):
        assert len(answers) == 1, answers
    else:
        assert answers == []
    for message in sent:
        event(message.reply.template)  # --hypothesis-show-statistics shows which answers the run reached
        assert message.reply.template != "error_internal", (body, message.body)
        found = SPOOFING & set(message.body + message.html)
        assert not found, [hex(ord(c)) for c in found]
