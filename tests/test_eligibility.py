"""``!berechtigt`` over the shipped register: verdicts, bands, forgiving names, overrides."""

from __future__ import annotations

import csv

import pytest

from commands.context import Role
from storage.municipalities import SHIPPED_CSV
from tests.local_bot import make_local_bot

COORD = "@koordination:localhost"
SOURCE = (
    "Quelle: Statistisches Bundesamt (Destatis), Gemeindeverzeichnis GV100AD, Gebietsstand "
    "30.11.2025; Bevölkerung 31.12.2024, dl-de/by-2-0"
)
YES, NO, DEPENDS = "kann mitmachen.", "Leider nein.", "Das hängt von der zentralörtlichen Funktion ab."


def register() -> dict[str, dict[str, str]]:
    with SHIPPED_CSV.open(encoding="utf-8", newline="") as f:
        return {row["ags"]: row for row in csv.DictReader(f)}


def de_number(value: int) -> str:
    return f"{value:,}".replace(",", ".")


# query, AGS of the town the answer must be about, expected verdict line, expected band words
CASES = [
    ("Bad Berleburg", "05970004", YES, "größere Kleinstadt"),
    ("München", "09162000", NO, "Großstadt"),
    ("Arkebek", "01051002", DEPENDS, "Landgemeinde"),  # village under 1,000
    ("Halsbrücke", None, DEPENDS, "Landgemeinde"),  # 4,999
    ("Petersaurach", None, YES, "kleine Kleinstadt"),  # 5,000
    ("Ammersbek", None, YES, "kleine Kleinstadt"),  # 9,991
    ("Blumberg", None, YES, "größere Kleinstadt"),  # 10,003
    ("Donauwörth", None, YES, "größere Kleinstadt"),  # 19,990
    ("Meinerzhagen", None, NO, "Mittelstadt"),  # 20,019
    ("Hildesheim", None, NO, "Mittelstadt"),  # 98,510
    ("Kaiserslautern", None, NO, "Großstadt"),  # 100,426
    ("Bad Berlebrug", "05970004", YES, "größere Kleinstadt"),  # typo
    ("05970004", "05970004", YES, "größere Kleinstadt"),  # AGS
    ("57319", "05970004", YES, "größere Kleinstadt"),  # postcode of the seat
    ("Muenchen", "09162000", NO, "Großstadt"),  # umlaut spelling
    ("koeln", "05315000", NO, "Großstadt"),
    ("Altenberg, Sachsen", None, YES, "kleine Kleinstadt"),  # Land narrows
    ("Neuenkirchen Steinfurt", "05566060", YES, "größere Kleinstadt"),  # Kreis narrows an ambiguous name
    ("Neustadt Holstein", None, YES, "größere Kleinstadt"),
    ("Neustadt an der Donau", "09273152", YES, "größere Kleinstadt"),  # Destatis: "Neustadt a.d.Donau"
    ("Neustadt a.d.Donau", "09273152", YES, "größere Kleinstadt"),
    ("Sankt Ingbert", None, NO, "Mittelstadt"),  # Destatis: "St. Ingbert"
    ("Hansestadt Lübeck", None, NO, "Großstadt"),
    ("Stadt Bad Berleburg", "05970004", YES, "größere Kleinstadt"),
]


@pytest.mark.parametrize(("query", "ags", "verdict", "band"), CASES)
async def test_answer_table(local_bot, query, ags, verdict, band):
    towns = register()
    text = await local_bot.text(f"!berechtigt {query}")
    assert verdict in text, text
    assert f"Größenklasse nach BBSR: {band}" in text
    assert SOURCE in text
    if ags:
        row = towns[ags]
        assert row["name_official"] in text
        assert f"Einwohner: {de_number(int(row['population']))} (Stand 31.12.2024)" in text
        assert row["land"] in text


async def test_band_edges_follow_the_register(local_bot):
    """The edge towns above really sit on the edges, so the table tests what it claims."""
    by_name = {}
    for row in register().values():
        by_name.setdefault(row["name"], []).append(int(row["population"]))
    assert by_name["Halsbrücke"] == [4999] and by_name["Petersaurach"] == [5000]
    assert by_name["Donauwörth"] == [19990] and by_name["Meinerzhagen"] == [20019]
    assert by_name["Hildesheim"] == [98510] and by_name["Kaiserslautern"] == [100426]


