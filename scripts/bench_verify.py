"""Benchmark of `migrator verify` (issue 4): a repository of N blobs read through the sandbox OSS server.

Builds a synthetic repository in Elasticsearch's layout (framed SMILE metadata, data files with
Lucene footers, 128-byte chunks so some files have `.partN` blobs), serves it with the OSS server
in a separate process (as a real bucket is remote), and measures in the same run:

- requests: the verification's (client and server counts) against ceil(N/1000) + O(shards);
- time: the verification against a raw paged listing of the same prefix (median of the rounds);
- memory: the verification's peak Python allocations (tracemalloc) and the process's peak RSS;
- client CPU: this process's CPU (all its threads) per verification and per request;
- one small GET's CPU: `--gets` whole-object reads (`OssStorage.read`) of a 700-byte object, this
  process's reading thread's CPU (`time.thread_time`) per read; the server's is in its own process.

    python scripts/bench_verify.py                 # 100,000 blobs, 4 indices x 25 shards
    python scripts/bench_verify.py --blobs 20000 --deep
    python scripts/bench_verify.py --gets-only     # only the CPU of one small GET (1,000 reads)
    python scripts/bench_verify.py --blobs 354 --indices 50 --shards 1 --compress --rounds 5
                                                   # the sandbox's shape: one-shard indices of 4 files
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import random
import resource
import secrets
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
import zlib
from pathlib import Path

from migrator.clients.storage import OssStorage
from migrator.repository.blob import FOOTER_MAGIC, encode_blob
from migrator.repository.verify import VerifyResult, verify_snapshot

BUCKET, REGION, BASE = "bench", "oss-cn-hangzhou", "repo"
PART_SIZE = 128
SNAPSHOT = "bench-snapshot"


def uid() -> str:
    return base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")


def lucene_file(length: int, rng: random.Random) -> tuple[bytes, str]:
    """`length` bytes ending with a Lucene footer, and the checksum as the snapshot records it (base 36)."""
    body = rng.randbytes(length - 16) + struct.pack(">Ii", FOOTER_MAGIC, 0)
    crc = zlib.crc32(body)
    digits, number, text = "0123456789abcdefghijklmnopqrstuvwxyz", crc, ""
    while True:
        number, digit = divmod(number, 36)
        text = digits[digit] + text
        if not number:
            return body + struct.pack(">q", crc), text


def build(root: Path, blobs: int, indices: int, shards: int, compress: bool) -> int:
    """Write the repository; returns the number of blobs written."""
    rng = random.Random(4)
    snapshot_uuid = uid()
    metadata_blobs = 4 + indices + 2 * indices * shards
    data_blobs = blobs - metadata_blobs
    if data_blobs < indices * shards:
        raise SystemExit(f"--blobs {blobs} is too few for {indices} indices x {shards} shards")
    root.mkdir(parents=True)
    written = 0
    repository = {"snapshots": [], "indices": {}, "min_version": "7.9.0", "index_metadata_identifiers": {}}
    lookup = {}
    for number in range(indices):
        name, index_id, meta_id, identifier = f"bench-{number}", uid(), uid()[:20], f"{uid()}-_na_-1-1-1"
        lookup[index_id] = identifier
        repository["index_metadata_identifiers"][identifier] = meta_id
        generations = []
        folder = root / "indices" / index_id
        folder.mkdir(parents=True)
        settings = {"index.number_of_shards": str(shards), "index.number_of_replicas": "0", "index.uuid": uid()}
        (folder / f"meta-{meta_id}.dat").write_bytes(
            encode_blob(
                "index-metadata", {name: {"version": 1, "settings": settings, "mappings": []}}, compress=compress
            )
        )
        written += 1
        for shard in range(shards):
            share = data_blobs // (indices * shards) + (
                1 if number * shards + shard < data_blobs % (indices * shards) else 0
            )
            shard_folder = folder / str(shard)
            shard_folder.mkdir()
            files = []
            while share > 0:
                parts = 3 if share >= 3 and len(files) % 10 == 0 else 1
                length = PART_SIZE * 2 + 60 if parts == 3 else rng.randint(48, PART_SIZE)
                content, checksum = lucene_file(length, rng)
                name_ = f"__{uid()}"
                if parts == 1:
                    (shard_folder / name_).write_bytes(content)
                else:
                    for part in range(parts):
                        (shard_folder / f"{name_}.part{part}").write_bytes(
                            content[part * PART_SIZE : (part + 1) * PART_SIZE]
                        )
                written += parts
                share -= parts
                files.append(
                    {
                        "name": name_,
                        "physical_name": f"_{len(files)}.cfs",
                        "length": length,
                        "checksum": checksum,
                        "part_size": PART_SIZE,
                        "written_by": "9.12.0",
                    }
                )
            generation = uid()
            generations.append(generation)
            snap = {"name": SNAPSHOT, "index_version": 0, "start_time": 0, "time": 1, "files": files}
            (shard_folder / f"snap-{snapshot_uuid}.dat").write_bytes(encode_blob("snapshot", snap, compress=compress))
            shard_index = {"files": files, "snapshots": {SNAPSHOT: {"files": [f["name"] for f in files]}}}
            (shard_folder / f"index-{generation}").write_bytes(encode_blob("snapshots", shard_index, compress=compress))
            written += 2
        repository["indices"][name] = {"id": index_id, "snapshots": [snapshot_uuid], "shard_generations": generations}
    repository["snapshots"].append(
        {"name": SNAPSHOT, "uuid": snapshot_uuid, "state": 1, "index_metadata_lookup": lookup, "version": "8.11.0"}
    )
    info = {
        "snapshot": {
            "name": SNAPSHOT,
            "uuid": snapshot_uuid,
            "indices": sorted(repository["indices"]),
            "state": "SUCCESS",
            "failures": [],
            "total_shards": indices * shards,
            "successful_shards": indices * shards,
        }
    }
    (root / f"snap-{snapshot_uuid}.dat").write_bytes(encode_blob("snapshot", info, compress=compress))
    (root / f"meta-{snapshot_uuid}.dat").write_bytes(encode_blob("metadata", {"meta-data": {}}, compress=compress))
    (root / "index-0").write_text(json.dumps(repository))
    (root / "index.latest").write_bytes((0).to_bytes(8, "big"))
    return written + 4


def start_server(folder: Path, key: str, secret: str) -> tuple[subprocess.Popen[str], str]:
    config = folder / "server.json"
    buckets = [{"name": BUCKET, "region": REGION}]
    config.write_text(
        json.dumps({"root": str(folder), "buckets": buckets, "access_key_id": key, "access_key_secret": secret})
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "migrator.sandbox.oss_server", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    return process, json.loads(process.stdout.readline())["endpoint"]


def server_requests(endpoint: str) -> int:
    """The server's own request count (from its admin endpoint, which it does not count)."""
    with urllib.request.urlopen(f"{endpoint}/-/stats") as answer:
        return int(json.load(answer)["request_count"])


