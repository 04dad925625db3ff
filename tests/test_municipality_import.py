"""Register and central-place imports: all or nothing, the first bad line named."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TypeVar

import pytest

from bot.cli import main as cli_main
from storage.database import Database
from storage.municipalities import (
    SHIPPED_CSV,
    MunicipalityRepository,
    RegisterImportError,
    parse_gv100ad,
    parse_register_csv,
)

T = TypeVar("T")

# The first records of the raw Destatis file (Schleswig-Holstein: Land, Kreis Flensburg, Kiel, …),
# cut from the edition the shipped CSV was made from; 220 characters each.
RAW_HEAD = [
    "102025113001          Schleswig-Holstein                                Kiel",
    "402025113001001       Flensburg, Stadt                                  Flensburg"
    "                                         41",
    "502025113001001   0000Flensburg, Stadt                                  "
    "                                                  50",
    "6020251130010010000000Flensburg, Stadt                                  "
    "                                                  61    0000000567300000096326"
    "00000047651    24937*****  2115111211901001",
]


def present(value: T | None) -> T:
    assert value is not None
    return value


def raw_line(text: str) -> str:
    return text.ljust(220)


def raw_file(tmp_path: Path, lines: list[str], name: str = "GV100AD.txt", newline: bool = True) -> Path:
    path = tmp_path / name
    path.write_text(
        "\r\n".join(raw_line(line) for line in lines) + ("\r\n" if newline else ""), encoding="utf-8"
    )
    return path


def csv_head(rows: int) -> str:
    return "\r\n".join(SHIPPED_CSV.read_text(encoding="utf-8").splitlines()[: rows + 1]) + "\r\n"


@pytest.fixture
async def db(tmp_path):
    database = await Database(tmp_path / "bot.db").open()
    yield database
    await database.close()


async def test_shipped_register_is_loaded_by_migration(db):
    repo = MunicipalityRepository(db)
    assert await repo.count() == len(SHIPPED_CSV.read_text(encoding="utf-8").splitlines()) - 1
    info = present(await repo.info())
    assert (info.gebietsstand, info.population_date) == ("2025-11-30", "2024-12-31")
    town = present(await repo.get("05970004"))
    assert (town.name, town.population, town.kreis) == ("Bad Berleburg", 18400, "Siegen-Wittgenstein")


def test_raw_record_parses_like_the_csv():
    town = parse_gv100ad("\n".join(raw_line(line) for line in RAW_HEAD), "2024-12-31")[0]
    shipped = parse_register_csv(csv_head(1))[0]
    assert town == shipped


async def test_good_raw_file_replaces_register(db, tmp_path):
    path = raw_file(tmp_path, RAW_HEAD)
    info = await MunicipalityRepository(db).import_file(path, "2024-12-31")
    repo = MunicipalityRepository(db)
    assert info.rows == 1 and await repo.count() == 1
    assert present(await repo.get("01001000")).population == 96326
    assert await repo.get("05970004") is None
    assert present(await repo.info()).source == "GV100AD.txt"


async def test_good_csv_replaces_register(db, tmp_path):
    path = tmp_path / "gemeinden.csv"
    path.write_text(csv_head(5), encoding="utf-8")
    info = await MunicipalityRepository(db).import_file(path)
    assert info.rows == 5
    assert await MunicipalityRepository(db).count() == 5


@pytest.mark.parametrize("cut", [100, 2000, 7000])
async def test_truncated_csv_changes_nothing(db, tmp_path, cut):
    repo = MunicipalityRepository(db)
    before = await repo.count()
    text = csv_head(60)
    path = tmp_path / "cut.csv"
    path.write_text(text[:cut], encoding="utf-8")
    with pytest.raises(RegisterImportError) as caught:
        await repo.import_file(path)
    assert caught.value.line == text[:cut].count("\n") + 1  # the last, cut-off line
    assert await repo.count() == before
    assert present(await repo.get("05970004")).population == 18400


async def test_truncated_raw_file_changes_nothing(db, tmp_path):
    repo = MunicipalityRepository(db)
    before = await repo.count()
    path = tmp_path / "cut.txt"
    full = "\r\n".join(raw_line(line) for line in RAW_HEAD) + "\r\n"
    path.write_text(full[: 3 * 222 + 150], encoding="utf-8")
    with pytest.raises(RegisterImportError) as caught:
        await repo.import_file(path, "2024-12-31")
    assert caught.value.line == 4
    assert await repo.count() == before


async def test_raw_municipality_without_its_kreis_is_refused(db, tmp_path):
    path = raw_file(tmp_path, [RAW_HEAD[0], RAW_HEAD[3]])
    with pytest.raises(RegisterImportError) as caught:
        await MunicipalityRepository(db).import_file(path, "2024-12-31")
    assert caught.value.line == 2


async def test_bad_value_names_first_bad_line(db, tmp_path):
    lines = csv_head(4).splitlines()
    lines[3] = lines[3].replace(",2024-12-31,", ",31.12.2024,", 1)
    lines[4] = lines[4].replace("2024-12-31", "bad")
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(RegisterImportError) as caught:
        await MunicipalityRepository(db).import_file(path)
    assert caught.value.line == 4
    assert await MunicipalityRepository(db).count() > 4


async def test_raw_file_needs_population_date(db, tmp_path):
    path = raw_file(tmp_path, RAW_HEAD)
    with pytest.raises(RegisterImportError, match="population-date"):
        await MunicipalityRepository(db).import_file(path)


async def test_central_places_csv(db, tmp_path):
    repo = MunicipalityRepository(db)
    path = tmp_path / "zo.csv"
    path.write_text("ags,function\n05970004,mittelzentrum\n01051002,Grundzentrum-MZ\n", encoding="utf-8")
    assert await repo.import_central_places(path, "cli", "2026-12-01T09:00:00+00:00") == 2
    assert present(await repo.central_place("01051002")).function == "grundzentrum_mz"
    assert present(await repo.central_place("01051002")).qualifies
    bad = tmp_path / "bad.csv"
    bad.write_text("ags,function\n01051002,keine\n99999999,mittelzentrum\n", encoding="utf-8")
    with pytest.raises(RegisterImportError) as caught:
        await repo.import_central_places(bad, "cli", "2026-12-01T09:00:00+00:00")
    assert caught.value.line == 3
    assert present(await repo.central_place("01051002")).function == "grundzentrum_mz"  # unchanged
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("01051002,riesig\n", encoding="utf-8")
    with pytest.raises(RegisterImportError) as caught:
        await repo.import_central_places(unknown, "cli", "2026-12-01T09:00:00+00:00")
    assert caught.value.line == 1


def test_cli_imports_and_refuses(tmp_path, monkeypatch, capsys):
    for key in list(__import__("os").environ):
        if key.startswith("KLEINSTADTBOT_"):
            monkeypatch.delenv(key)
    database = tmp_path / "cli.db"
    monkeypatch.setenv("KLEINSTADTBOT_DATABASE", str(database))
    good = raw_file(tmp_path, RAW_HEAD)
    assert cli_main(["data", "import-municipalities", str(good), "--population-date", "2024-12-31"]) == 0
    assert "imported 1 municipalities" in capsys.readouterr().out
    cut = tmp_path / "cut.txt"
    cut.write_text(good.read_text(encoding="utf-8")[:500], encoding="utf-8")
    assert cli_main(["data", "import-municipalities", str(cut), "--population-date", "2024-12-31"]) == 1
    err = capsys.readouterr().err
    assert "line 3" in err and "nothing was changed" in err
    places = tmp_path / "zo.csv"
    places.write_text("ags,function\n01001000,oberzentrum\n", encoding="utf-8")
    assert cli_main(["data", "import-central-places", str(places)]) == 0

    async def check() -> tuple[int, str]:
        async with Database(database) as db:
            repo = MunicipalityRepository(db)
            return await repo.count(), present(await repo.central_place("01001000")).function

    assert asyncio.run(check()) == (1, "oberzentrum")


# --- names as people know them ---------------------------------------------------------------------


def test_raw_import_writes_abbreviations_out_and_keeps_the_official_name():
    record = raw_line(RAW_HEAD[3])
    renamed = record[:22] + "Neustadt a.d.Aisch, St".ljust(50) + record[72:]
    town = parse_gv100ad("\n".join([*(raw_line(line) for line in RAW_HEAD[:3]), renamed]), "2024-12-31")[0]
    assert (town.name, town.name_official) == ("Neustadt an der Aisch", "Neustadt a.d.Aisch, St")


def test_csv_import_writes_abbreviations_out():
    header, first = csv_head(1).splitlines()
    fields = first.split(",")
    fields[1] = "Weilheim i.OB"
    town = parse_register_csv("\r\n".join([header, ",".join(fields)]) + "\r\n")[0]
    assert town.name == "Weilheim in Oberbayern"


async def test_migration_writes_out_the_names_of_an_older_database(tmp_path):
    from storage.database import discover_migrations
    from storage.migrations.m0006_common_names import DESCRIPTION

    mine = next(m for m in discover_migrations() if m.description == DESCRIPTION)
    db = await Database(tmp_path / "old.db").open(migrate=False)
    try:
        await db.migrate(until=mine.version - 1)
        await db.execute("UPDATE municipalities SET name = 'Neustadt a.d.Aisch' WHERE ags = '09575153'")
        await db.migrate()
        town = present(await MunicipalityRepository(db).get("09575153"))
        assert (town.name, town.name_official) == ("Neustadt an der Aisch", "Neustadt a.d.Aisch, St")
        assert present(await MunicipalityRepository(db).get("05970004")).name == "Bad Berleburg"
    finally:
        await db.close()
