"""``!profil export`` lists, and ``!profil löschen`` erases, everything the bot stores about a
person: every table, including the audit records of what a coordinator did."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from storage.personal_data import NOT_PERSONAL, PERSONAL_COLUMNS, Erase, PersonalData
from tests.local_bot import LocalBot, make_local_bot, migrated_database

KOORD = "@koordination:localhost"
OTHER = "@zweite-koordination:localhost"
ANNA, BEN = "@anna:localhost", "@ben:localhost"
ARKEBEK = "01051002"


def _not_personal() -> set[str]:
    names: set[str] = set()
    for key in NOT_PERSONAL:
        names.update(key.split())
    return names


async def test_every_text_column_of_every_table_is_declared(tmp_path):
    """A new table or column that can hold text must say whether it holds personal data."""
    db = await migrated_database(tmp_path / "bot.db")
    try:
        declared = {f"{c.table}.{c.column}" for c in PERSONAL_COLUMNS}
        plain = _not_personal()
        undeclared, tables = [], set()
        for (table,) in await db.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'"):
            tables.add(table)
            if table in plain:
                continue
            for column in await db.fetchall(f'PRAGMA table_info("{table}")'):
                name = f"{table}.{column['name']}"
                if column["type"].upper() in ("TEXT", "") and name not in declared | plain:
                    undeclared.append(name)
        assert undeclared == [], "declare these in storage/personal_data.py"
        # and the declarations name real columns (a typo would protect nothing)
        for c in PERSONAL_COLUMNS:
            if c.table in tables:
                columns = {r["name"] for r in await db.fetchall(f'PRAGMA table_info("{c.table}")')}
                assert c.column in columns, f"{c.table}.{c.column}"
    finally:
        await db.close()


async def _everything_a_coordinator_does(bot: LocalBot) -> int:
    """KOORD records a central place, sets up a tandem and a channel, pauses the tandem and has
    a profile; another coordinator names KOORD in a reason. Returns the tandem's number."""
    for user, town in ((ANNA, "Wittenberge"), (BEN, "Bad Berleburg"), (KOORD, "Perleberg")):
        await bot.say(f"!profil ort {town}", sender=user)
        await bot.say("!profil themen hinzufügen Innenstadt", sender=user)
    await bot.say(f"!zentralort setzen {ARKEBEK} grundzentrum_mz Regionalplan 2024", sender=KOORD)
    await bot.say(f"!zentralort setzen 12070424 mittelzentrum abgestimmt mit {KOORD}", sender=OTHER)
    await bot.say(f"!tandem anlegen {ANNA} {BEN} Innenstadt", sender=KOORD)
    await bot.say("!thema anlegen Wohnen", sender=KOORD)
    [(tandem,)] = await bot.db.fetchall("SELECT id FROM tandems")
    await bot.say(f"!tandem pausieren {tandem}", sender=KOORD)
    if await bot.db.fetchone("SELECT 1 FROM sqlite_master WHERE name = 'checkin_answers'"):
        await bot.db.execute(
            "INSERT INTO checkins (tandem_id, occurrence_key, room_id, posted_at) VALUES (?, 'k1', '!r', 1)",
            (tandem,),
        )
        await bot.db.execute(
            "INSERT INTO checkin_answers (checkin_id, user_id, answer, source_event_id, answered_at)"
            " VALUES (1, ?, 'done', '$antwort', 2)",
            (KOORD,),
        )
    return tandem


@pytest.fixture
async def bot(tmp_path):
    local = await make_local_bot(tmp_path, coordinators=[KOORD, OTHER])
    yield local
    await local.db.close()


async def test_export_lists_every_record_that_holds_the_person(bot):
    await _everything_a_coordinator_does(bot)
    [message] = await bot.say("!profil export", sender=KOORD)
    kinds = {r["what"]: r["kind"] for r in message.reply.data["records"]}
    for what in ("central_places.set_by", "tandems.created_by", "tandem_events.actor"):
        assert kinds[what] == Erase.PSEUDONYM.value, what
    assert kinds["topic_channels.created_by"] == "pseudonym"
    assert kinds["central_places.reason"] == "mention"  # the other coordinator's note
    # the person's own profile and tandems have their own sections, not repeated here
    assert "profiles.user_id" not in kinds and "tandems.user_a" not in kinds
    text = message.body
    assert ARKEBEK in text and "Regionalplan 2024" in text and "Wohnen" in text
    assert "Perleberg" in text  # the profile