def raw_listing(storage: OssStorage) -> tuple[float, int, int]:
    before = storage.request_count
    started = time.perf_counter()
    keys = sum(1 for _ in storage.list(""))
    return time.perf_counter() - started, keys, storage.request_count - before


def rounds(times: list[float]) -> str:
    return ", ".join(f"{t:.2f}" for t in times)


def timed_verify(storage: OssStorage, workers: int, deep: bool = False) -> tuple[float, VerifyResult]:
    started = time.perf_counter()
    result = verify_snapshot(storage, SNAPSHOT, deep=deep, workers=workers)
    return time.perf_counter() - started, result


def verify_cpu(storage: OssStorage, workers: int, rounds: int) -> tuple[float, float, int]:
    """This process's CPU (every thread's; the server runs in its own process) of `rounds` verifications:
    milliseconds per verification and per request, and the requests of one."""
    requests = 0
    started = time.process_time()
    for _ in range(rounds):
        requests = timed_verify(storage, workers)[1].requests
    cpu = (time.process_time() - started) * 1000 / rounds
    return cpu, cpu / requests, requests


def get_cpu_ms(endpoint: str, key: str, secret: str, reads: int) -> float:
    """Milliseconds of the calling thread's CPU per whole-object read of a 700-byte object (CRC64 checked),
    after 50 reads that warm the connection pool; the object is written under `get/`, beside the repository."""
    storage = OssStorage(endpoint, BUCKET, "get", key, secret, region=REGION)
    storage.write("object-700", os.urandom(700))
    for _ in range(50):
        storage.read("object-700")
    started = time.thread_time()
    for _ in range(reads):
        storage.read("object-700")
    return (time.thread_time() - started) * 1000 / reads


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blobs", type=int, default=100_000, help="blobs in the repository (N)")
    parser.add_argument("--indices", type=int, default=4)
    parser.add_argument("--shards", type=int, default=25, help="shards per index")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds of each (the median is reported)")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--compress", action="store_true", help="DEFLATE the metadata blobs")
    parser.add_argument("--deep", action="store_true", help="also time one --deep verification (1 GET per file)")
    parser.add_argument("--dir", type=Path, help="work folder [default: a temporary one, removed after]")
    parser.add_argument("--gets", type=int, default=1000, help="reads of a 700-byte object for one GET's CPU")
    parser.add_argument("--gets-only", action="store_true", help="measure only one small GET's CPU")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-verify-", dir=args.dir) as work:
        folder = Path(work)
        if args.gets_only:
            (folder / BUCKET).mkdir()
            key, secret = "bench", secrets.token_urlsafe(16)
            process, endpoint = start_server(folder, key, secret)
            try:
                cpu = get_cpu_ms(endpoint, key, secret, args.gets)
            finally:
                process.terminate()
                process.wait(timeout=30)
            print(f"one GET of 700 bytes: {cpu:.3f} ms of CPU ({args.gets} reads)")
            return 0
        started = time.perf_counter()
        blobs = build(folder / BUCKET / BASE, args.blobs, args.indices, args.shards, args.compress)
        shards = args.indices * args.shards
        print(
            f"repository: {blobs} blobs, {args.indices} indices x {args.shards} shards "
            f"(built in {time.perf_counter() - started:.1f}s)"
        )
        key, secret = "bench", secrets.token_urlsafe(16)
        process, endpoint = start_server(folder, key, secret)
        try:
            storage = OssStorage(endpoint, BUCKET, BASE, key, secret, region=REGION)
            raw_listing(storage)  # warm the server's directory cache, as for the verification below
            listing_times, verify_times = [], []
            for _ in range(args.rounds):
                seconds, keys, list_requests = raw_listing(storage)
                listing_times.append(seconds)
                server_before = server_requests(endpoint)
                seconds, result = timed_verify(storage, args.workers)
                verify_times.append(seconds)
                served = server_requests(endpoint) - server_before
                if not result.restorable or keys != blobs:
                    print(result.summary())
                    return 1
            pages = math.ceil(blobs / 1000)
            listing_median, verify_median = statistics.median(listing_times), statistics.median(verify_times)
            print(
                f"raw paged listing: {keys} keys, {list_requests} requests, median {listing_median:.2f}s "
                f"(rounds: {rounds(listing_times)})"
            )
            print(
                f"verify (normal):   {result.requests} requests (server counted {served}), "
                f"median {verify_median:.2f}s (rounds: {rounds(verify_times)})"
            )
            print(
                f"  requests bound:  ceil(N/1000) = {pages}; + {shards} shards + 2 x {args.indices} indices "
                f"+ 10 at the root = {pages + shards + 2 * args.indices + 10}"
            )
            print(f"  time ratio:      {verify_median / listing_median:.2f}x the raw listing (target <= 1.5x)")
            print(f"  checked:         {result.files} files, {result.blobs} data blobs, {result.listed} listed")

            tracemalloc.start()
            raw_listing(storage)
            listing_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.reset_peak()
            timed_verify(storage, args.workers)
            verify_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(
                f"  memory:          verify peak {verify_peak / 2**20:.1f} MiB of Python allocations "
                f"(raw listing {listing_peak / 2**20:.1f} MiB); process peak RSS {rss:.0f} MiB"
            )
            cpu, per_request, requests = verify_cpu(storage, args.workers, args.rounds)
            print(
                f"  client CPU:      {cpu:.1f} ms per verification, {per_request:.3f} ms per request "
                f"({requests} requests, mean of {args.rounds} rounds, every thread of this process)"
            )
            cpu = get_cpu_ms(endpoint, key, secret, args.gets)
            print(f"one GET of 700 bytes: {cpu:.3f} ms of CPU ({args.gets} reads)")
            if args.deep:
                seconds, deep = timed_verify(storage, args.workers, deep=True)
                print(
                    f"verify --deep:     {deep.requests} requests in {seconds:.2f}s "
                    f"({'restorable' if deep.restorable else 'NOT restorable'})"
                )
        finally:
            process.terminate()
            process.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
