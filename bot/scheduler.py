"""Scheduler wiring: APScheduler's asyncio scheduler in the bot's time zone.

It runs the daily housekeeping and the scheduled backups (``backup.time``, ``storage.backups``);
per-record schedules (check-ins, excerpts) have their own engine (``commands.scheduling``), with
the database as the source of truth for what is due.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from config.settings import Settings
from storage.backups import ScheduledBackups

log = logging.getLogger(__name__)


def build_scheduler(
    settings: Settings,
    housekeeping: Callable[[], Awaitable[None]],
    backups: ScheduledBackups | None = None,
) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=settings.tz)
    scheduler.add_job(
        housekeeping,
        CronTrigger(hour=3, minute=30, timezone=settings.tz),
        id="housekeeping",
        coalesce=True,
        misfire_grace_time=3600,
        replace_existing=True,
    )
    if backups is not None:
        hour, minute = settings.backup.hour_minute
        scheduler.add_job(
            backups.run,
            CronTrigger(hour=hour, minute=minute, timezone=settings.tz),
            id="backup",
            coalesce=True,  # a bot that was down takes one backup, not one per missed day
            misfire_grace_time=3600,
            max_instances=1,
            replace_existing=True,
        )
    return scheduler
