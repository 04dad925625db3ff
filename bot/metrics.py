"""Metrics for Prometheus (``/metrics`` of ``bot.health``), from the parts that know them.

- Commands: the dispatcher tells its listeners of every handled command (``Handled``): a
  counter by command and outcome, and a histogram of the handling time.
- Homeserver traffic: ``MeasuredClient`` is nio's client with every HTTP request counted at the
  one method all of them pass (``AsyncClient.send``): sync round trips and failures and the time
  of the last successful sync, message sends and their retries (a send repeated with the same
  transaction ID), HTTP 429 answers (also those nio retries by itself), and events that stay
  encrypted after nio tried to decrypt them.
- State read when Prometheus scrapes: rooms joined, scheduled occurrences (due, late, missed,
  failed) and those overdue, broadcast outbox rows pending, database size, backups.

Each bot has its own registry, so several bots in one process (the tests) do not mix.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nio import AsyncClient, MegolmEvent

from commands.dispatcher import Handled

if TYPE_CHECKING:  # prometheus_client is imported only when metrics are enabled (1.4 MB, 30 ms)
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

    from bot.runtime import KleinstadtBot
    from storage.backups import ScheduledBackups

log = logging.getLogger(__name__)

PREFIX = "kleinstadtbot"
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
REMEMBERED_SENDS = 4096  # transaction IDs kept to tell a retry from a new send


def request_kind(path: str) -> str:
    """``sync``, ``send`` (a message or other room event) or ``other``."""
    bare = path.split("?", 1)[0]
    if bare.endswith("/sync"):
        return "sync"
    if "/send/" in bare:
        return "send"
    return "other"


def status_class(status: int) -> str:
    return f"{status // 100}xx"


@dataclass
class HomeserverTraffic:
    """Plain counters of the bot's requests to its homeserver (read by ``Metrics``)."""

    responses: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, 2xx|…|error)
    rate_limited: Counter[str] = field(default_factory=Counter)  # HTTP 429 by kind
    syncs: int = 0  # sync round trips that got an answer or failed
    sync_failures: int = 0  # of those: not HTTP 200 (refused, 5xx, time-out, no connection)
    last_sync: float | None = None  # time.time() of the last HTTP 200 to a sync
    sent: int = 0  # room events the homeserver accepted
    send_retries: int = 0  # requests repeating a transaction ID seen before
    undecryptable: int = 0  # events that stayed encrypted after nio tried to decrypt them
    _transactions: OrderedDict[str, None] = field(default_factory=OrderedDict)

    def started(self, kind: str, path: str) -> None:
        if kind != "send":
            return
        txn = path.split("?", 1)[0]
        if txn in self._transactions:
            self.send_retries += 1
            self._transactions.move_to_end(txn)
            return
        self._transactions[txn] = None
        if len(self._transactions) > REMEMBERED_SENDS:
            self._transactions.popitem(last=False)

    def answered(self, kind: str, status: int) -> None:
        self.responses[(kind, status_class(status))] += 1
        if status == 429:
            self.rate_limited[kind] += 1
        if kind == "sync":
            self.syncs += 1
            if status == 200:
                self.last_sync = time.time()
            else:
                self.sync_failures += 1
        elif kind == "send" and status == 200:
            self.sent += 1

    def failed(self, kind: str) -> None:
        self.responses[(kind, "error")] += 1
        if kind == "sync":
            self.syncs += 1
            self.sync_failures += 1


