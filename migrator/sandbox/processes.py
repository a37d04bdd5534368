"""Processes of the test bed: an unprivileged user, free loopback ports, start and stop.

Elasticsearch refuses to run as root, so when we are root every sandbox process (both nodes and
the OSS server) runs as one unprivileged user that owns the sandbox folder. Each process leads its
own process group, so stopping it stops its children too (8.x+ starts a launcher and a server JVM).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import time
from pathlib import Path

from migrator.errors import SandboxError

SANDBOX_USER = "migrator-es"


def run_as() -> tuple[int, int] | None:
    """(uid, gid) of the unprivileged user when we are root (created if missing), else None."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SANDBOX_USER)
    except KeyError:
        result = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SANDBOX_USER],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise SandboxError(
                f"Elasticsearch refuses to run as root and creating user {SANDBOX_USER!r} failed: "
                f"{result.stderr.strip()}; create it yourself (useradd --system {SANDBOX_USER}) or run as a normal user"
            ) from None
        entry = pwd.getpwnam(SANDBOX_USER)
    return entry.pw_uid, entry.pw_gid


def hand_over(path: Path, owner: tuple[int, int] | None) -> None:
    """Give `path` (recursively) to the sandbox user, and check it can reach it."""
    if owner is None:
        return
    uid, gid = owner
    for root, dirs, files in os.walk(path):
        os.chown(root, uid, gid)
        for name in dirs + files:
            with contextlib.suppress(FileNotFoundError):
                os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)
    for ancestor in path.resolve().parents:
        if not os.stat(ancestor).st_mode & 0o001:
            raise SandboxError(
                f"{ancestor} is not searchable by other users, so the unprivileged user {SANDBOX_USER!r} "
                f"cannot reach {path}; choose another --dir (for example under /var/tmp) or run as a normal user"
            )


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def pick_port(preferred: int, taken: set[int]) -> int:
    """`preferred` when free, else the next free port above it (never one in `taken`)."""
    for port in range(preferred, preferred + 200):
        if port not in taken and port_is_free(port):
            taken.add(port)
            return port
    raise SandboxError(f"no free loopback port in {preferred}..{preferred + 199}; stop what uses them")


def spawn(
    command: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    log: Path,
    owner: tuple[int, int] | None,
) -> subprocess.Popen[bytes]:
    """Start a process in its own session, output appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(
            command,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=owner[0] if owner else None,
            group=owner[1] if owner else None,
            extra_groups=[] if owner else None,
        )


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_group(pgid: int, grace_s: float = 30.0) -> None:
    """SIGTERM the process group, wait, then SIGKILL what is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        _reap(pgid)
        if not group_alive(pgid):
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    for _ in range(50):
        _reap(pgid)
        if not group_alive(pgid):
            return
        time.sleep(0.1)


def _reap(pgid: int) -> None:
    """Collect our own exited children so they do not linger as zombies."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(-pgid, os.WNOHANG)


def tail(path: Path, lines: int = 30) -> str:
    if not path.is_file():
        return f"({path} does not exist)"
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 64 * 1024))
        text = handle.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])
