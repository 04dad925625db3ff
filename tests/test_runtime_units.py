"""Pure pieces of the Matrix runtime: mention and reply-fallback stripping."""

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