async def test_typo_says_what_it_assumed(local_bot):
    text = await local_bot.text("!berechtigt Bad Berlebrug")
    assert "Ich nehme an, du meinst Bad Berleburg" in text
    exact = await local_bot.text("!berechtigt Bad Berleburg")
    assert "Ich nehme an" not in exact


async def test_ambiguous_name_lists_candidates_and_how_to_narrow(local_bot):
    towns = [r for r in register().values() if r["name"] == "Neuenkirchen"]
    text = await local_bot.text("!berechtigt Neuenkirchen")
    assert f"„Neuenkirchen“ gibt es {len(towns)}-mal" in text
    for row in towns:
        assert row["ags"] in text
        assert row["land"] in text
    biggest = max(towns, key=lambda r: int(r["population"]))
    assert de_number(int(biggest["population"])) in text
    assert f"!berechtigt Neuenkirchen, {biggest['kreis']}" in text
    assert f"!berechtigt {biggest['ags']}" in text
    narrowed = await local_bot.text(f"!berechtigt Neuenkirchen, {biggest['kreis']}")
    assert YES in narrowed and biggest["name_official"] in narrowed


async def test_suggested_narrowing_finds_one_town(local_bot):
    messages = await local_bot.say("!berechtigt Neustadt")
    hint = messages[0].html.rsplit("<code>", 2)[1].split("</code>")[0]
    assert hint.startswith("!berechtigt Neustadt, ")
    assert "Größenklasse" in await local_bot.text(hint)


async def test_uncertain_match_suggests(local_bot):
    text = await local_bot.text("!berechtigt Berlebg")
    assert "Meintest du" in text
    assert "Bad Berleburg" in text and "05970004" in text


@pytest.mark.parametrize(
    ("number", "expected", "band"),
    [
        ("12000", YES.replace(".", ""), "größere Kleinstadt"),
        ("12.000", YES.replace(".", ""), "größere Kleinstadt"),
        ("4999 Einwohner", "hängt von der zentralörtlichen Funktion ab", "Landgemeinde"),
        ("25000", "nicht mitmachen", "Mittelstadt"),
    ],
)
async def test_plain_number_answers_by_rule(local_bot, number, expected, band):
    text = await local_bot.text(f"!berechtigt {number}")
    assert expected in text
    assert band in text
    assert "Destatis" not in text  # no town, so no register source


@pytest.mark.parametrize("query", ["", "x" * 150, "qqqqzzzz", "!!!"])
async def test_bad_input_gets_three_examples(local_bot, query):
    messages = await local_bot.say(f"!berechtigt {query}".strip())
    assert len(messages) == 1
    html = messages[0].html
    assert html.count("<code>!berechtigt ") >= 3
    assert "Traceback" not in messages[0].body


async def test_unknown_ags(local_bot):
    text = await local_bot.text("!berechtigt 99999999")
    assert "Gemeindeschlüssel" in text and "99999999" in text


async def test_verband_context_with_combined_population(local_bot):
    towns = register()
    arkebek = towns["01051002"]
    members = [r for r in towns.values() if r["ars"][:9] == arkebek["ars"][:9]]
    total = sum(int(r["population"]) for r in members)
    text = await local_bot.text("!berechtigt Arkebek")
    assert f"Amt {arkebek['gemeindeverband']}, {len(members)} Gemeinden" in text
    assert de_number(total) in text
    assert ("klärt es mit der Koordination" in text) == (total >= 5000)
    free = await local_bot.text("!berechtigt Bad Berleburg")
    assert "Gemeindeverband" not in free


async def test_english_locale(tmp_path):
    bot = await make_local_bot(tmp_path, locale="en")
    try:
        text = await bot.text("!eligible Bad Berleburg")
        assert "Yes, Bad Berleburg can take part" in text
        assert "Source: Statistisches Bundesamt (Destatis)" in text and "dl-de/by-2-0" in text
        text = await bot.text("!eligible Neuenkirchen")
        assert "Which one do you mean?" in text
    finally:
        await bot.db.close()


