"""SQLite storage: one database, ordered migrations, one repository per aggregate."""

from storage.database import Database, DatabaseTooNew

__all__ = ["Database", "DatabaseTooNew"]
