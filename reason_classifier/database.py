"""Where the answer store lives, as a SQLAlchemy URL: the service writes there and trends read from it."""

from __future__ import annotations

from pathlib import Path


def database_url(store: str) -> str:
    """A SQLAlchemy URL from a `store` setting: a URL as given (PostgreSQL through psycopg, the driver this project
    installs), anything else an SQLite file path."""
    from sqlalchemy.engine import make_url

    if "://" in store:
        url = make_url(store)
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
        return url.render_as_string(hide_password=False)
    return f"sqlite:///{Path(store).expanduser().resolve()}"
