"""The Matrix runtime without a homeserver: mention and reply-fallback stripping, bad sync bodies."""

from bot.runtime import strip_mention, strip_reply_fallback

BOT = "@kleinstadtbot:localhost"


def test_strip_mention_removes_the_bot_however_it_is_written():
    assert strip_mention("kleinstadtbot: Wer darf mitmachen?", BOT) == "Wer darf mitmachen?"
    assert strip_mention("@kleinstadtbot:localhost Wer darf mitmachen?", BOT) == "Wer darf mitmachen?"
    assert strip_mention("Kleinstadt Bot: Was kostet das?", BOT, "Kleinstadt Bot") == "Was kostet das?"
    assert strip_mention("Akademie-Bot: Was kostet das?", BOT) == "Was kostet das?"  # shown name
    assert strip_mention("Frage an @kleinstadtbot:localhost zum Kongress", BOT) == "Frage an zum Kongress"
    assert strip_mention("Wo ist das? Danke", BOT) == "Wo ist das? Danke"


def test_reply_fallback_is_removed():
    body = "> <@anna:localhost> Hallo\n> zweite Zeile\n\n!ping"
    assert strip_reply_fallback(body) == "!ping"
    assert strip_reply_fallback("!ping") == "!ping"


async def test_a_first_sync_body_that_is_not_json_is_an_error_for_the_back_off(tmp_path):
    from nio import SyncError

    from bot.runtime import KleinstadtBot
    from config.settings import Settings

    bot = KleinstadtBot(
        Settings(
            homeserver="http://127.0.0.1:9",
            user_id="@bot:localhost",
            access_token="t",
            database=tmp_path / "bot.db",
        )
    )
    try:
        for body in ("<html>Bad Gateway</html>", '{"next_batch": "s1", "rooms": {"join": {"!a:x": {'):
            result = await bot._receive(body)
            assert isinstance(result, SyncError) and "not valid JSON" in result.message
    finally:
        await bot.client.close()
