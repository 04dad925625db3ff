"""The municipality register (Destatis GV100AD) and central-place overrides.

Loads the register shipped in ``storage/data/gemeinden.csv`` so that a fresh database can answer
``!berechtigt`` at once; ``kleinstadtbot data import-municipalities`` replaces it later.
"""

from storage.database import run_script
from storage.municipalities import SHIPPED_CSV, iter_register_csv, write_register

DESCRIPTION = "municipality register (GV100AD) with central-place overrides"


async def upgrade(conn) -> None:
    await run_script(
        conn,
        """
        CREATE TABLE municipalities (
            ags TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            land TEXT NOT NULL,
            kreis TEXT NOT NULL,
            population INTEGER NOT NULL,
            population_date TEXT NOT NULL,
            name_official TEXT NOT NULL,
            ars TEXT NOT NULL DEFAULT '',
            gemeinde_type TEXT NOT NULL DEFAULT '',
            gemeindeverband TEXT NOT NULL DEFAULT '',
            gemeindeverband_type TEXT NOT NULL DEFAULT '',
            regierungsbezirk TEXT NOT NULL DEFAULT '',
            kreis_type TEXT NOT NULL DEFAULT '',
            area_km2 REAL,
            population_male INTEGER,
            plz TEXT NOT NULL DEFAULT '',
            gebietsstand TEXT NOT NULL
        );
        CREATE INDEX municipalities_plz ON municipalities (plz);
        -- Edition of the register in use (one row): shown in every answer's source line.
        CREATE TABLE municipality_register (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            gebietsstand TEXT NOT NULL,
            population_date TEXT NOT NULL,
            source TEXT NOT NULL,
            row_count INTEGER NOT NULL,
            imported_at TEXT NOT NULL DEFAULT (datetime('now'))
        );
        -- Central-place status recorded by the operator (the register does not have it).
        -- No foreign key: an override survives a register import that renames or merges towns.
        CREATE TABLE central_places (
            ags TEXT PRIMARY KEY,
            function TEXT NOT NULL,
            reason TEXT NOT NULL,
            set_by TEXT NOT NULL,
            set_at TEXT NOT NULL
        );
        """,
    )
    # streamed row by row (parsed in the database thread), so no copy of the file stays in memory
    with SHIPPED_CSV.open(encoding="utf-8", newline="") as handle:
        await write_register(conn, iter_register_csv(handle), SHIPPED_CSV.name)
