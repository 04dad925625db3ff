"""Command-line splitting, argument binding and the German replies for bad input."""

from __future__ import annotations

import pytest

from commands.context import Role
from commands.parsing import (
    MAX_COMMAND_LENGTH,
    QuoteError,
    is_digits,
    neutralise,
    parse_number,
    split_command,
    split_words,
)
from commands.registry import Arg, UsageError
from config.catalogs import NP_

# --- split_words / split_command ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('berechtigt "Neustadt an der Weinstraße"', ["berechtigt", "Neustadt an der Weinstraße"]),
        ("berechtigt „Bad Berleburg“", ["berechtigt", "Bad Berleburg"]),
        ("berechtigt “Bad Berleburg”", ["berechtigt", "Bad Berleburg"]),
        ("berechtigt «Bad Berleburg»", ["berechtigt", "Bad Berleburg"]),
        ("a   b\tc", ["a", "b", "c"]),
        ('x ""', ["x", ""]),
        ('x "a b"c', ["x", "a bc"]),
    ],
)
def test_split_words_groups_double_quotes(text, words):
    assert split_words(text) == words


def test_apostrophes_are_literal_characters():
    assert split_words("ort Hof's Mont' d'Or") == ["ort", "Hof's", "Mont'", "d'Or"]


@pytest.mark.parametrize("text", ['ort "Bad Berleburg', "ort „Bad Berleburg", "ort «Bad"])
def test_unclosed_quote_raises(text):
    with pytest.raises(QuoteError):
        split_words(text)


@pytest.mark.parametrize(
    ("body", "prefix", "expected"),
    [
        ("!ping", "!", ("ping", [])),
        ("  !PING  extra ", "!", ("ping", ["extra"])),
        ("!! ping", "!!", None),
        ("!!ping a", "!!", ("ping", ["a"])),
        ("ping", "!", None),
        ("! ping", "!", None),
        ("!", "!", None),
        ("Hallo !ping", "!", None),
        ("?hilfe", "?", ("hilfe", [])),
    ],
)
def test_split_command_prefix_handling(body, prefix, expected):
    assert split_command(body, prefix) == expected


# --- binding ---------------------------------------------------------------------------------


def _cmd(*args: Arg):
    from commands.registry import Command

    return Command(name="t", handler=None, summary="t", args=list(args))


def test_int_accepts_german_thousands_dots():
    cmd = _cmd(Arg("n", "int"))
    assert cmd.bind(["12.000"]) == {"n": 12000}
    assert cmd.bind(["1.234.567"]) == {"n": 1234567}
    assert cmd.bind(["42"]) == {"n": 42}


@pytest.mark.parametrize(
    "word",
    [
        "zwölf",
        "-3",
        "1,5",
        "12a",
        "1234567890",
        # str.isdigit accepts these, int() refuses them or reads a number the user did not see
        "²",
        "³",
        "1²",
        "①",
        "١٢",  # Arabic-Indic digits
        "𝟏𝟐",  # mathematical bold digits
        # dots only as thousands separators, in groups of three
        "1.2.3",
        "12.00",
        "1..000",
        ".5",
        "1_000",
    ],
)
def test_int_rejects_non_numbers(word):
    with pytest.raises(UsageError) as info:
        _cmd(Arg("n", "int")).bind([word])
    assert info.value.problem == "not_a_number"
    assert info.value.detail["value"] == word


# --- the one rule for numbers --------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [("0", True), ("0123456789", True), ("", False)])
def test_is_digits_takes_ascii_digits(text, expected):
    assert is_digits(text) is expected


@pytest.mark.parametrize("text", ["²", "³", "¹", "①", "١", "٣", "۳", "५", "𝟑", "３", "1 2", "1\n", "+1"])
def test_is_digits_refuses_what_isdigit_or_int_would_take(text):
    assert not is_digits(text)


def test_parse_number_forms():
    assert parse_number("42") == 42
    assert parse_number("007") == 7
    assert parse_number("12.000") == 12000
    assert parse_number("1.234.567") == 1234567
    assert parse_number("12'000", separators=".'") == 12000
    assert parse_number("12 000", separators=". ") == 12000
    assert parse_number("12 000") is None  # a space only where the caller allows it
    assert parse_number("1.2.3") is None and parse_number("1234.5") is None
    assert parse_number("999999999") == 999999999
    assert parse_number("1000000000") is None
    assert parse_number("1.000.000.000") is None
    assert parse_number("1" * 40, max_digits=40) == int("1" * 40)


# --- neutralising spoofing characters ------------------------------------------------------

BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"]


@pytest.mark.parametrize(
    "char", [*BIDI, "\u200e", "\u200f", "\u061c", "\x1b", "\x00", "\x07", "\x7f", "\x9b"]
)
def test_neutralise_drops_bidi_and_control_characters(char):
    assert neutralise(f"Bad{char}Berleburg") == "BadBerleburg"


def test_neutralise_marks_lone_surrogates_so_the_text_can_be_stored_and_sent():
    clean = neutralise("Wohn\udcffen \ud800 \U0001f3d3")
    assert clean == "Wohn\ufffden \ufffd \U0001f3d3"
    clean.encode("utf-8")


