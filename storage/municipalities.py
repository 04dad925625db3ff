"""The official municipality register (Destatis GV100AD) and the operator's central-place overrides.

``MunicipalityRepository`` is the only writer of ``municipalities``, ``municipality_register`` and
``central_places``. A register file (the raw GV100AD fixed-width file or the project's CSV) is
parsed and checked completely before anything is written; the replacement then happens in one
transaction, so a broken file changes nothing and the error names its first bad line.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from storage.database import Database

SHIPPED_CSV = Path(__file__).resolve().parent / "data" / "gemeinden.csv"
SHIPPED_POPULATION_DATE = "2024-12-31"

CSV_COLUMNS = (
    "ags",
    "name",
    "land",
    "kreis",
    "population",
    "population_date",
    "name_official",
    "ars",
    "gemeinde_type",
    "gemeindeverband",
    "gemeindeverband_type",
    "regierungsbezirk",
    "kreis_type",
    "area_km2",
    "population_male",
    "plz",
    "gebietsstand",
)
REQUIRED_CSV_COLUMNS = ("ags", "name", "land", "kreis", "population", "population_date", "gebietsstand")

# Destatis Textkennzeichen, as used in the GV100AD file (checked against the shipped CSV).
KREIS_TYPES = {
    "41": "Kreisfreie Stadt",
    "42": "Stadtkreis",
    "43": "Kreis",
    "44": "Landkreis",
    "45": "Regionalverband",
}
VERBAND_TYPES = {
    "50": "verbandsfreie Gemeinde",
    "51": "Amt",
    "52": "Samtgemeinde",
    "53": "Verbandsgemeinde",
    "54": "Verwaltungsgemeinschaft",
    "55": "Kirchspielslandgemeinde",
    "56": "Verwaltungsverband",
    "57": "Verbandsgemeinde (Trägermodell)",
    "58": "Erfüllende Gemeinde",
}
GEMEINDE_TYPES = {
    "60": "Markt",
    "61": "Kreisfreie Stadt",
    "62": "Stadtkreis",
    "63": "Stadt",
    "64": "Kreisangehörige Gemeinde",
    "67": "Große Kreisstadt",
}
UNINCORPORATED = {"65", "66"}  # gemeindefreie Gebiete: not municipalities, left out
NOT_IN_VERBAND = "verbandsfreie Gemeinde"
RAW_RECORD_LENGTH = 220

# Central-place functions an operator can record (Zentrale-Orte-Konzept of the Länder's plans).
# ``qualifies``: at least "grundzentrale Funktion mit mittelzentraler Teilfunktion".
CENTRAL_FUNCTIONS: dict[str, bool] = {
    "keine": False,
    "grundzentrum": False,
    "grundzentrum_mz": True,
    "mittelzentrum": True,
    "oberzentrum": True,
}
CENTRAL_ALIASES = {
    "none": "keine",
    "kein": "keine",
    "nein": "keine",
    "no": "keine",
    "-": "keine",
    "gz": "grundzentrum",
    "grundzentral": "grundzentrum",
    "gz_mz": "grundzentrum_mz",
    "gzmz": "grundzentrum_mz",
    "gz+mz": "grundzentrum_mz",
    "grundzentrum+mz": "grundzentrum_mz",
    "grundzentrum_mit_mittelzentraler_teilfunktion": "grundzentrum_mz",
    "mz": "mittelzentrum",
    "oz": "oberzentrum",
}


def parse_central_function(text: str) -> str | None:
    """The canonical function code for ``text`` (``Grundzentrum-MZ``, ``mz`` …), None if unknown."""
    key = text.strip().lower().replace("ä", "ae").replace("-", "_").replace(" ", "_")
    key = CENTRAL_ALIASES.get(key, key)
    return key if key in CENTRAL_FUNCTIONS else None


# --- names as people know them ----------------------------------------------------------------
#
# The register abbreviates: "Neustadt a.d.Aisch", "Weilheim i.OB", "Grafing b.München",
# "Schwarzenberg/Erzgeb.". ``common_name`` writes the abbreviations out, so answers say
# "Neustadt an der Aisch"; the official name stays in ``name_official``. Rules checked against
# every name of the 2025 edition; the few that a rule would get wrong are listed whole.
COMMON_NAME_EXCEPTIONS = {
    "Born a. Darß": "Born auf dem Darß",
    "Wieck a. Darß": "Wieck auf dem Darß",
    "Neukirchen b.Hl.Blut": "Neukirchen beim Heiligen Blut",
    "Bernstadt a. d. Eigen": "Bernstadt auf dem Eigen",
    "Schönau-Berzdorf a. d. Eigen": "Schönau-Berzdorf auf dem Eigen",
    "Berka v. d. Hainich": "Berka vor dem Hainich",
}
_COMMON_NAME_RULES = [
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        # regions first: "i.OB" is "in Oberbayern", not "im"
        (r"\bi\.\s?OB\b", "in Oberbayern"),
        (r"\bi\.\s?NB\b", "in Niederbayern"),
        (r"\bi\.\s?OFr\.", "in Oberfranken"),
        (r"\bi\.\s?UFr\.", "in Unterfranken"),
        (r"\bi\.\s?Bay\.", "in Bayern"),
        (r"\bi\.\s?Schw\.", "in Schwaben"),
        (r"\bi\.\s?Sa\.", "in Sachsen"),
        (r"\bOPf\.", "Oberpfalz"),
        (r"\bOdw\.", "Odenwald"),
        (r"\bO\.\s?L\.", "Oberlausitz"),
        (r"\bErzgeb\.", "Erzgebirge"),
        (r"\bVogtl\.", "Vogtland"),
        (r"/Sa\.", "/Sachsen"),
        (r"\bThür\. Wald\b", "Thüringer Wald"),
        (r"\bThür\.", "Thüringen"),
        (r"\bSächs\. Schw\.", "Sächsische Schweiz"),
        (r"\(Westf\.\)", "(Westfalen)"),
        (r"\(Rhld\.\)", "(Rheinland)"),
        # connectors: "a.d." an der, "i.d." in der, "v.d." vor der, "o.d." ob der; "a." am …
        (r"\ba\.\s?d\.\s?", "an der "),
        (r"\bi\.\s?d\.\s?", "in der "),
        (r"\bv\.\s?d\.\s?", "vor der "),
        (r"\bo\.\s?d\.\s?", "ob der "),
        (r"\ba\.\s?(?=\w)", "am "),
        (r"\bi\.\s?(?=\w)", "im "),
        (r"\bb\.\s?(?=\w)", "bei "),
        (r"\bv\.\s?(?=\w)", "vor "),
        (r"\bSt\.(?=\w)", "St. "),  # "St.Gangloff"
        (r"(?<=\S)/ (?=\S)", "/"),  # "Lauenburg/ Elbe"
    )
]


def common_name(name: str) -> str:
    """The name as people write it: abbreviations written out (``Neustadt a.d.Aisch`` →
    ``Neustadt an der Aisch``, ``Weilheim i.OB`` → ``Weilheim in Oberbayern``). Designations
    after a comma (``, St``, ``, M``, ``, Lutherstadt``) are dropped. Names already written out
    stay as they are, so applying it twice changes nothing."""
    name = name.split(",", 1)[0].strip()
    if name in COMMON_NAME_EXCEPTIONS:
        return COMMON_NAME_EXCEPTIONS[name]
    if "." not in name and "/ " not in name:
        return name
    for pattern, replacement in _COMMON_NAME_RULES:
        name = pattern.sub(replacement, name)
    return " ".join(name.split())


def name_additions(name_official: str) -> list[str]:
    """The parts of an official name after its first comma, abbreviations left out:
    ``Eisleben, Lutherstadt`` → ``["Lutherstadt"]``; ``Bad Tölz, St`` → ``[]``. People put them
    in front ("Lutherstadt Eisleben", "Ostseebad Binz")."""
    parts = [p.strip() for p in name_official.split(",")[1:]]
    return [p for p in parts if p and p not in NAME_ABBREVIATIONS and "/" not in p]


# Destatis's own short designations after the comma: Stadt, Markt, Große Kreisstadt.
NAME_ABBREVIATIONS = {"St", "M", "GKSt"}


def verband_label(kind: str, name: str) -> str:
    """How the Gemeindeverband is called: its type once, abbreviations written out.

    ``Verwaltungsgemeinschaft`` + ``VVG der Stadt Herrenberg`` → "Vereinbarte
    Verwaltungsgemeinschaft der Stadt Herrenberg"; ``Verwaltungsverband`` + ``GVV Plochingen`` →
    "Gemeindeverwaltungsverband Plochingen"; ``Verwaltungsgemeinschaft`` + ``Kochel a.See (VGem)``
    → "Verwaltungsgemeinschaft Kochel am See"; ``Amt`` + ``Amt Lütjenburg`` → "Amt Lütjenburg".
    """
    parts = [p.strip() for p in name.split(",")]
    while len(parts) > 1 and parts[-1] in {"Stadt", *NAME_ABBREVIATIONS}:
        parts.pop()  # "Schwedt/Oder, Stadt" as Erfüllende Gemeinde
    text = ", ".join(common_name(p) if i == 0 else p for i, p in enumerate(parts))
    if text.endswith(" (VGem)"):
        return f"Verwaltungsgemeinschaft {text[: -len(' (VGem)')]}"
    if text.startswith("VVG "):
        return f"Vereinbarte Verwaltungsgemeinschaft {text[4:]}"
    if text.startswith("GVV "):
        return f"Gemeindeverwaltungsverband {text[4:]}"
    if text.startswith("EG "):
        text = text[3:]
    if not kind or text.lower().startswith(kind.lower()):
        return text
    return f"{kind} {text}"


_SHARED_FIELDS = (
    "land",
    "kreis",
    "population_date",
    "gemeinde_type",
    "gemeindeverband_type",
    "regierungsbezirk",
    "kreis_type",
    "gebietsstand",
    "gemeindeverband",
)


KREISFREI = {"Kreisfreie Stadt", "Stadtkreis"}


@dataclass(frozen=True, slots=True)
class Municipality:
    ags: str
    name: str
    land: str
    kreis: str
    population: int
    population_date: str
    name_official: str = ""
    ars: str = ""
    gemeinde_type: str = ""
    gemeindeverband: str = ""
    gemeindeverband_type: str = ""
    regierungsbezirk: str = ""
    kreis_type: str = ""
    area_km2: float | None = None
    population_male: int | None = None
    plz: str = ""
    gebietsstand: str = ""

    @property
    def kreisfrei(self) -> bool:
        return self.kreis_type in KREISFREI

    @property
    def kreis_label(self) -> str:
        """``Kreis Siegen-Wittgenstein``, ``Landkreis Kelheim``, ``Heidekreis``; empty for a
        kreisfreie Stadt (its Kreis is the town itself)."""
        if self.kreisfrei:
            return ""
        kreis = common_name(self.kreis)
        lower = kreis.lower()
        # "Heidekreis", "Region Hannover", "Städteregion Aachen", "Regionalverband Saarbrücken"
        if "kreis" in lower or "region" in lower or not self.kreis_type:
            return kreis
        return f"{self.kreis_type} {kreis}"

    @property
    def verband_label(self) -> str:
        """``Amt Marne-Nordsee``, ``Verwaltungsgemeinschaft Kochel am See``; empty if none."""
        return verband_label(self.gemeindeverband_type, self.gemeindeverband) if self.in_verband else ""

    @property
    def additions(self) -> list[str]:
        """Honorary and other parts of the official name (``Lutherstadt``, ``Ostseebad``)."""
        return name_additions(self.name_official)

    def __post_init__(self) -> None:
        # Land, Kreis, dates and types repeat thousands of times: keep one copy of each.
        for name in _SHARED_FIELDS:
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, sys.intern(value))

    @property
    def verband_key(self) -> str:
        """Land, Regierungsbezirk, Kreis and Gemeindeverband digits of the ARS (9 digits)."""
        return self.ars[:9] if len(self.ars) == 12 else ""

    @property
    def in_verband(self) -> bool:
        return bool(self.gemeindeverband_type) and self.gemeindeverband_type != NOT_IN_VERBAND


@dataclass(frozen=True)
class RegisterInfo:
    gebietsstand: str
    population_date: str
    source: str
    rows: int
    imported_at: str = ""


@dataclass(frozen=True)
class CentralPlace:
    ags: str
    function: str
    reason: str
    set_by: str
    set_at: str

    @property
    def qualifies(self) -> bool:
        return CENTRAL_FUNCTIONS.get(self.function, False)


class RegisterImportError(ValueError):
    """A register or central-place file is broken; ``line`` is the first bad line (1-based)."""

    def __init__(self, line: int, message: str):
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


# --- parsing ----------------------------------------------------------------------------------


def _iso_date(value: str, line: int, field: str) -> str:
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise RegisterImportError(line, f"{field} {value!r} is not a date (YYYY-MM-DD)") from None


def _int(value: str, line: int, field: str, required: bool = True) -> int | None:
    value = value.strip()
    if not value and not required:
        return None
    if not (value.isascii() and value.isdigit()):
        raise RegisterImportError(line, f"{field} {value!r} is not a whole number")
    return int(value)


def _count(value: str, line: int, field: str) -> int:
    """A required whole number (a population)."""
    number = _int(value, line, field)
    assert number is not None  # required: _int raised if it was empty
    return number


def parse_register_csv(text: str) -> list[Municipality]:
    """Rows of the project's CSV format (see storage/data/PROVENANCE.md); checks every row."""
    rows = list(iter_register_csv(io.StringIO(text, newline="")))
    if not rows:
        raise RegisterImportError(1, "the file holds no municipalities")
    return rows


