"""The state store: checkpoints survive reopening, events are ordered, the lock names its holder."""

import os
import socket
import subprocess
import sys
import time

import pytest

from migrator.state import LockHeld, StateStore, holder_alive, pid_alive


def test_checkpoints_merge_detail_and_count_attempts(tmp_path):
    store = StateStore(tmp_path / "s.db")
    store.checkpoint("snapshot.create", "acting", {"snapshot": "s1"})
    store.checkpoint("snapshot.create", "done", {"state": "SUCCESS"})
    store.close()
    reopened = StateStore(tmp_path / "s.db")
    cp = reopened.get_checkpoint("snapshot.create")
    assert cp is not None
    assert (cp.status, cp.attempts) == ("done", 1)
    assert cp.detail == {"snapshot": "s1", "state": "SUCCESS"}
    assert oct(os.stat(tmp_path / "s.db").st_mode & 0o777) == "0o600"


def test_events_are_tagged_with_the_run(tmp_path):
    store = StateStore(tmp_path / "s.db")
    assert store.begin_run() == 1
    store.event("request", "GET /", data={"method": "GET"})
    assert store.begin_run() == 2
    store.event("request", "PUT /x", step="a")
    assert [e.message for e in store.events(kind="request", run=2)] == ["PUT /x"]
    assert [e.run for e in store.events()] == [1, 2]


def test_a_live_holder_is_refused_and_named(tmp_path):
    path = tmp_path / "s.db"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys,time; from pathlib import Path; from migrator.state import StateStore;"
                f"s=StateStore(Path({str(path)!r})); s.acquire_lock('apply by tester'); print('locked', flush=True);"
                "time.sleep(60)"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        store = StateStore(path)
        with pytest.raises(LockHeld, match="apply by tester.*--force-unlock"):
            store.acquire_lock("second apply")
        store.acquire_lock("forced", force=True)
        assert store.lock_holder()["holder"] == "forced"
        store.release_lock()
        assert store.lock_holder() is None
    finally:
        holder.kill()
        holder.wait()


def test_a_dead_holder_on_this_host_is_taken_over(tmp_path):
    path = tmp_path / "s.db"
    subprocess.run(
        [
            sys.executable,
            "-c",
            (
                "import os; from pathlib import Path; from migrator.state import StateStore;"
                f"s=StateStore(Path({str(path)!r})); s.acquire_lock('killed run'); os._exit(9)"
            ),
        ],
        check=False,
    )
    store = StateStore(path)
    assert store.lock_holder()["holder"] == "killed run"
    store.acquire_lock("resume")
    time.sleep(0.1)
    assert store.lock_holder()["holder"] == "resume"
    store.close()


def test_pid_alive_tells_a_running_process_from_an_exited_one_even_before_it_is_reaped():
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert pid_alive(child.pid) and pid_alive(os.getpid())
        child.kill()
        deadline = time.monotonic() + 10
        while pid_alive(child.pid) and time.monotonic() < deadline:  # a zombie until reaped: not alive
            time.sleep(0.05)
        assert not pid_alive(child.pid)
    finally:
        child.kill()
        child.wait()
    assert not pid_alive(child.pid)


def test_a_lock_whose_holder_was_killed_on_this_host_is_not_held_although_its_heartbeat_is_fresh():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    now = time.time()
    here = socket.gethostname()
    assert not holder_alive({"host": here, "pid": child.pid, "heartbeat": now}, now)  # killed a second ago
    assert holder_alive({"host": here, "pid": os.getpid(), "heartbeat": now}, now)
    assert not holder_alive({"host": here, "pid": os.getpid(), "heartbeat": now - 60}, now)  # hung: stale
    assert holder_alive({"host": "elsewhere", "pid": child.pid, "heartbeat": now}, now)  # pid of another host


def test_a_checkpoint_is_read_by_its_key_and_progress_only_for_the_step_that_changed(tmp_path):
    store = StateStore(tmp_path / "s.db")
    for index in range(200):
        store.checkpoint(f"restore[{index}]", "done", {"bytes": index})
        store.set_progress(f"recovery[{index}]", {"completed": index, "total": 200, "unit": "bytes", "text": ""})
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    assert store.get_checkpoint("restore[7]").detail == {"bytes": 7}
    assert store.get_checkpoint("restore[x]") is None
    store.set_progress("recovery[3]", {"completed": 200, "total": 200, "unit": "bytes", "text": "done"})
    store._db.set_trace_callback(None)
    reads = [s for s in statements if s.startswith("SELECT")]
    assert reads and all("WHERE step = " in s for s in reads)  # one row by key, not every checkpoint
    assert max(len(s) for s in statements) < 300  # one step's progress written, not all 200
    assert store.progress()["recovery[3]"]["text"] == "done" and len(store.progress()) == 200
    assert [e.message for e in store.recent_events(2)] == []
    store.event("a", "first")
    store.event("b", "second")
    store.event("c", "third")
    assert [e.message for e in store.recent_events(2)] == ["second", "third"]
    store.close()


CLOSE_WHILE_WRITING = """
import pathlib, sqlite3, sys, threading
from migrator.state import StateStore
for attempt in range(20):
    store = StateStore(pathlib.Path(sys.argv[1]) / f"s{attempt}.db")
    def answers():  # a held request answered while the run ends: its response event is written
        for n in range(2000):
            try:
                store.event("response", "GET /x " + "y" * 500, data={"n": n})
            except sqlite3.ProgrammingError:  # closed: the clean error
                return
    threads = [threading.Thread(target=answers) for _ in range(8)]
    for thread in threads:
        thread.start()
    store.close()
    for thread in threads:
        thread.join()
"""


def test_closing_the_state_while_other_threads_still_write_is_clean_not_a_crash(tmp_path):
    # Before close took the mutex, this ended in SIGSEGV (exit -11) within a few attempts: the exit of a
    # run with held requests still in flight.
    child = subprocess.run([sys.executable, "-c", CLOSE_WHILE_WRITING, str(tmp_path)], capture_output=True, timeout=300)
    assert child.returncode == 0, child.stderr.decode()[-2000:]