class MeasuredClient(AsyncClient):
    """nio's client, with its HTTP requests counted in ``traffic``."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.traffic = HomeserverTraffic()
        self.add_event_callback(self._undecryptable, MegolmEvent)

    async def send(self, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        kind = request_kind(path)
        self.traffic.started(kind, path)
        try:
            response = await super().send(method, path, *args, **kwargs)
        except Exception:  # no answer (time-out, no connection); a cancelled request is not counted
            self.traffic.failed(kind)
            raise
        self.traffic.answered(kind, response.status)
        return response

    async def _undecryptable(self, room: Any, event: Any) -> None:
        self.traffic.undecryptable += 1


class Metrics:
    """The registry ``/metrics`` serves for one bot."""

    def __init__(self, bot: KleinstadtBot, backups: ScheduledBackups | None = None):
        from prometheus_client import CollectorRegistry, Histogram, ProcessCollector
        from prometheus_client import Counter as PromCounter

        self.bot = bot
        self.backups = backups
        self.registry = CollectorRegistry()
        self.commands = PromCounter(
            f"{PREFIX}_commands",
            "Commands handled, by command and outcome (answered, refused, usage_error, rate_limited, failed)",
            ["command", "outcome"],
            registry=self.registry,
        )
        self.duration = Histogram(
            f"{PREFIX}_command_duration_seconds",
            "Time from a command reaching the dispatcher to its last reply",
            ["command"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        ProcessCollector(registry=self.registry)  # memory, CPU, open files of the process
        self.registry.register(_BotState(self))
        self.started = time.time()
        self.outbox_pending: int | None = None
        self.database_bytes: int | None = None
        self.ready = False  # as /readyz answered last (bot.health)

    def command_handled(self, handled: Handled) -> None:
        """A dispatcher listener (``Dispatcher.listeners``)."""
        command = handled.command or "unknown"
        self.commands.labels(command, handled.outcome).inc()
        self.duration.labels(command).observe(handled.seconds)

    async def refresh(self) -> None:
        """What needs the database or the disk, read before each scrape."""
        path = self.bot.db.path
        if str(path) != ":memory:":
            self.database_bytes = sum(
                p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists()
            )
        self.outbox_pending = None
        try:
            row = await self.bot.db.fetchone(
                "SELECT count(*) FROM broadcast_deliveries WHERE state = 'pending'"
            )
        except Exception:  # no broadcasts in this database (yet), or it is closed
            return
        self.outbox_pending = int(row[0]) if row else 0


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    from prometheus_client.core import CounterMetricFamily

    return CounterMetricFamily(f"{PREFIX}_{name}", doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    from prometheus_client.core import GaugeMetricFamily

    return GaugeMetricFamily(f"{PREFIX}_{name}", doc, value=value)


class _BotState:
    """Values read from the bot when Prometheus scrapes (a collector: ``collect``)."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        from commands.general import bot_version

        metrics, bot = self.metrics, self.metrics.bot
        info = GaugeMetricFamily(f"{PREFIX}_build_info", "The running version", labels=["version"])
        info.add_metric([bot_version()], 1)
        yield info
        yield _gauge("ready", "1 when /readyz answers ready", 1 if metrics.ready else 0)
        traffic: HomeserverTraffic = getattr(bot.client, "traffic", None) or HomeserverTraffic()
        yield _counter("sync_requests", "Sync round trips with the homeserver", traffic.syncs)
        yield _counter(
            "sync_failures",
            "Sync round trips that failed (refused, 5xx, time-out, no connection)",
            traffic.sync_failures,
        )
        since = traffic.last_sync or metrics.started
        yield _gauge(
            "last_sync_age_seconds",
            "Seconds since the last successful sync (since start while there was none)",
            max(0.0, time.time() - since),
        )
        if traffic.last_sync is not None:
            yield _gauge("last_sync_timestamp_seconds", "Time of the last successful sync", traffic.last_sync)
        yield _counter(
            "messages_sent", "Room events (messages, reactions, edits) the homeserver accepted", traffic.sent
        )
        yield _counter("send_retries", "Sends repeated with the same transaction ID", traffic.send_retries)
        limited = CounterMetricFamily(
            f"{PREFIX}_homeserver_rate_limited",
            "HTTP 429 answers of the homeserver, by request kind (sync, send, other)",
            labels=["kind"],
        )
        for kind in ("sync", "send", "other"):
            limited.add_metric([kind], traffic.rate_limited[kind])
        yield limited
        responses = CounterMetricFamily(
            f"{PREFIX}_homeserver_responses",
            "Answers of the homeserver by request kind and status class (error: none came)",
            labels=["kind", "status"],
        )
        for (kind, status), count in sorted(traffic.responses.items()):
            responses.add_metric([kind, status], count)
        yield responses
        yield _counter(
            "undecryptable_events", "Encrypted events the bot could not decrypt", traffic.undecryptable
        )
        membership = getattr(bot, "membership", None)
        if membership is not None:
            yield _gauge("rooms_joined", "Rooms the bot is in", len(membership))
        yield from self._scheduled(bot)
        backups = metrics.backups
        if backups is not None:
            done = CounterMetricFamily(
                f"{PREFIX}_backups", "Scheduled backups by outcome (succeeded, failed)", labels=["outcome"]
            )
            done.add_metric(["succeeded"], backups.succeeded)
            done.add_metric(["failed"], backups.failed)
            yield done
            if backups.last_success is not None:
                yield _gauge(
                    "last_backup_timestamp_seconds",
                    "Time of the last verified backup",
                    backups.last_success.timestamp(),
                )
        if metrics.outbox_pending is not None:
            yield _gauge("outbox_pending", "Broadcast deliveries waiting to be sent", metrics.outbox_pending)
        if metrics.database_bytes is not None:
            yield _gauge(
                "database_size_bytes", "Size of the database with its write-ahead log", metrics.database_bytes
            )

    def _scheduled(self, bot: Any) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily

        dispatcher = getattr(bot, "dispatcher", None)
        engine = dispatcher.services.schedules if dispatcher is not None else None
        occurrences = CounterMetricFamily(
            f"{PREFIX}_scheduled_occurrences",
            "Scheduled occurrences (check-ins, excerpts, …): due, late (of the due, after a stop), "
            "missed (too old to deliver), failed",
            labels=["state"],
        )
        for state in ("due", "late", "missed", "failed"):
            occurrences.add_metric([state], engine.counted[state] if engine is not None else 0)
        yield occurrences
        if engine is not None:
            yield _gauge(
                "scheduled_overdue",
                "Planned occurrences more than a minute past their time and not started",
                engine.overdue(),
            )
