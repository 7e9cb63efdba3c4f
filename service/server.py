"""How `reason-classifier serve` runs the app: uvicorn, one process, with the limits that protect it from slow
clients, and the service's one-line logs.

uvicorn closes an idle keep-alive connection (`keep_alive_seconds`) and answers 503 above
`max_connections` open connections, but it waits for a new connection's request headers forever:
2,000 connections that sent half a request line were held for over 70 s. The protocol below closes a
connection whose request headers are not complete `header_timeout_seconds` after it opened (or after
its previous response); the body's own deadline is the middleware's (`body_timeout_seconds`).
"""

from __future__ import annotations

import asyncio
import logging
import logging.config
from typing import Any

from reason_classifier.database import database_url

from .logs import logging_config
from .settings import ServiceSettings

log = logging.getLogger("service.server")


def header_timeout_protocol(seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol, closing a connection that sends no complete request headers in `seconds`."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class HeaderTimeoutProtocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request on this connection gets the same time for its headers

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(seconds, self._headers_too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if self.cycle is not None and not self.cycle.response_complete:
                return  # a request is being answered (a pipelined one's headers came): not idle
            if not self.transport.is_closing():
                log.info(
                    "closed a connection that sent no complete request headers within %g s",
                    seconds,
                    extra={"reason": "header_timeout"},
                )
                self.transport.close()

    return HeaderTimeoutProtocol


def run(settings: ServiceSettings, host: str, port: int) -> None:
    """Serve `create_app()` (its settings from the environment, where `serve` put them) until SIGTERM or Ctrl-C."""
    import uvicorn

    config = logging_config(settings.log_level, settings.log_format)
    logging.config.dictConfig(config)
    logging.captureWarnings(True)  # a library's warning is a log line too, not a bare line on stderr
    log.info(
        "starting on http://%s:%d: model %s, store %s, %s, limits: %d connections, headers in %g s, body in %g s",
        host,
        port,
        settings.library().model or "(shipped default)",
        _store(settings.store),
        f"{len(settings.api_keys)} API key(s)" if settings.api_keys else "no API key needed",
        settings.max_connections,
        settings.header_timeout_seconds,
        settings.body_timeout_seconds,
    )
    uvicorn.run(
        "reason_classifier.service.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=1,
        http=header_timeout_protocol(settings.header_timeout_seconds),
        timeout_keep_alive=settings.keep_alive_seconds,
        limit_concurrency=settings.max_connections,
        log_config=config,
        log_level=settings.log_level,
        access_log=False,  # the service logs each request itself (middleware.py), without answer text
    )


def _store(store: str) -> str:
    """The store as the start-up line names it: never a database password."""
    if not store:
        return "off"
    from sqlalchemy.engine import make_url

    return make_url(database_url(store)).render_as_string(hide_password=True)