def iter_register_csv(lines: Iterable[str]) -> Iterator[Municipality]:
    """The rows of a register CSV one by one, each checked; raises at the first bad line."""
    reader = csv.reader(lines)
    try:
        header = [h.strip().lstrip("\ufeff") for h in next(reader)]
    except StopIteration:
        raise RegisterImportError(1, "the file is empty") from None
    missing = [c for c in REQUIRED_CSV_COLUMNS if c not in header]
    if missing:
        raise RegisterImportError(1, f"header lacks column(s) {', '.join(missing)}")
    index = {name: header.index(name) for name in CSV_COLUMNS if name in header}
    seen: set[str] = set()
    for fields in reader:
        line = reader.line_num
        if not fields or fields == [""]:
            continue
        if len(fields) != len(header):
            raise RegisterImportError(line, f"expected {len(header)} fields, found {len(fields)}")

        def get(name: str, fields: list[str] = fields) -> str:
            return fields[index[name]].strip() if name in index else ""

        ags = get("ags")
        if not re.fullmatch(r"\d{8}", ags):
            raise RegisterImportError(line, f"AGS {ags!r} is not 8 digits")
        if ags in seen:
            raise RegisterImportError(line, f"AGS {ags} occurs twice")
        seen.add(ags)
        if not get("name") or not get("land") or not get("kreis"):
            raise RegisterImportError(line, "name, land and kreis must not be empty")
        area = get("area_km2")
        try:
            area_value = float(area) if area else None
        except ValueError:
            raise RegisterImportError(line, f"area_km2 {area!r} is not a number") from None
        yield Municipality(
            ags=ags,
            name=common_name(get("name")),
            land=get("land"),
            kreis=get("kreis"),
            population=_count(get("population"), line, "population"),
            population_date=_iso_date(get("population_date"), line, "population_date"),
            name_official=get("name_official") or get("name"),
            ars=get("ars"),
            gemeinde_type=get("gemeinde_type"),
            gemeindeverband=get("gemeindeverband"),
            gemeindeverband_type=get("gemeindeverband_type"),
            regierungsbezirk=get("regierungsbezirk"),
            kreis_type=get("kreis_type"),
            area_km2=area_value,
            population_male=_int(get("population_male"), line, "population_male", required=False),
            plz=get("plz"),
            gebietsstand=_iso_date(get("gebietsstand"), line, "gebietsstand"),
        )


