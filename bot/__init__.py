"""The Matrix runtime: client, session, sync loop, routing, sending, rooms, CLI."""
