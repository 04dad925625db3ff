"""The Matrix runtime: one long-lived nio client and the parts that keep it answering.

Guarantees:
- One device for the bot's life (``bot.session``); the sync token is stored after each batch
  is handled, so a restart continues where it stopped (``bot.batches``).
- No command is answered twice: answered events are recorded, replies carry transaction IDs
  derived from the command's event ID (a replayed batch re-sends nothing new), and events older
  than the catch-up window or from before the bot joined a room are ignored by timestamp
  (``bot.incoming``).
- No command younger than the catch-up window is lost: when a sync leaves events out of a
  room's timeline, they are fetched and answered first, in order (``bot.catch_up``).
- The homeserver being down never ends the loop: backoff with jitter, recovery without restart
  (``bot.sync_loop``).
- SIGINT/SIGTERM: the running batch finishes, the token is saved, the database closes.

The parts, each readable alone: ``sync_loop`` (syncing), ``routing`` (a batch to per-room
work), ``batches`` (tasks and the stored token), ``catch_up`` (gaps of limited timelines),
``incoming`` (an event to a request for the dispatcher), ``membership`` (joins, invitations,
leaving), ``encryption`` (key upkeep, undecryptable notices), ``session`` (login).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import TYPE_CHECKING, Any

from nio import AsyncClientConfig

from bot import code_cache, deferred_imports
from bot.backoff import Backoff
from bot.batches import Batches
from bot.catch_up import CatchUp
from bot.encryption import CryptoStore, UndecryptableNotices, keep_keys
from bot.incoming import IncomingMessages
from bot.launch import COLLECTOR_PAUSE_SECONDS, resume_collector
from bot.matrix_port import NioMatrix
from bot.membership import Membership
from bot.metrics import MeasuredClient
from bot.operations import Operations
from bot.roles import RoleResolver
from bot.routing import Router
from bot.sending import MessageSender
from bot.session import LoginFailed, connect
from bot.sync_loop import SyncLoop, gap_filter, sync_filter
from commands.context import Clock, SystemClock
from commands.dispatcher import Dispatcher
from config.settings import Settings
from storage.database import Database
from storage.runtime_state import RuntimeStateRepository

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from bot.rendering import Renderer

__all__ = ["KleinstadtBot", "run_bot", "sync_filter"]  # sync_filter: bench/startup.py

log = logging.getLogger(__name__)
HANDLED_RETENTION_MS = 3 * 24 * 3600 * 1000
DRAIN_SECONDS = 30
FIRST_ANSWERS_SECONDS = 30  # start-up hooks wait this long at most for the start's answers
FIRST_SYNC_IDLE_SECONDS = 0.3  # the first sync still out after the set-up this long: migrate meanwhile
NEXT_SYNC_SECONDS = 2.0  # and this long for the sync after the first (it returns at once if anything waits)


class KleinstadtBot:
    def __init__(self, settings: Settings, clock: Clock | None = None):
        self.settings = settings
        self.clock = clock or SystemClock()
        self.db = Database(settings.database)
        self.repo = RuntimeStateRepository(self.db.first_tables())  # migration 1's tables
        store = settings.store_dir / "crypto"
        store.mkdir(parents=True, exist_ok=True)
        self.client = MeasuredClient(  # nio's client, its requests counted (bot.metrics)
            settings.homeserver or "",
            settings.user_id or "",
            device_id=settings.device_id,
            store_path=str(store),
            config=AsyncClientConfig(
                encryption_enabled=settings.encryption,
                store=CryptoStore,
                store_sync_tokens=False,
                max_limit_exceeded=settings.retry.max_rate_limited,
                max_timeouts=settings.retry.max_timeouts,
                request_timeout=settings.retry.request_timeout_seconds,
                backoff_factor=0.5,
                max_timeout_retry_wait_time=30,
            ),
        )
        # rendering, commands and the scheduler are set up in _prepare, while the first sync runs
        self.sender = MessageSender(self.client, None)
        self.matrix = NioMatrix(self.client, self.sender)
        self.roles = RoleResolver(settings, self.client)
        self.membership = Membership(self.client, settings, self.repo, self.clock)
        self.notices = UndecryptableNotices(self.client, self.repo, self.matrix, self.clock)
        self.incoming = IncomingMessages(
            self.client,
            settings,
            self.repo,
            self.sender,
            self.matrix,
            self.membership,
            self.notices,
            self.clock,
        )
        self.batches = Batches(self.repo)
        self.router = Router(
            self.membership, self.roles, self.incoming, CatchUp(self.client, gap_filter()), self.batches
        )
        self._stop = asyncio.Event()
        self._backoff = Backoff(settings.sync.backoff_initial_seconds, settings.sync.backoff_max_seconds)
        self.sync = SyncLoop(self.client, settings, self.repo, self.router, self._backoff, self._stop)
        self.sender.encryption_known = self.sync.encryption_known
        self.dispatcher: Dispatcher | None = None
        self.scheduler: AsyncIOScheduler | None = None
        self.ready = asyncio.Event()
        self.stopped = asyncio.Event()
        self._prepared: asyncio.Future[None] | None = None
        self._idle_migrate: asyncio.TimerHandle | None = None  # migrations while the first sync runs
        self._collector_cap: asyncio.TimerHandle | None = None  # bot.launch's pause ends by then
        self._startup: asyncio.Future[None] | None = None
        self._scheduled: asyncio.Future[None] | None = None  # the scheduling engine's loop
        self._second_sync = asyncio.Event()  # set once the sync after the first is handed on
        self._handed_on = 0  # sync batches handed on since start
        self.operations = Operations(self)  # run lock, metrics and health, backups (docs/operations.md)

    @property
    def answered(self) -> int:
        """Commands answered since start (for operators and benchmarks)."""
        return self.incoming.answered

    @property
    def starting(self) -> bool:
        """Ready, and the start-up work after the first answers (scheduler, hooks) still runs."""
        return self._startup is not None and not self._startup.done()

    # --- life cycle ----------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()
        self.sync.cancel_request()

    async def run(self) -> None:
        """Log in, then sync until asked to stop. Never returns on homeserver failures.

        The first sync (seconds of server time for a bot in many rooms) is requested before the
        slower local set-up (renderer, dispatcher, command families), which runs meanwhile."""
        # bot.launch paused the garbage collector for the start: it ends with the first answers
        # (_run_startup_hooks), and at the latest after this long, whatever holds them up
        self._collector_cap = asyncio.get_running_loop().call_later(
            COLLECTOR_PAUSE_SECONDS, resume_collector, "the start took long"
        )
        await self.operations.start()  # the run lock first: a second bot on this database stops here
        try:
            await self.db.open(migrate=False)
            await self.db.migrate(until=1)  # the runtime's own tables: session, sync token, joins
            await self.membership.load()
            await self.notices.load()
            if not await self._connect():
                return
            try:
                await self.sync.run(self._connect, self._start_prepare, self._synced)
            finally:
                await self._drain()
                await self.sync.keep_progress()  # a first sync stopped between its pages
            self._check_migrated()
        finally:
            await self.close()

    async def _connect(self) -> bool:
        return await connect(self.client, self.settings, self.repo, self._backoff, self._stop)

    def _start_prepare(self) -> asyncio.Future[None]:
        """Starts ``_prepare``; the sync loop calls it once the first sync request is on its way."""
        self._prepared = asyncio.ensure_future(self._prepare())
        return self._prepared

    async def _prepare(self) -> None:
        """Local set-up that the first sync batch needs, run while the server answers it: the
        renderer and the first command family. The remaining migrations (on a fresh database,
        loading the municipality register: 0.6 s of CPU) are left behind: only queries wait
        for them (``Database.migrate_behind``), so a ``!ping`` in the first batch does not, and
        they start with the first query, or while the homeserver still computes the first sync. What can
        wait for the first answers (the scheduler, housekeeping, start-up hooks, the profile)
        comes in ``_run_startup_hooks``. Its imports (Jinja2, Babel, the dispatcher and the first
        command family: tens of milliseconds) run in a worker thread, so the loop is free to send
        the first sync request at once instead of after them; so does the renderer's warm-up
        (Babel's locale data loaded)."""
        await asyncio.to_thread(_import_set_up)
        from bot.app import build_dispatcher

        self.sender.renderer = await asyncio.to_thread(_warm_renderer, self.settings)
        self.dispatcher = build_dispatcher(
            self.settings, self.db, self.matrix, self.roles, self.clock, first_families=True
        )
        self.incoming.dispatcher = self.dispatcher
        self.operations.attach(self.dispatcher)
        self.sender.joined = self.membership.__contains__
        # Left behind: they start with the first query (after the first answers), or in
        # FIRST_SYNC_IDLE_SECONDS if the first sync has not come back by then (the homeserver
        # computes it for seconds in 1,000 rooms: the time is free)
        self.db.migrate_behind(start=False)
        self._idle_migrate = asyncio.get_running_loop().call_later(
            FIRST_SYNC_IDLE_SECONDS, self._migrate_while_syncing
        )

    def _migrate_while_syncing(self) -> None:
        """``FIRST_SYNC_IDLE_SECONDS`` after the set-up: if the first sync is still out, the
        homeserver is computing it, and the migrations left behind use the time. If it came
        back, its answers go first and the migrations wait for a query."""
        request = self.sync.request
        if request is not None and not request.done():
            self.db.start_behind()

    def _check_migrated(self) -> None:
        """Migrations that ran behind and failed end the run with their error (after the drain),
        as a failed set-up does (``DatabaseUnusable``: exit status 4)."""
        migrated = self.db.migrating
        if migrated is not None and migrated.done() and not migrated.cancelled():
            error = migrated.exception()
            if error is not None:
                raise error

    async def _start_scheduler(self) -> None:
        """Housekeeping and scheduled backups (APScheduler), once the first answers are out."""
        from bot.scheduler import build_scheduler

        self.scheduler = build_scheduler(self.settings, self._forget_old_answers, self.operations.backups)
        await self._forget_old_answers()
        if not self._stop.is_set():
            self.scheduler.start()

    async def _forget_old_answers(self) -> None:
        """Daily: forget answered events older than the retention period (replays of older
        events are ignored by timestamp anyway)."""
        now_ms = int(self.clock.now().timestamp() * 1000)
        await self.repo.prune_handled(now_ms - HANDLED_RETENTION_MS)

    async def _synced(self, first: bool) -> None:
        """After each sync batch is handed on: wake sends waiting for a new room, key upkeep;
        after the first, the start-up hooks and the ready signal."""
        self.sender.note_sync()
        self._handed_on += 1
        if self._handed_on == 2:
            self._second_sync.set()
        await keep_keys(self.client)
        if first:
            # the first sync came back (on a first start: the position; the first sync of the
            # rooms runs behind): the migrations left behind wait for a query or the start-up
            # hooks, so they never compete with the first answers
            if self._idle_migrate is not None:
                self._idle_migrate.cancel()
            # beside the loop: a hook that creates the Space must not hold up the next sync; on a
            # first start the first sync's backlog (behind the live syncs) goes first too
            behind = [self.sync.behind] if self.sync.behind is not None else []
            self._startup = asyncio.ensure_future(self._run_startup_hooks([*self.batches.running, *behind]))
            self.ready.set()
            if behind and self.sync.resumed is not None:
                log.info(
                    "kleinstadtbot ready: the first start goes on after room %d, the rest follow behind",
                    self.sync.resumed.end + 1,
                )
            elif behind:
                log.info("kleinstadtbot ready: first start, the rooms follow behind")
            else:
                log.info("kleinstadtbot ready: %d rooms", len(self.membership))

    async def _start_answered(self, first_batch: list[asyncio.Task[None]]) -> None:
        """Until the commands that came while the bot was away or starting are answered: those
        of the first batch, and those of the next sync, which holds what arrived while the first
        was computed (a first sync in 1,000 rooms takes Synapse seconds). The next sync returns
        at once when something waits; if none comes within ``NEXT_SYNC_SECONDS``, nothing
        waited. At most ``FIRST_ANSWERS_SECONDS`` for each batch."""
        if first_batch:
            await asyncio.wait(first_batch, timeout=FIRST_ANSWERS_SECONDS)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._second_sync.wait(), NEXT_SYNC_SECONDS)
        running = self.batches.running
        if self._second_sync.is_set() and running:
            await asyncio.wait(running, timeout=FIRST_ANSWERS_SECONDS)

    async def _run_startup_hooks(self, first_batch: list[asyncio.Task[None]]) -> None:
        """The families' start-up work and the bot's profile, once the commands that came while
        the bot was away or starting are answered (``_start_answered``): the hooks' work (the
        Space, the indexes, a new display name, which the homeserver writes into every room the
        bot is in) can wait, those answers cannot."""
        from bot.profile import present_bot
        from commands.registry import REGISTRY

        assert self.dispatcher is not None  # the first batch waited for the set-up
        await self._start_answered(first_batch)
        resume_collector("the first answers are out")
        try:
            await asyncio.shield(self.db.start_behind())
        except Exception:
            log.exception("the database could not be migrated; stopping")
            self.request_stop()
            return
        await self._start_scheduler()
        REGISTRY.complete()  # the families not needed for the first answers (commands.load_families)
        services = self.dispatcher.services

        async def run(hook: Any) -> None:
            try:
                await hook(services)
            except Exception:
                log.exception("startup hook %s failed", getattr(hook, "__name__", hook))

        # The families' hooks do not depend on each other (the Space, the town index, the FAQ
        # index, check-in rhythms): side by side, so none waits for another's slow start.
        # present_bot sets name and avatar and never raises.
        await asyncio.gather(*map(run, REGISTRY.startup), present_bot(self.client, self.settings, self.repo))
        # every family is imported by now; the file is written beside the loop (first starts only)
        await asyncio.to_thread(code_cache.finish, "the start is over")
        unread = deferred_imports.unread()
        log.debug("deferred modules nothing has read: %s", ", ".join(unread) if unread else "none")
        # scheduled work (check-ins, excerpts) starts once every family's start-up is done, so
        # tandems from before check-ins existed have their rhythm
        schedules = self.dispatcher.services.schedules
        if schedules is not None and not self._stop.is_set():
            self._scheduled = asyncio.ensure_future(schedules.run())

    async def _drain(self) -> None:
        """On shutdown: let running batches and start-up work finish (tokens are then stored)."""
        running: list[asyncio.Future[Any]] = list(self.batches.running)
        if self.sync.behind is not None and not self.sync.behind.done():
            running.append(self.sync.behind)  # stopped, it releases its place as incomplete
        running += [
            t for t in (self._prepared, self.db.migrating, self._startup) if t is not None and not t.done()
        ]
        if running:
            log.info("finishing %d task(s) in flight", len(running))
            await asyncio.wait(running, timeout=DRAIN_SECONDS)

    async def close(self) -> None:
        if self.stopped.is_set():
            return
        if self._idle_migrate is not None:
            self._idle_migrate.cancel()
        if self._collector_cap is not None:
            self._collector_cap.cancel()
        resume_collector("the run ended")
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self._scheduled is not None and self.dispatcher is not None:
            schedules = self.dispatcher.services.schedules
            if schedules is not None:
                await asyncio.wait_for(schedules.stop(), DRAIN_SECONDS)  # deliveries in flight
            self._scheduled.cancel()
        try:
            await self.client.close()  # closes HTTP; never logs out: the device stays
        except Exception:
            log.debug("closing the HTTP session failed", exc_info=True)
        await self.db.close()
        await self.operations.stop()  # the listener, then the run lock
        self.stopped.set()


def _import_set_up() -> None:
    """The modules ``KleinstadtBot._prepare`` needs, imported beside the event loop."""
    import importlib

    from commands import FIRST

    for name in ("bot.app", *FIRST):
        importlib.import_module(name)


def _warm_renderer(settings: Settings) -> Renderer:
    """The renderer, with the locale's data loaded."""
    from bot.app import build_renderer

    renderer = build_renderer(settings, compiled=True)
    renderer.warm()
    return renderer


async def run_bot(settings: Settings) -> int:
    bot = KleinstadtBot(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, bot.request_stop)
    try:
        await bot.run()
    except LoginFailed as exc:
        log.error("cannot log in: %s", exc)
        return 3
    log.info("kleinstadtbot stopped")
    return 0
