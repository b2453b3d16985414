"""A persistent response cache in SQLite, safe for several processes sharing one file."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .errors import UserError


def default_cache_dir() -> Path:
    """Where responses and converted models are cached: ``$RAFA_CACHE_DIR`` or ``~/.cache/rafa``."""
    return Path(os.environ.get("RAFA_CACHE_DIR") or Path.home() / ".cache" / "rafa")

_SCHEMA = "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
_BUSY_WAIT_S = 60.0


def is_busy(exc: sqlite3.DatabaseError) -> bool:
    """Another process holds the file for a moment: wait, this is not damage."""
    message = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in message or "busy" in message)


class ResponseCache:
    """key -> JSON value. WAL mode + busy timeout let concurrent runs share one file.

    A file that is not a readable cache database is reported and rebuilt (moved aside to
    ``<name>.corrupt``), never silently used.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._reported: set[str] = set()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create cache directory {self.path.parent}: {exc}")
        self._conn = self._open_or_rebuild()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(_SCHEMA)
        # Reading the table proves the file is a sound database, not just a header.
        conn.execute("SELECT count(*) FROM responses").fetchone()
        return conn

    def _connect_when_free(self) -> sqlite3.Connection:
        deadline = time.monotonic() + _BUSY_WAIT_S
        while True:
            try:
                return self._connect()
            except sqlite3.DatabaseError as exc:
                if not is_busy(exc):
                    raise
                if time.monotonic() > deadline:
                    raise UserError(f"cache {self.path} stays locked by another process: {exc}")
                time.sleep(0.05)

    def _open_or_rebuild(self) -> sqlite3.Connection:
        try:
            return self._connect_when_free()
        except sqlite3.DatabaseError as exc:
            aside = self.path.with_name(self.path.name + ".corrupt")
            print(
                f"warning: cache {self.path} is corrupt ({exc}); moved to {aside}, starting a new one",
                file=sys.stderr,
            )
            for suffix in ("", "-wal", "-shm"):
                part = Path(str(self.path) + suffix)
                if part.exists():
                    part.replace(Path(str(aside) + suffix))
            try:
                return self._connect_when_free()
            except sqlite3.DatabaseError as exc2:
                raise UserError(f"cache {self.path} cannot be rebuilt: {exc2}")

    def get(self, key: str) -> dict[str, Any] | None:
        """The entry for ``key``, or None.  An unreadable entry (damaged after the file was
        opened) is reported, not used: it counts as a miss and the fresh answer replaces it."""
        with self._lock:
            try:
                row = self._conn.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
            except sqlite3.DatabaseError as exc:
                if not is_busy(exc):  # busy past the timeout: just a miss
                    self._report(f"cannot be read ({exc})")
                return None
        if row is None:
            return None
        try:
            value = json.loads(row[0])
        except (TypeError, ValueError):
            value = None
        if not isinstance(value, dict):
            self._report("holds unreadable entries")
            return None
        return value

    def put(self, key: str, value: Any) -> None:
        blob = json.dumps(value, ensure_ascii=False)
        with self._lock:
            try:
                self._conn.execute(
                    "INSERT OR REPLACE INTO responses (key, value) VALUES (?, ?)", (key, blob)
                )
            except sqlite3.DatabaseError as exc:
                if not is_busy(exc):  # busy past the timeout: the answer is just not kept
                    self._report(f"cannot be written ({exc})")

    def _report(self, problem: str) -> None:
        """One stderr line per kind of problem (a damaged cache would otherwise flood it)."""
        if problem not in self._reported:
            self._reported.add(problem)
            print(f"warning: cache {self.path} {problem}; those entries are ignored and asked again",
                  file=sys.stderr)

    def __len__(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT count(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
