"""Scheduler wiring: APScheduler's asyncio scheduler in the bot's time zone.

Today it runs the daily housekeeping; scheduled check-ins in tandem rooms will add their jobs
here, with the database as the source of truth for what is due.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from config.settings import Settings

log = logging.getLogger(__name__)


def build_scheduler(settings: Settings, housekeeping: Callable[[], Awaitable[None]]) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=settings.tz)
    scheduler.add_job(
        housekeeping,
        CronTrigger(hour=3, minute=30, timezone=settings.tz),
        id="housekeeping",
        coalesce=True,
        misfire_grace_time=3600,
        replace_existing=True,
    )
    return scheduler
