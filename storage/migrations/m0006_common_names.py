"""Municipality names as people write them: the register's abbreviations written out.

``Neustadt a.d.Aisch`` becomes ``Neustadt an der Aisch``, ``Weilheim i.OB`` ``Weilheim in
Oberbayern`` (``storage.municipalities.common_name``). A database that loaded the register before
this rule existed gets the same names as a new one; ``name_official`` is left as it is.
"""

from storage.municipalities import common_name

DESCRIPTION = "municipality names with the register's abbreviations written out"


async def upgrade(conn) -> None:
    rows = await conn.execute_fetchall("SELECT ags, name FROM municipalities")
    changes = [(common_name(name), ags) for ags, name in rows if common_name(name) != name]
    await conn.executemany("UPDATE municipalities SET name = ? WHERE ags = ?", changes)
