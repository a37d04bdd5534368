"""Baseline (a) of scripts/bench_speed.py: the migration by hand, as the fewest REST calls.

Standard library only, no retries, no checks beyond the counts: register the repository on the
source, take the snapshot with `wait_for_completion=true`, register the same location read-only on
the destination, restore with `wait_for_completion=true`, then compare document counts. Each call
is timed; the result is printed as one JSON document on stdout. Exit 1 when a count differs.

    python scripts/bench_speed/minimal_migration.py CONFIG.json

CONFIG.json: {"source": URL, "destination": URL, "repository": NAME, "settings": {...},
"snapshot": NAME, "indices": [...], "rename_pattern": RE, "rename_replacement": TEXT,
"index_settings": {...}}
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

TIMEOUT_S = 3600.0


def call(base: str, method: str, path: str, body: Any = None) -> Any:
    """One request; an HTTP error raises (urllib's HTTPError names the status)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base.rstrip("/") + path, data=data, method=method, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        return json.loads(response.read() or b"null")


def main(config_path: str) -> int:
    config = json.loads(Path(config_path).read_text())
    source, destination = config["source"], config["destination"]
    repository, snapshot = config["repository"], config["snapshot"]
    indices: list[str] = config["indices"]
    timings: dict[str, float] = {}
    replacement = config["rename_replacement"]
    if config["rename_pattern"] != "(.+)" or "$1" not in replacement:
        print(json.dumps({"error": "only the rename (.+) -> ...$1... is supported here"}))
        return 1

    def timed(name: str, base: str, method: str, path: str, body: Any = None) -> Any:
        started = time.perf_counter()
        answer = call(base, method, path, body)
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - started
        return answer

    settings = config["settings"]
    timed("register source", source, "PUT", f"/_snapshot/{repository}", {"type": "fs", "settings": settings})
    answer = timed(
        "snapshot",
        source,
        "PUT",
        f"/_snapshot/{repository}/{snapshot}?wait_for_completion=true",
        {"indices": ",".join(indices), "include_global_state": False},
    )
    state = answer["snapshot"]["state"]
    if state != "SUCCESS":
        print(json.dumps({"error": f"snapshot ended {state}"}))
        return 1
    timed(
        "register destination",
        destination,
        "PUT",
        f"/_snapshot/{repository}",
        {"type": "fs", "settings": {**settings, "readonly": True}},
    )
    timed(
        "restore",
        destination,
        "POST",
        f"/_snapshot/{repository}/{snapshot}/_restore?wait_for_completion=true",
        {
            "indices": ",".join(indices),
            "include_global_state": False,
            "include_aliases": False,
            "rename_pattern": config["rename_pattern"],
            "rename_replacement": config["rename_replacement"],
            "index_settings": config["index_settings"],
        },
    )
    counts: dict[str, list[int]] = {}
    for index in indices:
        expected = timed("count", source, "GET", f"/{index}/_count")["count"]
        target = replacement.replace("$1", index)
        actual = timed("count", destination, "GET", f"/{target}/_count")["count"]
        counts[index] = [expected, actual]
    same = all(expected == actual for expected, actual in counts.values())
    print(json.dumps({"timings": timings, "counts": counts, "ok": same}))
    return 0 if same else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
