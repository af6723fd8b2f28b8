"""The command line's log lines: plain text for a terminal, JSON lines for a collector.

The node logs one line per start, stop, query and refusal (DESIGN section 5: never a data
value, only ids, reasons, charges and timings). ``fedstats --log-format json`` writes each
record as one JSON object (``time``, ``level``, ``logger``, ``message`` and the record's
``event`` fields, passed as ``extra={"event": {...}}``): journald, Kubernetes and log
shippers take such lines as they are.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

__all__ = ["LOG_FORMATS", "JsonFormatter", "configure"]

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: its time (UTC), level, logger, message and fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(getattr(record, "event", {}))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(level: int, log_format: str = "text") -> None:
    """Send the process's log records to stderr, as text or JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
