"""Benchmark of the client-side snapshot copy: a snapshot of N MiB copied bucket to bucket through the OSS server.

The server runs in a separate process (as a real bucket is remote), with a source and a target
bucket in two regions; the snapshot is a synthetic 7.x-layout repository (the test suite's builder:
one index, one shard, files of --file-mib with Lucene footers, chunked at --chunk-mib). Measured in
the same run, into separate base paths of the target bucket, with --latency-ms added to every
request (a bucket in another region is tens of milliseconds away):

- baseline: a plain sequential loop, GET each needed blob whole then PUT it;
- copy_snapshot: parallel, phased, CRC64-checked, big blobs streamed in parts;
- the same copy again (everything present: HEADs only, the root rewritten).

    python scripts/bench_copy.py                      # 256 MiB in 16 MiB files, 8 workers, 20 ms per request
    python scripts/bench_copy.py --mib 64 --file-mib 1 --latency-ms 0

Needs the test extras (it imports the builder from tests/).
"""

from __future__ import annotations

import argparse
import json
import resource
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests.repository

from migrator.clients.storage import OssStorage  # noqa: E402
from migrator.repository.copy import CopyResult, copy_snapshot  # noqa: E402
from migrator.repository.needed_blobs import snapshot_blobs  # noqa: E402
from migrator.repository.verify import verify_snapshot  # noqa: E402
from tests.repository.test_copy import write_synthetic_repository  # noqa: E402

SOURCE, TARGET = "bench-source", "bench-target"
REGIONS = {SOURCE: "oss-cn-hangzhou", TARGET: "oss-cn-shanghai"}
MIB = 1024 * 1024


def start_server(folder: Path, key: str, secret: str, latency_ms: int) -> tuple[subprocess.Popen[str], str]:
    config = folder / "server.json"
    buckets = [{"name": name, "region": region} for name, region in REGIONS.items()]
    settings = {"root": str(folder), "buckets": buckets, "access_key_id": key, "access_key_secret": secret}
    settings["faults"] = {"latency_ms": latency_ms}
    config.write_text(json.dumps(settings))
    process = subprocess.Popen(
        [sys.executable, "-m", "migrator.sandbox.oss_server", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    return process, json.loads(process.stdout.readline())["endpoint"]


def served(endpoint: str) -> int:
    """The server's own request count (its admin endpoint is not counted)."""
    with urllib.request.urlopen(f"{endpoint}/-/stats") as answer:
        return int(json.load(answer)["request_count"])


def baseline(source: OssStorage, target: OssStorage, snapshot: str) -> tuple[float, int]:
    """Seconds and requests of a sequential GET-then-PUT of every needed blob (the listing not timed)."""
    blobs = snapshot_blobs(source, snapshot)
    before = source.request_count + target.request_count
    started = time.perf_counter()
    for blob in blobs:
        target.write(blob.key, source.read(blob.key))
    return time.perf_counter() - started, source.request_count + target.request_count - before


def line(label: str, seconds: float, size: int, requests: int, server_requests: int | None = None) -> str:
    rate = size / MIB / seconds if seconds else float("inf")
    counted = f" (server counted {server_requests})" if server_requests is not None else ""
    return f"{label:<22} {seconds:7.2f}s  {rate:8.1f} MiB/s  {requests:5d} requests{counted}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="snapshot size in MiB (N)")
    parser.add_argument("--file-mib", type=int, default=16, help="size of each data file in MiB")
    parser.add_argument(
        "--chunk-mib", type=int, default=64, help="the repository's chunk_size: bigger files get .partN"
    )
    parser.add_argument("--part-mib", type=int, default=8, help="multipart part size (and the streaming threshold x2)")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--latency-ms", type=int, default=20, help="added to every request, as a remote region's")
    parser.add_argument("--dir", type=Path, help="work folder [default: a temporary one, removed after]")
    args = parser.parse_args()

    files = max(1, args.mib // args.file_mib)
    lengths = [args.file_mib * MIB] * files
    with tempfile.TemporaryDirectory(prefix="bench-copy-", dir=args.dir) as work:
        folder = Path(work)
        started = time.perf_counter()
        snapshot = write_synthetic_repository(folder / SOURCE / "repo", lengths, args.chunk_mib * MIB)
        print(f"snapshot: {files} files of {args.file_mib} MiB (built in {time.perf_counter() - started:.1f}s)")
        key, secret = "bench", secrets.token_urlsafe(16)
        process, endpoint = start_server(folder, key, secret, args.latency_ms)
        try:

            def storage(bucket: str, base: str) -> OssStorage:
                return OssStorage(endpoint, bucket, base, key, secret, region=REGIONS[bucket])

            source = storage(SOURCE, "repo")
            plain_seconds, plain_requests = baseline(source, storage(TARGET, "baseline"), snapshot)

            def timed(base: str) -> tuple[float, CopyResult, int]:
                before = served(endpoint)
                started = time.perf_counter()
                result = copy_snapshot(
                    source,
                    storage(TARGET, base),
                    snapshot,
                    workers=args.workers,
                    part_size=args.part_mib * MIB,
                    multipart_threshold=2 * args.part_mib * MIB,
                )
                return time.perf_counter() - started, result, served(endpoint) - before

            copy_seconds, result, copy_served = timed("copy")
            again_seconds, again, again_served = timed("copy")
            if not result.complete or not again.complete:
                print(result.summary(), again.summary(), sep="\n")
                return 1
            verdict = verify_snapshot(storage(TARGET, "copy"), snapshot, workers=args.workers)
        finally:
            process.terminate()
            process.wait(timeout=30)
    size = result.bytes
    print(
        f"needed: {result.blobs} blobs, {size / MIB:.1f} MiB; workers {args.workers}, parts {args.part_mib} MiB, "
        f"{args.latency_ms} ms added per request"
    )
    print(line("sequential GET+PUT", plain_seconds, size, plain_requests))
    print(line("copy_snapshot", copy_seconds, size, result.source_requests + result.target_requests, copy_served))
    print(line("copy again (resume)", again_seconds, size, again.source_requests + again.target_requests, again_served))
    print(f"  speed ratio:  copy_snapshot is {plain_seconds / copy_seconds:.2f}x the sequential loop")
    print(f"  resume:       {again.skipped} skipped, {again.copied} rewritten (the root index-N and index.latest)")
    print(f"  target:       {verdict.summary().splitlines()[0]}")
    print(f"  memory:       process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0 if verdict.restorable else 1


if __name__ == "__main__":
    sys.exit(main())
