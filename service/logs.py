"""One line per event from the service's loggers, as text or JSON, with the id of the request it is about.

`serve` configures this (uvicorn's `log_config`), so uvicorn's own lines come out the same way. A line at
`info` or above holds no answer text and no customer id, and no traceback: an exception is named by its
type, and its traceback is written only at `log_level: debug`, where answer texts are logged too (a
traceback's frames may hold them). Structured fields travel as the record's `extra` (`route`,
`status`, `duration_ms`, `code`, `field`, ...): JSON lines carry them as keys; text lines have them in
the message already.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from .errors import request_id_var

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id", "color_message"}
"""Attributes every record has (and uvicorn's coloured copy of its message): not structured fields."""


class RequestId(logging.Filter):
    """Puts the current request's id on every record (`-` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class _OneLine(logging.Formatter):
    def _time(self, record: logging.LogRecord) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def _exception(self, record: logging.LogRecord) -> str | None:
        """The traceback at debug level; otherwise only the exception's type (its message may quote an answer)."""
        if not record.exc_info or record.exc_info[0] is None:
            return None
        if logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            return self.formatException(record.exc_info)
        return f"{record.exc_info[0].__name__} (traceback at log_level debug)"


class TextFormatter(_OneLine):
    """`2026-12-07T18:40:00.123Z INFO service.access 3f2a… POST /v1/classify 200 12.3ms`"""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{self._time(record)} {record.levelname} {record.name} {getattr(record, 'request_id', '-')} "
        line += record.getMessage()
        exception = self._exception(record)
        if exception is not None:
            line += f" [{exception}]" if "\n" not in exception else "\n" + exception
        return line


class JsonFormatter(_OneLine):
    """`{"time": ..., "level": "INFO", "logger": "service.access", "request_id": ..., "message": ..., "route": ...}`"""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self._time(record),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        exception = self._exception(record)
        if exception is not None:
            line["exception"] = exception
        return json.dumps(line, ensure_ascii=False, default=str)


def logging_config(log_level: str, log_format: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` for the service's, uvicorn's and every other logger: one handler, on stderr."""
    formatter = JsonFormatter if log_format == "json" else TextFormatter
    level = log_level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestId}},
        "formatters": {"line": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "line",
                "filters": ["request_id"],
            }
        },
        "loggers": {
            "service": {"handlers": ["stderr"], "level": level, "propagate": False},
            "reason_classifier": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.access": {"level": "WARNING"},
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }
