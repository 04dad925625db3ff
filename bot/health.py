"""The operator's HTTP listener (``metrics.enabled``; off by default, loopback by default):

- ``/metrics``: Prometheus text format (``bot.metrics``).
- ``/healthz``: 200 while the process runs its event loop (liveness).
- ``/readyz``: 200 ``ready`` when the last successful sync is recent, the database answers and
  the scheduler runs (it starts once the first answers are out: until then, start-up work
  does not count against readiness); otherwise 503 with one line per reason (readiness, the container's
  health check).

It runs on the aiohttp the bot already has (nio's HTTP client), beside the sync loop. A port
that cannot be bound is logged and the bot goes on without the listener: answering users comes
first, and Prometheus shows the target down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.metrics import Metrics

if TYPE_CHECKING:
    from bot.runtime import KleinstadtBot

log = logging.getLogger(__name__)
DATABASE_SECONDS = 5.0  # /readyz: the database answers a trivial query within this time
OVERDUE_SLACK_SECONDS = 600  # scheduled work this late means the engine does not run


class HealthServer:
    def __init__(self, bot: KleinstadtBot, metrics: Metrics):
        self.bot = bot
        self.metrics = metrics
        self.settings = bot.settings.metrics
        self._runner: web.AppRunner | None = None
        self.port: int | None = None  # the bound port (settings, or the one the OS chose for 0)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        return app

    async def start(self) -> bool:
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.settings.address, self.settings.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            log.error(
                "metrics listener cannot listen on %s:%d (%s); the bot runs without it",
                self.settings.address,
                self.settings.port,
                exc.strerror or exc,
            )
            await runner.cleanup()
            return False
        self._runner = runner
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.settings.port
        log.info("metrics and health on http://%s:%d/metrics", self.settings.address, self.port)
        return True

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    # --- endpoints -------------------------------------------------------------------------

    async def _metrics(self, request: web.Request) -> web.Response:
        await self.readiness()  # keeps kleinstadtbot_ready current
        await self.metrics.refresh()
        body = generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        reasons = await self.readiness()
        if reasons:
            return web.Response(status=503, text="not ready\n" + "".join(f"- {r}\n" for r in reasons))
        return web.Response(text="ready\n")

    async def readiness(self) -> list[str]:
        """Why the bot is not ready; empty when it is."""
        bot, reasons = self.bot, []
        traffic = getattr(bot.client, "traffic", None)
        last = traffic.last_sync if traffic is not None else None
        limit = self.settings.sync_stale_seconds
        if not bot.ready.is_set():
            reasons.append("the first sync with the homeserver has not finished yet")
        elif last is None or time.time() - last > limit:
            age = "never" if last is None else f"{time.time() - last:.0f} s ago"
            reasons.append(
                f"last successful sync {age} (limit {limit:.0f} s): the homeserver cannot be reached "
                "or refuses the bot; see the log"
            )
        try:
            await asyncio.wait_for(bot.db.fetchone("SELECT 1"), DATABASE_SECONDS)
        except TimeoutError:
            reasons.append(f"the database does not answer within {DATABASE_SECONDS:.0f} s")
        except Exception as exc:
            reasons.append(f"the database cannot be used: {exc}")
        scheduler = bot.scheduler
        if (scheduler is None or not scheduler.running) and not bot.starting:
            reasons.append("the scheduler does not run (housekeeping, backups)")
        dispatcher = bot.dispatcher
        engine = dispatcher.services.schedules if dispatcher is not None else None
        if engine is not None:
            late = engine.overdue(slack=timedelta(seconds=OVERDUE_SLACK_SECONDS))
            if late:
                reasons.append(
                    f"{late} scheduled occurrence(s) (check-ins, excerpts) more than "
                    f"{OVERDUE_SLACK_SECONDS // 60} minutes overdue: scheduled work does not run"
                )
        self.metrics.ready = not reasons
        return reasons
