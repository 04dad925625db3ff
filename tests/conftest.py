"""Shared fixtures.

- ``local_bot``: a bot without a homeserver (fast unit tests).
- ``synapse``: one real Synapse for the whole session (integration tests).
- ``make_bot`` / ``make_user``: a running kleinstadtbot and second Matrix clients on it.
- ``limited_synapse``: a second Synapse with its default rate limits and an admin who may lift
  them per account (bots and clients there use access tokens: logins are limited per address).

``./check`` runs the suite in pytest-xdist workers (``--dist loadfile``: a module's tests, and so
its module-scoped fixtures, stay in one worker). Session fixtures are per worker: each worker
starts its own Synapse on its own port, in its own ``tmp_path_factory`` folder (xdist gives every
worker its own base folder), with its own registration secret, signing key and database.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.homeserver import LocalSynapse
from tests.local_bot import LocalBot, make_local_bot
from tests.matrix_fixtures import (
    LimitedHomeserver,
    RunningBot,
    UserClient,
    bot_settings,
    start_bot,
    unique,
    user_client,
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for key in list(os.environ):
        if key.startswith("KLEINSTADTBOT_"):
            monkeypatch.delenv(key)


_town_indexes: dict[str, Any] = {}


@pytest.fixture(autouse=True)
def _town_index_shared_per_register(monkeypatch):
    """Every bot builds the town index at start (about 1.5 s of CPU), a few hundred bots in the
    suite from the same shipped register. Here the register is still read as the bot reads it,
    slice by slice, but an index already built in this worker from the same rows is handed out
    again; a changed register (an import) gets its own."""
    from commands import towns_search
    from storage.municipalities import MunicipalityRepository

    build = towns_search.build_index

    async def shared(db):
        repo = MunicipalityRepository(db)
        rows = hashlib.sha256()
        after = ""
        while page := await repo.page(after, towns_search.SLICE):
            rows.update(repr(page).encode())
            after = page[-1].ags
        key = rows.hexdigest()
        if key not in _town_indexes:
            _town_indexes[key] = await build(db)
        return _town_indexes[key]

    monkeypatch.setattr(towns_search, "build_index", shared)


_libraries: dict[tuple[str, tuple[str, ...]], Any] = {}


@pytest.fixture(autouse=True)
def _faq_library_shared_per_content(monkeypatch):
    """Every bot reads, checks and indexes the FAQ and the modules at start (about half a second
    of CPU), a few hundred bots in the suite from the same shipped content. A library already
    built in this worker from the same files (by content, not by path) and for the same locales
    is handed out again; changed content (a test's own folder, a reload) gets its own."""
    from commands import faq_search

    load = faq_search.load_library

    def shared(root: Path | None = None, locales=()):
        folder = Path(root) if root is not None else faq_search.CONTENT_DIR
        files = hashlib.sha256()
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            files.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
        key = (files.hexdigest(), tuple(locales))
        if key not in _libraries:
            _libraries[key] = load(root, locales)
        return _libraries[key]

    monkeypatch.setattr(faq_search, "load_library", shared)


@pytest.fixture
async def local_bot(tmp_path) -> LocalBot:
    bot = await make_local_bot(tmp_path)
    yield bot
    await bot.db.close()


@pytest.fixture
def declare():
    """``declare(name, **kwargs)(handler)``: a command that exists for this test only."""
    from commands.registry import REGISTRY, command

    declared = []

    def factory(name, **kwargs):
        def register(handler):
            declared.append(command(name, **kwargs)(handler))
            return declared[-1]

        return register

    yield factory
    for cmd in declared:
        REGISTRY.remove(cmd)


class SynapseForTests(LocalSynapse):
    """The local Synapse with cheap password hashes (bcrypt's 4 rounds instead of Synapse's 12:
    0.002 instead of 0.4 s of CPU for each of the suite's many registrations and logins)."""

    def _write_config(self) -> Path:
        path = super()._write_config()
        config = yaml.safe_load(path.read_text())
        config["bcrypt_rounds"] = 4
        path.write_text(yaml.safe_dump(config))
        return path


def start_synapse(data: Path, attempts: int = 3, **options: Any) -> LocalSynapse:
    """A started Synapse on a free port. ``free_port`` releases the port before Synapse binds
    it, so a process beside this one (another worker, another engineer's tests) may take it
    first: then again on a new port."""
    for attempt in range(1, attempts + 1):
        try:
            return SynapseForTests(data, **options).start()
        except RuntimeError as exc:
            if attempt == attempts or "Address already in use" not in str(exc):
                raise
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def synapse(tmp_path_factory) -> LocalSynapse:
    server = start_synapse(tmp_path_factory.mktemp("synapse"))
    yield server
    server.stop()


@pytest.fixture
async def make_bot(synapse, tmp_path):
    """``await make_bot(**settings)`` starts a bot (new account unless ``account=`` is given;
    ``clock=`` replaces the system clock)."""
    running: list[RunningBot] = []

    async def factory(account=None, data=None, clock=None, **overrides) -> RunningBot:
        account = account or synapse.register(unique("bot"))
        settings = bot_settings(synapse, account, data or tmp_path / "bot", **overrides)
        bot = await start_bot(settings, clock)
        bot.account = account
        running.append(bot)
        return bot

    yield factory
    for bot in running:
        if not bot.task.done():
            await bot.stop()


@pytest.fixture
async def make_user(synapse, tmp_path):
    """``await make_user("mayor")`` registers a user and returns a syncing second client."""
    clients: list[UserClient] = []

    async def factory(prefix: str = "user") -> UserClient:
        localpart = unique(prefix)
        client = await user_client(synapse, synapse.register(localpart), tmp_path / f"store-{localpart}")
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.close()


@pytest.fixture(scope="session")
def limited_synapse(tmp_path_factory) -> LimitedHomeserver:
    """Synapse with its DEFAULT rate limits (rc_message 0.2 events/s, burst 10; joins, invites
    and room creation limited too), for tests of paced sending; started on first use."""
    server = start_synapse(tmp_path_factory.mktemp("synapse-limited"), raised_limits=False)
    yield LimitedHomeserver(server, server.register("admin", admin=True))
    server.stop()
