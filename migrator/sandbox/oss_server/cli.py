"""Run the sandbox OSS server alone, as its own process: `python -m migrator.sandbox.oss_server --config FILE`.

Place in the flow: `migrator sandbox up` (sandbox.manager, the docker engine) starts this process -> an
OssServer on the configured root, buckets and key pair; it prints `{"endpoint": ...}` once listening
and serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from migrator.sandbox.oss_server.protocol import BucketConfig, Faults
from migrator.sandbox.oss_server.server import OssServer

_DESCRIPTION = (
    "An OSS-compatible HTTP server that serves local directories as buckets (the sandbox's stand-in for OSS)."
)


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT; print `{"endpoint": ...}` once listening."""
    parser = argparse.ArgumentParser(prog="python -m migrator.sandbox.oss_server", description=_DESCRIPTION)
    parser.add_argument(
        "--config",
        required=True,
        type=Path,
        help="JSON file: {root, host, port, buckets: [{name, region, storage_class}], "
        "access_key_id, access_key_secret, security_token?, faults?}",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    config = json.loads(args.config.read_text(encoding="utf-8"))
    server = OssServer(
        root=Path(config["root"]),
        buckets=[BucketConfig(**bucket) for bucket in config["buckets"]],
        access_key_id=config["access_key_id"],
        access_key_secret=config["access_key_secret"],
        security_token=config.get("security_token"),
        host=config.get("host", "127.0.0.1"),
        port=int(config.get("port", 0)),
        faults=Faults.from_json(config["faults"]) if config.get("faults") else None,
    )
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    server.start()
    print(json.dumps({"endpoint": server.endpoint}), flush=True)
    stopping.wait()
    server.stop()
    return 0
