"""Bidi overrides and control characters in user text are neutralised before anything reads,
stores or echoes it (the dispatcher's request boundary), and once more in everything rendered
(whatever brought them in), so no reply displays reversed text in the bot's voice."""

from __future__ import annotations

import pytest

from bot.rendering import Renderer
from commands.parsing import BIDI_CONTROLS, CONTROLS
from tests.local_bot import LocalBot

SPOOFING = set(BIDI_CONTROLS + CONTROLS)
COORD = "@koordination:localhost"
RLO, PDF, LRI, PDI, ESC = "\u202e", "\u202c", "\u2066", "\u2069", "\x1b"


def spoofing_in(*texts: str) -> list[str]:
    return sorted({hex(ord(c)) for text in texts for c in text if c in SPOOFING})


@pytest.mark.parametrize(
    ("body", "echo"),
    [
        (f"!xq{RLO}gnip{PDF}", "xqgnip"),  # unknown command
        (f"!tandem info {LRI}drei{PDI}", "„drei“"),  # usage error
        (f"!tandem anlegen @anna:localhost{ESC}[2J @ben:localhost Wohnen", "„@anna:localhost[2J“"),
        (f"!berechtigt Xq{RLO}zz{ESC}[31myw\u200f\x9b\x00", "Xqzz[31myw"),  # unknown town
    ],
)
async def test_replies_echo_user_text_without_bidi_or_control_characters(local_bot, body, echo):
    [reply] = await local_bot.say(body, sender=COORD)
    assert echo in reply.body
    assert spoofing_in(reply.body, reply.html) == []


async def test_user_text_is_neutralised_before_it_is_stored_or_names_a_room(local_bot: LocalBot):
    await local_bot.say(f"!thema anlegen Markt{RLO}platz {LRI}für{PDI} alle{ESC}[0m", sender=COORD)
    [room] = [r for r in local_bot.matrix.rooms.values() if r.name.startswith("Markt")]
    assert room.name == "Marktplatz"
    assert room.topic == "für alle[0m"
    row = await local_bot.db.fetchone("SELECT name, description FROM topic_channels")
    assert tuple(row) == ("Marktplatz", "für alle[0m")


async def test_a_line_break_or_form_feed_still_separates_words(local_bot):
    assert await local_bot.text("!tandem\rinfo\x0c²") == await local_bot.text("!tandem info ²")


def test_rendering_neutralises_whatever_the_data_brings(tmp_path):
    """Text that reached the database before the boundary existed, display names, content."""
    (tmp_path / "echo.html").write_text(  # one template per message, for every locale
        "<p>„{{ text }}“ von {{ user | user_link(name) }}</p><p>{{ note | markdown }}</p>"
    )
    body, html = Renderer(templates=tmp_path).render(
        "echo",
        {
            "text": f"{RLO}gnirbeL{PDF}\x07",
            "user": "@anna:localhost",
            "name": f"Anna{RLO} (Koordination){ESC}[8m",
            "note": f"**{LRI}fett{PDI}**\x7f",
        },
    )
    assert spoofing_in(body, html) == []
    assert "„gnirbeL“" in body and "Anna (Koordination)[8m" in body and "fett" in body
    assert "<strong>fett</strong>" in html