async def test_erasure_of_a_coordinator_leaves_no_trace_but_a_pseudonym(bot, tmp_path):
    tandem = await _everything_a_coordinator_does(bot)
    [done] = await bot.say("!profil löschen bestätigen", sender=KOORD)
    assert done.reply.data["had_profile"] and done.reply.data["records"] >= 4
    assert await rows_mentioning(bot.db, KOORD) == []
    # the audit trail keeps who did it as one pseudonym, the same in every table
    row = await bot.db.fetchone("SELECT set_by FROM central_places WHERE ags = ?", (ARKEBEK,))
    pseudonym = row["set_by"]
    assert re.fullmatch(r"erased-[0-9a-f]{8}", pseudonym)
    assert (await bot.db.fetchone("SELECT created_by FROM tandems"))["created_by"] == pseudonym
    actors = await bot.db.fetchall("SELECT actor FROM tandem_events WHERE tandem_id = ?", (tandem,))
    assert {r["actor"] for r in actors} == {pseudonym}
    assert (await bot.db.fetchone("SELECT created_by FROM topic_channels"))["created_by"] == pseudonym
    reason = (await bot.db.fetchone("SELECT reason FROM central_places WHERE ags = '12070424'"))["reason"]
    assert reason == f"abgestimmt mit {pseudonym}"
    # what belongs to others stays: the tandem, its partners and towns, the other record's author
    row = await bot.db.fetchone("SELECT user_a, user_b, state FROM tandems")
    assert (row["user_a"], row["user_b"], row["state"]) == (ANNA, BEN, "paused")
    assert (await bot.db.fetchone("SELECT set_by FROM central_places WHERE ags = '12070424'"))[0] == OTHER
    # and nothing is left in the file's free pages or the write-ahead log either
    for file in (Path(tmp_path / "bot.db"), Path(str(tmp_path / "bot.db") + "-wal")):
        if file.exists():
            assert KOORD.encode() not in file.read_bytes(), file.name
    # a second erasure finds nothing and says so
    again = await bot.text("!profil löschen bestätigen", sender=KOORD)
    assert "nichts" in again


async def test_each_erasure_draws_a_new_pseudonym(bot):
    await bot.say(f"!zentralort setzen {ARKEBEK} grundzentrum_mz Regionalplan", sender=KOORD)
    first = await PersonalData(bot.db).erase(KOORD)
    await bot.say("!zentralort setzen 12070424 mittelzentrum Regionalplan", sender=KOORD)
    second = await PersonalData(bot.db).erase(KOORD)
    assert first.pseudonym != second.pseudonym
    rows = await bot.db.fetchall("SELECT set_by FROM central_places ORDER BY ags")
    assert [r[0] for r in rows] == [first.pseudonym, second.pseudonym]


async def rows_mentioning(db, needle: str) -> list[str]:
    """Every (table, row) in the whole database with ``needle`` in any text column."""
    found = []
    for (table,) in await db.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'"):
        for row in await db.fetchall(f'SELECT * FROM "{table}"'):
            if any(isinstance(v, str) and needle in v for v in tuple(row)):
                found.append(f"{table}: {tuple(row)}")
    return found


async def test_a_table_from_a_later_migration_is_covered_when_present(tmp_path):
    """Declared tables that this database does not have (yet) are skipped, not an error."""
    db = await migrated_database(tmp_path / "bot.db")
    try:
        await db.execute("DROP TABLE IF EXISTS checkin_answers")
        erasure = await PersonalData(db).erase(ANNA)
        assert erasure.total == 0 and await PersonalData(db).export(ANNA) == []
    finally:
        await db.close()


@pytest.mark.synapse
async def test_a_coordinator_exports_and_erases_through_synapse(make_bot, make_user):
    coordinator = await make_user("koordination")
    bot = await make_bot(coordinators=[coordinator.user_id])
    dm = await coordinator.dm(bot.user_id)
    await coordinator.ask(dm, f"!zentralort setzen {ARKEBEK} grundzentrum_mz Regionalplan 2024")
    export = await coordinator.ask(dm, "!profil export")
    assert ARKEBEK in export.body and "Regionalplan 2024" in export.body
    assert "Zentralort-Vermerk, den Sie eingetragen haben" in export.body
    done = await coordinator.ask(dm, "!profil löschen bestätigen")
    assert "Pseudonym" in done.body
    db = bot.bot.db
    assert await rows_mentioning(db, coordinator.user_id) == []
    row = await db.fetchone("SELECT set_by FROM central_places WHERE ags = ?", (ARKEBEK,))
    assert re.fullmatch(r"erased-[0-9a-f]{8}", row["set_by"])