def parse_gv100ad(text: str, population_date: str) -> list[Municipality]:
    """Rows of the raw Destatis GV100AD fixed-width file (record types 10/20/40/50/60)."""
    population_date = _iso_date(population_date, 0, "population date")
    lands: dict[str, str] = {}
    regions: dict[str, str] = {}
    kreise: dict[str, tuple[str, str]] = {}
    verbaende: dict[str, tuple[str, str]] = {}
    rows: list[Municipality] = []
    lines = text.lstrip("\ufeff").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, raw in enumerate(lines, start=1):
        record = raw.rstrip("\r")
        if len(record) != RAW_RECORD_LENGTH:
            raise RegisterImportError(number, f"record has {len(record)} characters, expected 220")
        kind = record[0:2]
        stand = record[2:10]
        key = record[10:18].rstrip()
        name = record[22:72].strip()
        code = record[122:124]
        if not (stand.isascii() and stand.isdigit()):
            raise RegisterImportError(number, f"Gebietsstand {stand!r} is not a date")
        if kind == "10":
            lands[key[:2]] = name
        elif kind == "20":
            regions[key[:3]] = name
        elif kind == "30":
            continue  # Regionen (Baden-Württemberg), not needed
        elif kind == "40":
            kreise[key[:5]] = (name, KREIS_TYPES.get(code, ""))
        elif kind == "50":
            verbaende[key[:5] + record[18:22]] = (name, VERBAND_TYPES.get(code, ""))
        elif kind == "60":
            if code in UNINCORPORATED:
                continue
            if code not in GEMEINDE_TYPES:
                raise RegisterImportError(number, f"unknown Textkennzeichen {code!r}")
            ags, verband = record[10:18], record[18:22]
            if not (ags.isascii() and ags.isdigit()):
                raise RegisterImportError(number, f"AGS {ags!r} is not 8 digits")
            if ags[:2] not in lands or ags[:5] not in kreise or ags[:5] + verband not in verbaende:
                raise RegisterImportError(
                    number, f"municipality {ags} comes before its Land, Kreis or Gemeindeverband record"
                )
            population = _count(record[139:150], number, "population")
            male = _int(record[150:161], number, "population_male", required=False)
            area = _int(record[128:139], number, "area", required=False)
            iso_stand = _iso_date(f"{stand[:4]}-{stand[4:6]}-{stand[6:8]}", number, "Gebietsstand")
            kreis_name, kreis_type = kreise[ags[:5]]
            verband_name, verband_type = verbaende[ags[:5] + verband]
            rows.append(
                Municipality(
                    ags=ags,
                    name=common_name(name),
                    land=lands[ags[:2]],
                    kreis=kreis_name,
                    population=population,
                    population_date=population_date,
                    name_official=name,
                    ars=ags[:5] + verband + ags[5:],
                    gemeinde_type=GEMEINDE_TYPES[code],
                    gemeindeverband=verband_name,
                    gemeindeverband_type=verband_type,
                    regierungsbezirk=regions.get(ags[:3], ""),
                    kreis_type=kreis_type,
                    area_km2=round(area / 100, 2) if area is not None else None,
                    population_male=male,
                    plz=record[165:170].strip(),
                    gebietsstand=iso_stand,
                )
            )
        else:
            raise RegisterImportError(number, f"unknown record type {kind!r}")
    if not rows:
        raise RegisterImportError(len(lines) or 1, "the file holds no municipalities")
    return rows


