"""``!profil``: town through the municipality register, topics, export and deletion."""

from commands.context import Role
from tests.local_bot import make_local_bot

ANNA = "@anna:localhost"


async def test_profile_without_town_explains_first_step(local_bot):
    text = await local_bot.text("!profil", sender=ANNA)
    assert "noch kein Profil" in text and "!profil ort" in text


async def test_town_by_name_and_by_ags(local_bot):
    text = await local_bot.text("!profil ort bad berleburg", sender=ANNA)
    assert "Bad Berleburg" in text and "Siegen-Wittgenstein" in text
    text = await local_bot.text("!profil ort 12070424", sender=ANNA)
    assert "Wittenberge" in text
    shown = await local_bot.text("!profil", sender=ANNA)
    assert "Wittenberge" in shown and "Bad Berleburg" not in shown and "17.058" in shown


async def test_ambiguous_town_lists_choices_with_ags(local_bot):
    text = await local_bot.text("!profil ort Neustadt", sender=ANNA)
    assert "mehrmals" in text
    assert "!profil ort 01055032" in text  # Neustadt in Holstein
    assert "kein Profil" in await local_bot.text("!profil", sender=ANNA)


async def test_unknown_town_gets_a_friendly_hint(local_bot):
    text = await local_bot.text("!profil ort Xyzqwbrück", sender=ANNA)
    assert "kenne ich leider nicht" in text and "!profil ort Wittenberge" in text


async def test_topics_add_remove_forgivingly(local_bot):
    assert "zuerst" in await local_bot.text("!profil themen hinzufügen Wohnen", sender=ANNA)
    await local_bot.say("!profil ort Wittenberge", sender=ANNA)
    text = await local_bot.text("!profil themen hinzufügen leerstand", sender=ANNA)
    assert "„Innenstadt und Leerstand“ steht jetzt" in text
    text = await local_bot.text("!profil themen add Mobilitat", sender=ANNA)
    assert "Innenstadt und Leerstand, Mobilität" in text
    assert "stand bereits" in await local_bot.text("!profil themen hinzufügen Innenstadt", sender=ANNA)
    text = await local_bot.text("!profil themen entfernen Innenstadt", sender=ANNA)
    assert "entfernt" in text and "Ihre Themen: Mobilität" in text


async def test_topic_problems_are_explained(local_bot):
    await local_bot.say("!profil ort Wittenberge", sender=ANNA)
    text = await local_bot.text("!profil themen streichen Wohnen", sender=ANNA)
    assert "hinzufügen" in text and "entfernen" in text
    text = await local_bot.text("!profil themen hinzufügen Raumfahrt", sender=ANNA)
    assert "gibt es in der Liste nicht" in text and "Digitalisierung" in text


async def test_export_lists_everything_stored(local_bot):
    await local_bot.say("!profil ort Wittenberge", sender=ANNA)
    await local_bot.say("!profil themen hinzufügen Wohnen", sender=ANNA)
    text = await local_bot.text("!profil export", sender=ANNA)
    assert ANNA in text and "12070424" in text and "Wohnen" in text and "Keine Tandems" in text


async def test_delete_needs_confirmation_and_then_leaves_nothing(tmp_path):
    bot = await make_local_bot(tmp_path, roles={"@koordination:localhost": Role.COORDINATOR})
    try:
        for user, town in ((ANNA, "Wittenberge"), ("@ben:localhost", "Bad Berleburg")):
            await bot.say(f"!profil ort {town}", sender=user)
            await bot.say("!profil themen hinzufügen Innenstadt", sender=user)
        await bot.say(
            "!tandem anlegen @anna:localhost @ben:localhost Innenstadt", sender="@koordination:localhost"
        )
        first = await bot.text("!profil löschen", sender=ANNA)
        assert "!profil löschen bestätigen" in first
        assert await bot.db.fetchone("SELECT 1 FROM profiles WHERE user_id = ?", (ANNA,)) is not None
        done = await bot.text("!profil löschen bestätigen", sender=ANNA)
        assert "gelöscht" in done and "1 Tandem-Eintrag" in done
        assert await _rows_mentioning(bot.db, ANNA) == []
        # the tandem record keeps towns and topic, and the partner
        row = await bot.db.fetchone("SELECT user_a, user_b, town_a FROM tandems")
        assert row is not None
        assert row["user_a"] is None and row["user_b"] == "@ben:localhost" and row["town_a"] == "Wittenberge"
        assert "kein Profil" in await bot.text("!profil", sender=ANNA)
    finally:
        await bot.db.close()


async def _rows_mentioning(db, needle: str) -> list[str]:
    """Every (table, row) in the whole database with ``needle`` in any text column."""
    found = []
    for (table,) in await db.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'"):
        for row in await db.fetchall(f'SELECT * FROM "{table}"'):
            if any(isinstance(v, str) and needle in v for v in tuple(row)):
                found.append(f"{table}: {tuple(row)}")
    return found


async def test_first_town_invites_to_the_academy_space_once(local_bot):
    first = await local_bot.text("!profil ort Wittenberge")
    assert "in den Space „Kleinstadtakademie“ eingeladen" in first
    [space] = [r for r in local_bot.matrix.rooms.values() if r.space]
    assert "@buergermeisterin:localhost" in space.invited
    again = await local_bot.text("!profil ort Bad Berleburg")  # a correction, not a new member
    assert "Space" not in again


async def test_ambiguous_town_lists_each_candidate_with_its_kreis_once(local_bot):
    text = await local_bot.text("!profil ort Neustadt")
    assert "• Neustadt an der Weinstraße (Rheinland-Pfalz): !profil ort 07316000" in text
    assert "• Neustadt am Rübenberge, Region Hannover (Niedersachsen)" in text
