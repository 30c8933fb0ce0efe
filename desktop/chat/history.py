"""Chat history in SQLite, through Chainlit's SQLAlchemy data layer, and the local user's secret.

Chainlit's data layer does not create its tables; `create_schema` does, idempotently, with the
standard library's sqlite3 before the server starts (the tables, those the data layer writes, are
`chainlit_compat.HISTORY_SCHEMA`).
"""

from __future__ import annotations

import secrets
import sqlite3
from pathlib import Path

from desktop.chat.chainlit_compat import HISTORY_SCHEMA


def create_schema(database: Path) -> None:
    """Create the history tables if they are missing; WAL mode so a kill loses no committed write."""
    database.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(database) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.executescript(HISTORY_SCHEMA)
    connection.close()


def conninfo(database: Path) -> str:
    """The SQLAlchemy URL of the history database."""
    return f"sqlite+aiosqlite:///{database}"


def auth_secret(path: Path) -> str:
    """The secret that signs the local user's session: generated once, then kept (owner-only)."""
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        secret = ""
    if len(secret) >= 32:
        return secret
    secret = secrets.token_urlsafe(48)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".tmp")
    temp.write_text(secret, encoding="utf-8")
    temp.chmod(0o600)
    temp.replace(path)
    return secret