def parse_register_file(path: str | Path, population_date: str | None = None) -> list[Municipality]:
    """Read a register file, telling the CSV from the raw GV100AD file by its first line."""
    text = Path(path).read_text(encoding="utf-8")
    first = text.lstrip("\ufeff").split("\n", 1)[0]
    if first.startswith("ags,") or first.startswith('"ags"'):
        return parse_register_csv(text)
    if population_date is None:
        raise RegisterImportError(
            0,
            "the raw GV100AD file does not carry the population reference date; give it with "
            "--population-date YYYY-MM-DD (see the Hinweise file of the edition)",
        )
    return parse_gv100ad(text, population_date)


def parse_central_places_csv(text: str) -> list[tuple[str, str]]:
    """``ags,function`` rows (header optional); returns (ags, canonical function)."""
    found: list[tuple[str, str]] = []
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    for fields in reader:
        line = reader.line_num
        if not fields or all(not f.strip() for f in fields):
            continue
        if line == 1 and fields[0].strip().lower() == "ags":
            continue
        if len(fields) != 2:
            raise RegisterImportError(line, f"expected 2 fields (ags,function), found {len(fields)}")
        ags, function = fields[0].strip(), fields[1].strip()
        if not re.fullmatch(r"\d{8}", ags):
            raise RegisterImportError(line, f"AGS {ags!r} is not 8 digits")
        code = parse_central_function(function)
        if code is None:
            raise RegisterImportError(
                line, f"unknown function {function!r}; use one of {', '.join(CENTRAL_FUNCTIONS)}"
            )
        found.append((ags, code))
    return found


