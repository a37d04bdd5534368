"""The state store: one SQLite file (WAL) per migration with checkpoints, events, facts and a lock.

The executor writes a checkpoint before it acts (`acting`) and after a step is finished (`done`),
so a run killed at any instant can be resumed: the next run reads the checkpoints and observes the
real clusters to learn what happened in between. One executor at a time holds the lock; it
refreshes a heartbeat every few seconds. A lock whose holder is gone (same host, dead pid) or
silent for too long is taken over; a live one is refused, naming the holder, unless forced.
Nothing secret is ever written here: the executor redacts before it records.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migrator.dag import StepStatus
from migrator.errors import NeedsAttention

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS steps (
    step TEXT PRIMARY KEY, status TEXT NOT NULL, detail TEXT NOT NULL, attempts INTEGER NOT NULL,
    updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, run INTEGER NOT NULL, step TEXT,
    kind TEXT NOT NULL, message TEXT NOT NULL, data TEXT);
CREATE TABLE IF NOT EXISTS progress (step TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lock (
    id INTEGER PRIMARY KEY CHECK (id = 1), holder TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
    acquired REAL NOT NULL, heartbeat REAL NOT NULL);
"""
HEARTBEAT_S = 2.0
STALE_AFTER_S = 30.0


class LockHeld(NeedsAttention):
    """Another executor holds the lock; the message names it and the way out."""


@dataclass(frozen=True)
class Checkpoint:
    step: str
    status: str  # a StepStatus value (migrator.dag): acting | done | failed; a step without one is pending
    detail: dict[str, Any]
    attempts: int
    updated: float


@dataclass(frozen=True)
class Event:
    id: int
    ts: float
    run: int
    step: str | None
    kind: str
    message: str
    data: dict[str, Any] | None