def test_neutralise_keeps_line_structure_and_ordinary_text():
    assert neutralise("a\tb\nc\r\nd\re") == "a\tb\nc\nd\ne"
    assert neutralise("Bad\x0bBerleburg\x0cHof\x1fSelb\x85Ende") == "Bad Berleburg Hof Selb Ende"
    text = "Neustadt a. d. Weinstraße „Mont’“ 12.000 ✅ Ærø ﺍﻟﻘﺎﻫﺮﺓ 東京"
    assert neutralise(text) == text
    assert neutralise("\x1b[31mrot\x1b[0m") == "[31mrot[0m"


def test_mxid_and_choice_kinds():
    cmd = _cmd(Arg("who", "mxid"), Arg("state", "choice", choices=("an", "aus")))
    assert cmd.bind(["@anna:example.org", "AN"]) == {"who": "@anna:example.org", "state": "an"}
    with pytest.raises(UsageError) as info:
        cmd.bind(["anna", "an"])
    assert info.value.problem == "not_a_user"
    with pytest.raises(UsageError) as info:
        cmd.bind(["@anna:example.org\n", "an"])  # a quoted word can end in a line break
    assert info.value.problem == "not_a_user"
    with pytest.raises(UsageError) as info:
        cmd.bind(["@anna:example.org", "vielleicht"])
    assert info.value.problem == "not_a_choice"
    assert info.value.detail["choices"] == ("an", "aus")


def test_text_takes_the_rest_and_optional_args_default_to_none():
    cmd = _cmd(Arg("town"), Arg("note", "text", required=False))
    assert cmd.bind(["Hof", "sehr", "schön", "hier"]) == {"town": "Hof", "note": "sehr schön hier"}
    assert cmd.bind(["Hof"]) == {"town": "Hof", "note": None}


def test_empty_quotes_give_nothing_for_an_argument():
    cmd = _cmd(Arg("town"), Arg("count", "int", required=False), Arg("note", "text", required=False))
    for words in ([""], ["  "], ["", "3"]):
        with pytest.raises(UsageError) as info:
            cmd.bind(words)
        assert (info.value.problem, info.value.detail["arg"].name) == ("missing", "town")
    assert cmd.bind(["Hof", "", ""]) == {"town": "Hof", "count": None, "note": None}
    with pytest.raises(UsageError) as info:
        _cmd(Arg("note", "text")).bind([""])
    assert info.value.problem == "missing"


async def test_a_channel_without_a_name_is_refused_not_created(local_bot):
    for _ in range(2):  # the second time used to fail on the database's unique name
        [answer] = await local_bot.say('!thema anlegen "" ""', sender="@koordination:localhost")
        assert (answer.reply.template, answer.reply.data["problem"]) == ("error_usage", "missing")
    assert await local_bot.db.fetchone("SELECT 1 FROM topic_channels") is None


def test_missing_and_extra_args():
    cmd = _cmd(Arg("town"))
    with pytest.raises(UsageError) as info:
        cmd.bind([])
    assert (info.value.problem, info.value.detail["arg"].name) == ("missing", "town")
    with pytest.raises(UsageError) as info:
        cmd.bind(["Hof", "und", "Selb"])
    assert (info.value.problem, info.value.detail["words"]) == ("extra", "und Selb")


# --- through the dispatcher ---------------------------------------------------------------


@pytest.fixture
def test_commands(declare):
    """A command with subcommands and every kind of argument; removed afterwards."""
    calls: list[tuple[str, dict]] = []

    async def top(ctx, **values):
        calls.append(("top", values))
        await ctx.reply("ping", version="t", uptime_seconds=1)

    cmd = declare(
        "parsetest",
        summary="Test",
        aliases={"de": ["parsetest_de"], "en": ["parsetest_en"]},
        args=[Arg("town", label=NP_("usage", "Gemeinde")), Arg("count", "int", required=False)],
        examples=['parsetest "Bad Berleburg" 12.000', "parsetest Hof"],
    )(top)

    @cmd.subcommand(
        "setze",
        summary="Setzen",
        aliases={"en": ["set"]},
        args=[
            Arg("who", "mxid"),
            Arg("mode", "choice", choices=("an", "aus")),
            Arg("note", "text", required=False),
        ],
        examples=["parsetest setze @anna:example.org an"],
    )
    async def sub(ctx, **values):
        calls.append(("setze", values))
        await ctx.reply("ping", version="t", uptime_seconds=1)

    return calls


async def test_quoted_typographic_args_reach_the_handler(local_bot, test_commands):
    await local_bot.say("!parsetest „Neustadt an der Weinstraße“ 12.000")
    assert test_commands == [("top", {"town": "Neustadt an der Weinstraße", "count": 12000})]


async def test_alias_and_case_route_to_the_same_command(local_bot, test_commands):
    await local_bot.say("!PARSETEST_DE Hof")
    await local_bot.say("!parsetest_en Selb 3")
    assert test_commands == [("top", {"town": "Hof", "count": None}), ("top", {"town": "Selb", "count": 3})]


async def test_subcommand_routing_and_fallback_to_top_level(local_bot, test_commands):
    await local_bot.say("!parsetest setze @anna:example.org AN ab Montag")
    await local_bot.say("!parsetest SET @bo:example.org aus")
    await local_bot.say("!parsetest Setzingen")  # not a subcommand word: the top-level handler
    assert test_commands == [
        ("setze", {"who": "@anna:example.org", "mode": "an", "note": "ab Montag"}),
        ("setze", {"who": "@bo:example.org", "mode": "aus", "note": None}),
        ("top", {"town": "Setzingen", "count": None}),
    ]


async def test_unclosed_quote_gets_a_friendly_german_reply(local_bot, test_commands):
    [message] = await local_bot.say('!parsetest "Bad Berleburg')
    assert "schließendes Anführungszeichen" in message.body
    assert '"Neustadt an der Weinstraße"' in message.body  # a correct example
    assert "Traceback" not in message.body
    assert test_commands == []


async def test_overlong_command_is_refused_politely(local_bot, test_commands):
    [message] = await local_bot.say("!parsetest " + "a" * MAX_COMMAND_LENGTH)
    assert "zu lang" in message.body
    assert "2.000" in message.body  # the limit in German number format
    assert test_commands == []


async def test_overlong_plain_text_in_a_group_is_ignored(local_bot):
    assert await local_bot.say("x" * (MAX_COMMAND_LENGTH + 10), is_direct=False) == []


async def test_missing_arg_gives_usage_with_examples(local_bot, test_commands):
    [message] = await local_bot.say("!parsetest")
    body = message.body
    assert "Es fehlt noch eine Angabe: <Gemeinde>." in body  # the label, not the internal name
    assert "Aufruf: !parsetest <Gemeinde> [count]" in body  # the command as typed
    assert '!parsetest "Bad Berleburg" 12.000' in body
    assert "!hilfe parsetest" in body
    assert test_commands == []


async def test_extra_args_and_bad_kinds_name_the_offending_word(local_bot, test_commands):
    extra = await local_bot.text("!parsetest Hof 3 zuviel")
    assert "„zuviel“ ist bei diesem Befehl nicht vorgesehen" in extra
    not_number = await local_bot.text("!parsetest Hof drei")
    assert "„drei“ ist keine gültige Zahl" in not_number
    not_user = await local_bot.text("!parsetest setze anna an")
    assert "„anna“ ist keine Matrix-ID" in not_user and "@name:server.de" in not_user
    assert "!parsetest setze @anna:example.org an" in not_user  # the subcommand's example
    not_choice = await local_bot.text("!parsetest setze @anna:example.org vielleicht")
    assert "Möglich sind: an, aus" in not_choice
    assert test_commands == []


async def test_usage_reply_in_english(tmp_path, test_commands):
    from tests.local_bot import make_local_bot

    bot = await make_local_bot(tmp_path, locale="en")
    try:
        text = await bot.text("!parsetest")
    finally:
        await bot.db.close()
    assert "Usage: !parsetest <town> [count]" in text  # English label, the command as typed
    assert "Es fehlt noch" not in text


async def test_coordinator_only_subcommand_is_denied(local_bot, declare):
    async def handler(ctx, **values):
        await ctx.reply("ping", version="t", uptime_seconds=1)

    cmd = declare("parsetest_admin", summary="x")(handler)
    cmd.subcommand("geheim", summary="y", role=Role.COORDINATOR)(handler)
    denied = await local_bot.text("!parsetest_admin geheim")
    allowed = await local_bot.text("!parsetest_admin geheim", sender="@koordination:localhost")
    assert "nur Koordinatorinnen und Koordinatoren" in denied
    assert allowed.startswith("🏓 Pong!")


# --- the same rule in the families ----------------------------------------------------------


@pytest.mark.parametrize("query", ["١٢٠٠٠", "１２０００", "12.000²", "𝟏𝟐.𝟎𝟎𝟎 Einwohner"])
async def test_eligibility_reads_no_inhabitant_count_from_other_digits(local_bot, query):
    [answer] = await local_bot.say(f"!berechtigt {query}")
    assert answer.reply.template != "eligible_number", answer.body
    assert "12.000 Einwohner" not in answer.body


@pytest.mark.parametrize("query", ["12000", "12.000", "12 000 Einwohner", "12'000"])
async def test_eligibility_reads_an_inhabitant_count_in_ascii_digits(local_bot, query):
    [answer] = await local_bot.say(f"!berechtigt {query}")
    assert answer.reply.template == "eligible_number"
    assert answer.reply.data["population"] == 12000


@pytest.mark.parametrize(
    "text",
    [
        "alle 2 Wochen dienstags ١٠ Uhr",
        "monatlich am ١٥. um 9 Uhr",
        "alle ٢ Wochen dienstags 10 Uhr",
        "weekly tuesday 1０:00",
    ],
)
def test_check_in_rhythms_read_only_ascii_digits(text):
    from commands.rhythm import RhythmError, parse_rhythm

    with pytest.raises(RhythmError):
        parse_rhythm(text)
    assert parse_rhythm(text.translate(str.maketrans("١٠٥٢０", "10520"))).hour in (9, 10)
