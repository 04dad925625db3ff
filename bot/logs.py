"""The bot's log: plain text lines by default, JSON lines with ``log.format: json`` (journald,
Loki). What is logged, and why, is in docs/operations.md ("Logs"): one line per handled command
(name, outcome, duration, the sender's Matrix ID), starts and stops, homeserver trouble, failures
with their reference; never the text of a message.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

PLAIN = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# what the dispatcher adds to its line for each handled command (commands.dispatcher)
FIELDS = ("command", "outcome", "duration_ms", "sender", "room_id", "event_id")


class JsonLines(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, the fields of
    a handled command where present, and the traceback of an exception as text."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def setup_logging(level: str = "INFO", format: str = "plain") -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):  # a second call (tests) replaces, not duplicates
        root.removeHandler(handler)
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines() if format == "json" else logging.Formatter(PLAIN))
    root.addHandler(handler)
    root.setLevel(getattr(logging, level, logging.INFO))
    # nio logs every HTTP retry and unknown event at INFO/WARNING; keep the operator's log readable
    logging.getLogger("nio").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("peewee").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # /metrics scrapes
