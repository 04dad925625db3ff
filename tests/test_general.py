"""!help and !ping through the real dispatcher and templates, without a homeserver."""

from commands.context import Role


async def test_ping_answers_with_version_and_uptime(local_bot):
    local_bot.clock.advance(3 * 3600)
    [message] = await local_bot.say("!ping")
    assert message.body.startswith("🏓 Pong! kleinstadtbot ")
    assert "3 Stunden" in message.body
    assert message.in_reply_to is not None


async def test_help_lists_only_what_the_role_allows(local_bot, declare):
    declare("geheim_test", summary="Nur Koordination.", role=Role.COORDINATOR, group="admin")(_noop)
    member = await local_bot.text("!hilfe")
    coordinator = await local_bot.text("!hilfe", sender="@koordination:localhost")
    assert "!ping" in member and "!geheim_test" not in member
    assert "!geheim_test" in coordinator and "Koordinator" in coordinator


async def test_unknown_command_suggests_the_closest(local_bot):
    text = await local_bot.text("!hlife")
    assert "kenne ich leider nicht" in text
    assert "Meinten Sie !hilfe?" in text


async def test_help_for_one_command_shows_usage_and_examples(local_bot):
    text = await local_bot.text("!hilfe ping")
    assert "Aufruf: !ping" in text
    assert "Beispiele" in text


async def _noop(ctx):
    return None


async def test_usage_and_examples_name_the_command_as_it_was_typed(local_bot):
    english_words = await local_bot.text("!profile town")  # a German bot, the English names
    assert "Aufruf: !profile town <" in english_words
    german_words = await local_bot.text("!profil ort")
    assert "Aufruf: !profil ort <" in german_words
    as_eligible = await local_bot.text("!hilfe eligible")
    assert "Aufruf: !eligible [" in as_eligible
    assert "!eligible Bad Berleburg" in as_eligible and "!berechtigt Bad" not in as_eligible
    as_berechtigt = await local_bot.text("!hilfe berechtigt")
    assert "Aufruf: !berechtigt [" in as_berechtigt and "!berechtigt Bad Berleburg" in as_berechtigt
    assert "!eligible" in as_berechtigt  # named once more among the other names


async def test_a_command_with_subcommands_lists_them_as_typed(local_bot):
    text = await local_bot.text("!centralplace", sender="@koordination:localhost")
    assert "!centralplace setzen <" in text
    assert "!zentralort setzen 07231001" not in text and "!centralplace setzen 07231001" in text
