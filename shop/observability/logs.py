"""Log lines that say which request they belong to: JSON or text.

`RequestContextFilter` goes on the handler, so every record that reaches it
gets the request id and the user of whatever runs now, whichever logger made
it (Django's, Celery's, a library's). `JsonFormatter` writes one JSON object
per line, for a log shipper; `TextFormatter` the same facts for a person
(LOG_FORMAT in shop/settings/base.py picks one).
"""

import json
import logging
from datetime import UTC, datetime

from django.http import HttpRequest

from shop.observability.context import request_id_get, user_id_get

# What every LogRecord has: anything else on a record came from `extra=`
# (the access line's method, path, status...) and goes into the JSON.
STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None))
) | {"message", "asctime", "taskName"}


class RequestContextFilter(logging.Filter):
    """Add request_id and user_id to each record; filter nothing out."""

    def filter(self, record):
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_get()
        if getattr(record, "user_id", None) is None:
            record.user_id = user_id_get()
        return True


def _loggable(value):
    """An extra as the log may keep it.

    Django logs every 4xx and 5xx response with the request as an extra;
    its repr carries the full URL, query string included, and a query
    string may carry an e-mail address or a token. The access line leaves
    it out for that reason, and so does every other line.
    """
    if isinstance(value, HttpRequest):
        return f"{value.method} {value.path}"
    return value


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, ids, extras."""

    def format(self, record):
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "user_id": getattr(record, "user_id", None),
        }
        for key, value in vars(record).items():
            if key not in STANDARD_ATTRIBUTES and key not in entry:
                entry[key] = _loggable(value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: an extra that JSON cannot hold (a UUID, a datetime)
        # is written as text rather than losing the line.
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """A line for a person, with the request id when there is one."""

    def __init__(self):
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
        )

    def formatMessage(self, record):
        # On a copy of the record's fields: another handler may read it next.
        fields = {**vars(record), "request_id": getattr(record, "request_id", None)}
        fields["request_id"] = fields["request_id"] or "-"
        return self._fmt % fields
