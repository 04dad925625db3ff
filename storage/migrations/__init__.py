"""Ordered migrations: ``mNNNN_<name>.py`` modules with DESCRIPTION and ``async upgrade(conn)``.

Numbers run 1..n without gaps; each migration runs in its own transaction.
"""