# --- writing ------------------------------------------------------------------------------------

INSERT_SQL = (
    "INSERT INTO municipalities (ags, name, land, kreis, population, population_date, name_official, "
    "ars, gemeinde_type, gemeindeverband, gemeindeverband_type, regierungsbezirk, kreis_type, area_km2, "
    "population_male, plz, gebietsstand) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


async def write_register(conn, rows: Iterable[Municipality], source: str) -> RegisterInfo:
    """Replace the register inside the caller's transaction. ``rows`` may be a stream: they are
    inserted as they come, so loading the shipped file keeps no copy of it in memory."""
    stands: set[str] = set()
    dates: set[str] = set()
    count = 0

    def values() -> Iterator[tuple]:
        nonlocal count
        for r in rows:
            stands.add(r.gebietsstand)
            dates.add(r.population_date)
            count += 1
            yield (
                r.ags,
                r.name,
                r.land,
                r.kreis,
                r.population,
                r.population_date,
                r.name_official,
                r.ars,
                r.gemeinde_type,
                r.gemeindeverband,
                r.gemeindeverband_type,
                r.regierungsbezirk,
                r.kreis_type,
                r.area_km2,
                r.population_male,
                r.plz,
                r.gebietsstand,
            )

    await conn.execute("DELETE FROM municipalities")
    await conn.executemany(INSERT_SQL, values())
    if not count:
        raise RegisterImportError(1, "the file holds no municipalities")
    info = RegisterInfo(gebietsstand=max(stands), population_date=max(dates), source=source, rows=count)
    await conn.execute("DELETE FROM municipality_register")
    await conn.execute(
        "INSERT INTO municipality_register (id, gebietsstand, population_date, source, row_count) "
        "VALUES (1, ?, ?, ?, ?)",
        (info.gebietsstand, info.population_date, info.source, info.rows),
    )
    return info


SELECT_COLUMNS = (
    "ags, name, land, kreis, population, population_date, name_official, ars, gemeinde_type, "
    "gemeindeverband, gemeindeverband_type, regierungsbezirk, kreis_type, area_km2, population_male, "
    "plz, gebietsstand"
)


class MunicipalityRepository:
    """The only writer of ``municipalities``, ``municipality_register`` and ``central_places``."""

    def __init__(self, db: Database):
        self.db = db

    # register ---------------------------------------------------------------------------------
    async def all(self) -> list[Municipality]:
        rows = await self.db.fetchall(f"SELECT {SELECT_COLUMNS} FROM municipalities ORDER BY ags")
        return [Municipality(*row) for row in rows]

    async def page(self, after: str, limit: int) -> list[Municipality]:
        """The next ``limit`` municipalities with an AGS above ``after``, in AGS order: the
        register in slices, so that reading it never holds all of it at once."""
        rows = await self.db.fetchall(
            f"SELECT {SELECT_COLUMNS} FROM municipalities WHERE ags > ? ORDER BY ags LIMIT ?",
            (after, limit),
        )
        return [Municipality(*row) for row in rows]

    async def get(self, ags: str) -> Municipality | None:
        row = await self.db.fetchone(f"SELECT {SELECT_COLUMNS} FROM municipalities WHERE ags = ?", (ags,))
        return Municipality(*row) if row else None

    async def get_many(self, keys: list[str]) -> list[Municipality]:
        """The municipalities with these AGS, in the order given (unknown ones left out)."""
        if not keys:
            return []
        marks = ", ".join("?" for _ in keys)
        rows = await self.db.fetchall(
            f"SELECT {SELECT_COLUMNS} FROM municipalities WHERE ags IN ({marks})", tuple(keys)
        )
        found = {row[0]: Municipality(*row) for row in rows}
        return [found[key] for key in keys if key in found]

    async def count(self) -> int:
        row = await self.db.fetchone("SELECT count(*) FROM municipalities")
        return row[0] if row else 0

    async def info(self) -> RegisterInfo | None:
        row = await self.db.fetchone(
            "SELECT gebietsstand, population_date, source, row_count, imported_at "
            "FROM municipality_register WHERE id = 1"
        )
        return RegisterInfo(*row) if row else None

    async def import_file(self, path: str | Path, population_date: str | None = None) -> RegisterInfo:
        """Replace the register with ``path`` (CSV or raw GV100AD); all or nothing."""
        rows = await asyncio.to_thread(parse_register_file, path, population_date)
        async with self.db.transaction() as conn:
            return await write_register(conn, rows, Path(path).name)

    # central places ---------------------------------------------------------------------------
    async def central_place(self, ags: str) -> CentralPlace | None:
        row = await self.db.fetchone(
            "SELECT ags, function, reason, set_by, set_at FROM central_places WHERE ags = ?", (ags,)
        )
        return CentralPlace(*row) if row else None

    async def central_places(self) -> list[CentralPlace]:
        rows = await self.db.fetchall(
            "SELECT ags, function, reason, set_by, set_at FROM central_places ORDER BY ags"
        )
        return [CentralPlace(*row) for row in rows]

    async def set_central_place(self, ags: str, function: str, reason: str, set_by: str, set_at: str) -> None:
        if function not in CENTRAL_FUNCTIONS:
            raise ValueError(f"unknown central-place function {function!r}")
        await self.db.execute(
            "INSERT INTO central_places (ags, function, reason, set_by, set_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(ags) DO UPDATE SET function = excluded.function, reason = excluded.reason, "
            "set_by = excluded.set_by, set_at = excluded.set_at",
            (ags, function, reason, set_by, set_at),
        )

    async def clear_central_place(self, ags: str) -> bool:
        async with self.db.transaction() as conn:
            cur = await conn.execute("DELETE FROM central_places WHERE ags = ?", (ags,))
            return cur.rowcount > 0

    async def import_central_places(
        self, path: str | Path, set_by: str, set_at: str, reason: str | None = None
    ) -> int:
        """Add or replace overrides from an ``ags,function`` CSV; all or nothing.

        Every AGS must be in the register, otherwise the file is refused at that line.
        """
        text = await asyncio.to_thread(Path(path).read_text, encoding="utf-8")
        entries = parse_central_places_csv(text)
        known = {row[0] for row in await self.db.fetchall("SELECT ags FROM municipalities")}
        lines = [i for i, line in enumerate(text.lstrip("\ufeff").splitlines(), start=1) if line.strip()]
        offset = 1 if lines and text.lstrip("\ufeff").lower().startswith("ags") else 0
        for position, (ags, _function) in enumerate(entries):
            if ags not in known:
                raise RegisterImportError(lines[position + offset], f"AGS {ags} is not in the register")
        note = reason or f"imported from {Path(path).name}"
        async with self.db.transaction() as conn:
            await conn.executemany(
                "INSERT INTO central_places (ags, function, reason, set_by, set_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(ags) DO UPDATE SET function = excluded.function, reason = excluded.reason, "
                "set_by = excluded.set_by, set_at = excluded.set_at",
                [(ags, function, note, set_by, set_at) for ags, function in entries],
            )
        return len(entries)


# --- command line ---------------------------------------------------------------------------------


def run_cli_import(
    database: str | Path,
    action: str,
    file: str | Path,
    population_date: str | None = None,
    reason: str | None = None,
) -> int:
    """``kleinstadtbot data import-municipalities|import-central-places FILE``; prints the outcome.

    Exit status 0 on success, 1 when the file was refused (nothing changed).
    """
    import sys
    from datetime import UTC, datetime

    async def run() -> str:
        from storage.audit import OPERATOR, AuditRepository

        db = await Database(database).open()
        try:
            repo = MunicipalityRepository(db)
            detail: dict[str, str | int] = {"file": Path(file).name}
            if action == "import-municipalities":
                info = await repo.import_file(file, population_date)
                detail["rows"] = info.rows
                message = (
                    f"imported {info.rows} municipalities from {info.source} (Gebietsstand "
                    f"{info.gebietsstand}, population {info.population_date}); restart the bot to "
                    "use them"
                )
            else:
                count = await repo.import_central_places(file, "cli", datetime.now(UTC).isoformat(), reason)
                detail["rows"] = count
                message = f"recorded {count} central-place function(s) from {Path(file).name}"
            await AuditRepository(db).record(  # the operator's override, beside the coordinators'
                actor=OPERATOR,
                action=f"data {action}",
                outcome="answered",
                at=datetime.now(UTC),
                detail=detail,
            )
            return message
        finally:
            await db.close()

    if not Path(file).is_file():
        print(f"error: {file} is not a file", file=sys.stderr)
        return 1
    try:
        print(asyncio.run(run()))
    except RegisterImportError as exc:
        where = f"{file}, line {exc.line}: " if exc.line else f"{file}: "
        print(f"error: {where}{exc.message}; nothing was changed", file=sys.stderr)
        return 1
    except UnicodeDecodeError:
        print(f"error: {file} is not UTF-8 text; nothing was changed", file=sys.stderr)
        return 1
    return 0
