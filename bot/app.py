"""Assembly shared by every transport: settings → database, renderer, services, dispatcher."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from bot.rendering import Renderer
from commands import load_families
from commands.context import Clock, MatrixPort, Role, Services, SystemClock
from commands.dispatcher import Dispatcher
from config.settings import Settings
from storage.database import Database

log = logging.getLogger(__name__)


def build_renderer(settings: Settings) -> Renderer:
    return Renderer(settings.locale, settings.timezone, extra_globals={"prefix": settings.command_prefix})


async def open_database(settings: Settings) -> Database:
    return await Database(settings.database).open()


def config_roles(settings: Settings) -> Callable[[str], Awaitable[Role]]:
    """Roles from the configuration alone (console, tests): listed coordinators."""
    coordinators = set(settings.coordinators)

    async def role_of(user_id: str) -> Role:
        return Role.COORDINATOR if user_id in coordinators else Role.MEMBER

    return role_of


def build_dispatcher(
    settings: Settings,
    db: Database,
    matrix: MatrixPort,
    role_of: Callable[[str], Awaitable[Role]],
    clock: Clock | None = None,
) -> Dispatcher:
    load_families()
    services = Services(settings=settings, db=db, matrix=matrix, clock=clock or SystemClock())
    services.started_at = services.clock.monotonic()
    return Dispatcher(services, role_of)
