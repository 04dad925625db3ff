"""What the operator gets from a running bot, in one place: the lock that keeps a second bot
and ``db restore`` off its database, metrics and the health listener, and scheduled backups
(docs/operations.md)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from commands.dispatcher import Dispatcher
from storage.backups import BotLock, ScheduledBackups

if TYPE_CHECKING:
    from bot.health import HealthServer
    from bot.metrics import Metrics
    from bot.runtime import KleinstadtBot

log = logging.getLogger(__name__)


class Operations:
    def __init__(self, bot: KleinstadtBot):
        settings = bot.settings
        self.lock = BotLock(settings.database)
        self.backups: ScheduledBackups | None = None
        if settings.backup.enabled:
            self.backups = ScheduledBackups(
                settings.database, settings.crypto_dir, settings.backup_dir, settings.backup.keep
            )
        self.metrics: Metrics | None = None
        self.health: HealthServer | None = None
        if settings.metrics.enabled:  # prometheus-client and aiohttp.web are imported only then
            from bot.health import HealthServer
            from bot.metrics import Metrics

            self.metrics = Metrics(bot, self.backups)
            self.health = HealthServer(bot, self.metrics)

    async def start(self) -> None:
        """At the start of ``run``, before the database is opened: ``BotRunning`` (exit status 4)
        if another bot runs on this database."""
        self.lock.acquire()
        if self.health is not None:
            await self.health.start()

    def attach(self, dispatcher: Dispatcher) -> None:
        """Once the commands are set up: count every handled command."""
        if self.metrics is not None:
            dispatcher.listeners.append(self.metrics.command_handled)

    async def stop(self) -> None:
        if self.health is not None:
            await self.health.stop()
        self.lock.release()