class StateStore:
    """Thread-safe access to one state file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        os.chmod(path, 0o600)
        self._mutex = threading.RLock()
        self._heartbeat: threading.Thread | None = None
        self._stop = threading.Event()
        self.run = int(self.get_meta("runs") or 0)

    def close(self) -> None:
        """Release the lock and close the file. Under the mutex: a request answered meanwhile on another
        thread (a held restore) must not write while the connection closes; after it, a write raises
        sqlite3.ProgrammingError, which that thread's request reports as its error."""
        self.release_lock()
        with self._mutex:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._mutex:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # meta --------------------------------------------------------------------------------

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        with self._mutex:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, **values: str) -> None:
        with self._tx() as db:
            db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", list(values.items()))

    def get_json(self, key: str) -> Any:
        raw = self.get_meta(key)
        return None if raw is None else json.loads(raw)

    def set_json(self, key: str, value: Any) -> None:
        self.set_meta(**{key: json.dumps(value, sort_keys=True)})

    def json_prefixed(self, prefix: str) -> dict[str, Any]:
        """Every meta value whose key starts with `prefix`, decoded, by the rest of its key."""
        with self._mutex:
            rows = self._db.execute(
                "SELECT key, value FROM meta WHERE substr(key, 1, ?) = ?", (len(prefix), prefix)
            ).fetchall()
        return {key[len(prefix) :]: json.loads(value) for key, value in rows}

    def delete_meta_prefixed(self, prefix: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM meta WHERE substr(key, 1, ?) = ?", (len(prefix), prefix))

    def begin_run(self) -> int:
        """Count a new executor run (apply or resume); events are tagged with it."""
        with self._tx() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'runs'").fetchone()
            self.run = int(row[0]) + 1 if row else 1
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('runs', ?)", (str(self.run),))
        return self.run

    # checkpoints ---------------------------------------------------------------------------

    def checkpoint(self, step: str, status: str, detail: dict[str, Any] | None = None) -> None:
        with self._tx() as db:
            row = db.execute("SELECT attempts, detail FROM steps WHERE step = ?", (step,)).fetchone()
            attempts = (row[0] if row else 0) + (1 if status == StepStatus.ACTING else 0)
            merged = {**(json.loads(row[1]) if row else {}), **(detail or {})}
            db.execute(
                "INSERT OR REPLACE INTO steps (step, status, detail, attempts, updated) VALUES (?, ?, ?, ?, ?)",
                (step, status, json.dumps(merged, sort_keys=True), attempts, time.time()),
            )

    def reset(self, steps: list[str] | None = None) -> None:
        """Forget the checkpoints of `steps` (all when None): a new run will observe and redo them."""
        with self._tx() as db:
            if steps is None:
                db.execute("DELETE FROM steps")
            else:
                db.executemany("DELETE FROM steps WHERE step = ?", [(step,) for step in steps])

    def checkpoints(self) -> dict[str, Checkpoint]:
        with self._mutex:
            rows = self._db.execute("SELECT step, status, detail, attempts, updated FROM steps").fetchall()
        return {row[0]: Checkpoint(row[0], row[1], json.loads(row[2]), row[3], row[4]) for row in rows}

    def get_checkpoint(self, step: str) -> Checkpoint | None:
        """The checkpoint of one step (one row read by its key), or None when it has none."""
        with self._mutex:
            row = self._db.execute(
                "SELECT step, status, detail, attempts, updated FROM steps WHERE step = ?", (step,)
            ).fetchone()
        return None if row is None else Checkpoint(row[0], row[1], json.loads(row[2]), row[3], row[4])

    # progress ------------------------------------------------------------------------------

    def set_progress(self, step: str, progress: dict[str, Any]) -> None:
        """Keep the latest progress of one step (one row per step, replaced: the file does not grow with
        the number of updates)."""
        with self._tx() as db:
            row = (step, json.dumps(progress, sort_keys=True))
            db.execute("INSERT OR REPLACE INTO progress (step, data) VALUES (?, ?)", row)

    def progress(self) -> dict[str, dict[str, Any]]:
        """Step -> its latest progress (`completed`, `total`, `unit`, `text`, `ts`); a state file written before
        the progress table kept it as one JSON object in the meta key `progress`, read under the table's rows."""
        with self._mutex:
            rows = self._db.execute("SELECT step, data FROM progress").fetchall()
        return {**(self.get_json("progress") or {}), **{row[0]: json.loads(row[1]) for row in rows}}

    def statuses(self) -> dict[str, str]:
        """Node id -> the status of its checkpoint (steps without one are absent): what migrator.selection reads."""
        return {step: checkpoint.status for step, checkpoint in self.checkpoints().items()}

    # events --------------------------------------------------------------------------------

    def event(self, kind: str, message: str, *, step: str | None = None, data: dict[str, Any] | None = None) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO events (ts, run, step, kind, message, data) VALUES (?, ?, ?, ?, ?, ?)",
                (time.time(), self.run, step, kind, message, json.dumps(data, sort_keys=True) if data else None),
            )

    def events(self, kind: str | None = None, run: int | None = None) -> list[Event]:
        query = "SELECT id, ts, run, step, kind, message, data FROM events"
        clauses: list[str] = []
        args: list[str | int] = []
        if kind is not None:
            clauses.append("kind = ?")
            args.append(kind)
        if run is not None:
            clauses.append("run = ?")
            args.append(run)
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        with self._mutex:
            rows = self._db.execute(query + " ORDER BY id", args).fetchall()
        return [Event(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]) if r[6] else None) for r in rows]

    def recent_events(self, limit: int) -> list[Event]:
        """The last `limit` events, oldest first (read from the end: the cost does not grow with the log)."""
        with self._mutex:
            rows = self._db.execute(
                "SELECT id, ts, run, step, kind, message, data FROM events ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [Event(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]) if r[6] else None) for r in reversed(rows)]

    # lock ----------------------------------------------------------------------------------

    def lock_holder(self) -> dict[str, Any] | None:
        with self._mutex:
            row = self._db.execute("SELECT holder, host, pid, acquired, heartbeat FROM lock WHERE id = 1").fetchone()
        if row is None:
            return None
        return {"holder": row[0], "host": row[1], "pid": row[2], "acquired": row[3], "heartbeat": row[4]}

    def acquire_lock(self, holder: str, *, force: bool = False) -> None:
        """Take the lock or raise LockHeld naming the live holder; starts the heartbeat."""
        host, pid, now = socket.gethostname(), os.getpid(), time.time()
        with self._tx() as db:
            row = db.execute("SELECT holder, host, pid, heartbeat FROM lock WHERE id = 1").fetchone()
            mine = row is not None and row[1] == host and row[2] == pid
            if (
                row is not None
                and not force
                and not mine
                and holder_alive({"host": row[1], "pid": row[2], "heartbeat": row[3]}, now)
            ):
                raise LockHeld(
                    f"another migrator run holds the lock on {self.path}: {row[0]} (pid {row[2]} on {row[1]}, "
                    f"heartbeat {now - row[3]:.0f} s ago). Wait for it, or if it is gone for sure, "
                    "run again with --force-unlock"
                )
            db.execute(
                "INSERT OR REPLACE INTO lock (id, holder, host, pid, acquired, heartbeat) VALUES (1, ?, ?, ?, ?, ?)",
                (holder, host, pid, now, now),
            )
        self._stop.clear()
        self._heartbeat = threading.Thread(target=self._beat, name="state-heartbeat", daemon=True)
        self._heartbeat.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            with self._tx() as db:
                db.execute("UPDATE lock SET heartbeat = ? WHERE id = 1 AND pid = ?", (time.time(), os.getpid()))

    def release_lock(self) -> None:
        if self._heartbeat is None:
            return
        self._stop.set()
        self._heartbeat.join()
        self._heartbeat = None
        with self._tx() as db:
            db.execute("DELETE FROM lock WHERE id = 1 AND pid = ?", (os.getpid(),))


def holder_alive(lock: dict[str, Any], now: float | None = None) -> bool:
    """Whether a lock's holder (`{"host", "pid", "heartbeat"}`) still runs: its heartbeat is younger than
    STALE_AFTER_S (seconds) and, on this host, its pid lives (a `kill -9` shows at once)."""
    fresh = (time.time() if now is None else now) - lock["heartbeat"] < STALE_AFTER_S
    return fresh and (lock["host"] != socket.gethostname() or pid_alive(lock["pid"]))


def pid_alive(pid: int) -> bool:
    """Whether a process of this machine still runs (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as stat:
        if stat.read().split(") ", 1)[1].startswith("Z"):
            return False
    return True


class RecordedOnce:
    """A JSON map in the state file's meta (under `key`) whose entries are written once and never
    overwritten: what was there before migrator changed it, observed before its first change. Without a
    state file (the dry run) the map lives in memory."""

    def __init__(self, key: str, state: StateStore | None = None) -> None:
        self.key = key
        self.state = state
        self._memory: dict[str, Any] | None = None

    def get(self) -> dict[str, Any] | None:
        """The record, or None when nothing was recorded."""
        return self._memory if self.state is None else self.state.get_json(self.key)

    def record(self, observed: dict[str, Any]) -> dict[str, Any]:
        """Add the entries the record lacks; the ones it has are kept as they are. Returns the whole record."""
        recorded = self.get()
        merged = {**observed, **(recorded or {})}
        if recorded is None or merged != recorded:
            if self.state is None:
                self._memory = merged
            else:
                self.state.set_json(self.key, merged)
        return merged

    def forget(self) -> None:
        """Drop the record (what it kept was put back; the next change records anew)."""
        if self.state is None:
            self._memory = None
        else:
            self.state.set_json(self.key, None)