async def test_central_place_override_decides_and_is_shown(local_bot):
    before = await local_bot.text("!berechtigt 01051002")
    assert DEPENDS in before
    reply = await local_bot.text(
        "!zentralort setzen 01051002 grundzentrum_mz Regionalplan 2024", sender=COORD
    )
    assert "Vermerkt: Arkebek" in reply and "kann mitmachen" in reply
    after = await local_bot.text("!berechtigt Arkebek")
    assert "Ja, Arkebek kann mitmachen" in after
    assert (
        "Vermerk der Koordination: Grundzentrum mit mittelzentraler Teilfunktion – Regionalplan 2024" in after
    )
    await local_bot.text("!zentralort setzen 01051002 keine laut Landesplanung", sender=COORD)
    assert "Eher nicht" in await local_bot.text("!berechtigt Arkebek")
    listing = await local_bot.text("!zentralort liste", sender=COORD)
    assert "Arkebek (01051002)" in listing and "laut Landesplanung" in listing
    cleared = await local_bot.text("!zentralort löschen 01051002", sender=COORD)
    assert "gelöscht" in cleared
    assert DEPENDS in await local_bot.text("!berechtigt Arkebek")
    again = await local_bot.text("!zentralort löschen 01051002", sender=COORD)
    assert "gab es keinen Vermerk" in again


async def test_central_place_override_does_not_change_big_towns(local_bot):
    await local_bot.text("!zentralort setzen 09162000 oberzentrum Landesentwicklungsprogramm", sender=COORD)
    text = await local_bot.text("!berechtigt München")
    assert NO in text and "Vermerk der Koordination: Oberzentrum" in text


async def test_central_place_needs_coordinator_and_valid_input(local_bot):
    denied = await local_bot.text("!zentralort setzen 01051002 mittelzentrum weil")
    assert "Vermerkt" not in denied
    assert DEPENDS in await local_bot.text("!berechtigt Arkebek")
    bad = await local_bot.text("!zentralort setzen 01051002 riesig weil", sender=COORD)
    assert "grundzentrum_mz" in bad and "Vermerkt" not in bad
    unclear = await local_bot.text("!zentralort setzen Neuenkirchen mittelzentrum weil", sender=COORD)
    assert "nicht eindeutig" in unclear and "05566060" in unclear


async def test_roles_do_not_leak_other_users(tmp_path):
    bot = await make_local_bot(tmp_path, roles={"@amt:localhost": Role.COORDINATOR})
    try:
        text = await bot.text("!zentralort setzen 01051002 gz Regionalplan", sender="@amt:localhost")
        assert "Vermerkt: Arkebek (01051002) ist Grundzentrum." in text
        assert "kann nicht mitmachen" in text
    finally:
        await bot.db.close()


async def test_postcode_answer_offers_the_number_reading(local_bot):
    text = await local_bot.text("!berechtigt 57319")
    assert "Gefunden über die Postleitzahl 57319" in text and "!berechtigt 57.319 Einwohner" in text
    as_number = await local_bot.text("!berechtigt 57.319 Einwohner")
    assert "57.319 Einwohnern ist nach BBSR eine Mittelstadt" in as_number
    assert "Postleitzahl" not in await local_bot.text("!berechtigt 05970004")


async def test_find_towns_api_statuses(local_bot):
    from commands.towns_search import find_towns

    services = local_bot.services
    assert (await find_towns(services, "Bad Berleburg")).status == "exact"
    assert (await find_towns(services, "Bad Berleburg")).town.ags == "05970004"
    ambiguous = await find_towns(services, "Neuenkirchen")
    assert ambiguous.status == "ambiguous" and ambiguous.town is None
    assert [t.population for t in ambiguous.towns] == sorted(
        (t.population for t in ambiguous.towns), reverse=True
    )
    assert (await find_towns(services, "Berlebg")).status == "suggestions"
    assert (await find_towns(services, "qqqqzzzz")).status == "not_found"
    assert (await find_towns(services, "")).status == "not_found"
