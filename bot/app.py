"""Assembly shared by every transport: settings → database, renderer, services, dispatcher."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from bot.rendering import Renderer
from commands import load_families
from commands.context import Clock, MatrixPort, Role, Services, SystemClock
from commands.dispatcher import Dispatcher
from commands.registry import REGISTRY
from commands.rhythm import RhythmError, parse_rhythm
from commands.scheduling import Scheduling
from config.settings import ConfigError, Settings
from storage.database import Database

log = logging.getLogger(__name__)


def build_renderer(settings: Settings, compiled: bool = False) -> Renderer:
    """``compiled``: keep the compiled templates in the data folder (``Settings.templates_dir``),
    for the bot's restarts; the console and tests compile in memory."""
    return Renderer(
        settings.locale,
        settings.timezone,
        extra_globals={"prefix": settings.command_prefix},
        compiled=settings.templates_dir if compiled else None,
    )


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
    first_families: bool = False,
) -> Dispatcher:
    """``first_families``: only the families of ``commands.FIRST`` now, the rest on demand (the
    runtime's start, see ``commands.load_families``)."""
    load_families(first=first_families)
    check_rhythms(settings)
    services = Services(settings=settings, db=db, matrix=matrix, clock=clock or SystemClock())
    services.started_at = services.clock.monotonic()
    services.schedules = Scheduling(
        services, REGISTRY.scheduled, grace=timedelta(hours=settings.scheduling.grace_hours)
    )
    return Dispatcher(services, role_of)


def check_rhythms(settings: Settings) -> None:
    """The configured default check-in rhythm must be one the bot can read (checked at start and
    by ``config check``, one line like every other setting)."""
    try:
        parse_rhythm(settings.checkins.default_rhythm)
    except RhythmError as exc:
        raise ConfigError(
            [
                f"checkins.default_rhythm: not a rhythm the bot can read ({exc.problem}); "
                "e.g. 'alle 2 Wochen dienstags 10 Uhr' or 'every 2 weeks tuesday 10:00'"
            ]
        ) from exc
