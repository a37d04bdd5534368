"""`migrator verify`: check a snapshot in its repository (OSS bucket or folder) from the blobs alone.

Place in the flow: CLI -> migrator.repository.verify -> storage. Standalone and read-only (GET and
LIST only), so it is safe against a production bucket. The repository comes from a plan file
(`--plan`, its storage section, exactly what `apply` reads, with only the secrets that reach the bucket:
no cluster's password is needed), from OSS coordinates (credentials from
OSS_ACCESS_KEY_ID, OSS_ACCESS_KEY_SECRET and optionally OSS_SESSION_TOKEN), or from a folder
(`--dir`). Without `--snapshot` it lists the snapshots. Exit codes: 0 restorable (or listed), 1 not
restorable or the repository cannot be read, 2 bad input.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from migrator.cli.choices import Signature
from migrator.cli.errors import errors_to_exit_codes, fail
from migrator.exit_codes import ExitCode

if TYPE_CHECKING:  # imported where used: the command line loads this module for every command (main.py)
    from migrator.clients.storage import Storage
    from migrator.repository.verify import VerifyResult

_COLORS = {"error": typer.colors.RED, "warning": typer.colors.YELLOW, "garbage": None}
_HEADINGS = {"error": "Problems", "warning": "Warnings", "garbage": "Leftovers (normal, not a problem)"}


def _oss_storage(
    endpoint: str, bucket: str | None, base_path: str, region: str | None, signature: Literal["v4", "v1"]
) -> Storage:
    if not bucket:
        raise fail("--endpoint needs --bucket (and --base-path, the repository's folder in it)", ExitCode.BAD_INPUT)
    key_id, secret = os.environ.get("OSS_ACCESS_KEY_ID"), os.environ.get("OSS_ACCESS_KEY_SECRET")
    if not key_id or not secret:
        missing = "set OSS_ACCESS_KEY_ID and OSS_ACCESS_KEY_SECRET (and OSS_SESSION_TOKEN with STS)"
        raise fail(missing, ExitCode.BAD_INPUT)
    from migrator.clients.storage import OssStorage

    try:
        return OssStorage(
            endpoint=endpoint,
            bucket=bucket,
            base_path=base_path,
            access_key_id=key_id,
            access_key_secret=secret,
            region=region,
            security_token=os.environ.get("OSS_SESSION_TOKEN") or None,
            signature=signature,
        )
    except ValueError as exc:
        raise fail(str(exc), ExitCode.BAD_INPUT) from None


def _open_storage(
    plan: Path | None,
    directory: Path | None,
    endpoint: str | None,
    bucket: str | None,
    base_path: str,
    region: str | None,
    signature: Literal["v4", "v1"],
) -> tuple[Storage, bool]:
    """The storage to read, and whether the plan allows PARTIAL snapshots."""
    from migrator.clients.storage import LocalStorage
    from migrator.migration.opened import open_buckets

    chosen = [name for name, value in (("--plan", plan), ("--dir", directory), ("--endpoint", endpoint)) if value]
    if len(chosen) != 1:
        raise fail(
            "name the repository once: --plan PLAN, or --dir FOLDER, or --endpoint/--bucket/--base-path/--region"
            + (f" (got {' and '.join(chosen)})" if chosen else ""),
            ExitCode.BAD_INPUT,
        )
    if plan is not None:
        with errors_to_exit_codes():
            buckets = open_buckets(plan.resolve())
        with errors_to_exit_codes(buckets.secrets.redactor.text):
            return buckets.storage(), buckets.spec.snapshot.partial
    if directory is not None:
        if not directory.is_dir():
            raise fail(f"--dir {directory} is not a folder", ExitCode.BAD_INPUT)
        return LocalStorage(directory), False
    return _oss_storage(endpoint or "", bucket, base_path, region, signature), False


def _print_listing(storage: Storage, as_json: bool) -> None:
    from migrator.repository.repository_data import list_snapshots

    generation, snapshots = list_snapshots(storage)
    if as_json:
        document = {
            "storage": storage.description,
            "generation": generation,
            "snapshots": [
                {
                    "name": s.name,
                    "uuid": s.uuid,
                    "state": s.state,
                    "indices": s.indices,
                    "version": s.version,
                    "index_version": s.index_version,
                    "end_time_millis": s.end_time_millis,
                }
                for s in snapshots
            ],
        }
        typer.echo(json.dumps(document, indent=2))
        return
    if generation is None:
        typer.echo(f"{storage.description}: no index-N, so no snapshot (empty repository, or a wrong path)")
        return
    typer.echo(f"{storage.description}: {len(snapshots)} snapshot(s) in index-{generation}")
    for s in snapshots:
        ended = (
            datetime.fromtimestamp(s.end_time_millis / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
            if isinstance(s.end_time_millis, int)
            else "-"
        )
        version = f"index {s.index_version}" if s.index_version else s.version or "-"
        typer.echo(f"  {s.name:<40} {s.state:<12} {len(s.indices):>5} indices  {version:<14} {ended}")
    typer.echo("Verify one with --snapshot NAME (add --deep to check every file's checksum footer).")


def _print_report(result: VerifyResult) -> None:
    typer.echo(f"repository  {result.storage}")
    typer.echo(
        f"snapshot    {result.snapshot}  uuid {result.uuid or '-'}  state {result.state or '-'}  "
        f"generation index-{result.generation if result.generation is not None else '-'}"
    )
    typer.echo(
        f"checked     {result.indices} indices, {result.shards} shards, {result.files} files, {result.blobs} blobs "
        f"({result.bytes} bytes), {result.listed} listed; level {result.level}; "
        f"{result.requests} requests in {result.seconds:.2f}s"
    )
    for severity in ("error", "warning", "garbage"):
        findings = [f for f in result.findings if f.severity == severity]
        if not findings:
            continue
        typer.secho(f"{_HEADINGS[severity]} ({len(findings)}):", fg=_COLORS[severity], bold=severity == "error")
        for finding in findings:
            typer.echo(f"  - {finding.message}" + (f"  [{finding.key}]" if finding.key else ""))
    if result.restorable:
        typer.secho(f"RESTORABLE: snapshot {result.snapshot}", fg=typer.colors.GREEN, bold=True)
    else:
        typer.secho(
            f"NOT RESTORABLE: snapshot {result.snapshot} ({len(result.errors)} problem(s))",
            fg=typer.colors.RED,
            bold=True,
        )


def verify(
    snapshot: Annotated[
        str | None, typer.Option("--snapshot", "-s", help="The snapshot to verify; without it, list the snapshots.")
    ] = None,
    plan: Annotated[
        Path | None,
        typer.Option("--plan", metavar="PLAN", help="Read the repository named by this plan's storage section."),
    ] = None,
    directory: Annotated[
        Path | None, typer.Option("--dir", help="The repository's root folder (an fs repository's location).")
    ] = None,
    endpoint: Annotated[
        str | None, typer.Option(help="OSS endpoint, e.g. https://oss-cn-hangzhou-internal.aliyuncs.com")
    ] = None,
    bucket: Annotated[str | None, typer.Option(help="OSS bucket.")] = None,
    base_path: Annotated[
        str,
        typer.Option(help="The repository's folder in the bucket (its base_path).", show_default="the bucket's root"),
    ] = "",
    region: Annotated[str | None, typer.Option(help="The bucket's region, e.g. cn-hangzhou (V4 signing).")] = None,
    signature: Annotated[Signature, typer.Option(help="OSS request signature version.")] = Signature.V4,
    deep: Annotated[
        bool,
        typer.Option(
            "--deep",
            help="Also read each shard folder's live index-N (only the next snapshot or delete reads it) and "
            "check every file's checksum footer (one small ranged GET per file).",
        ),
    ] = False,
    full: Annotated[
        bool, typer.Option("--full", help="Also read every byte and check its CRC32 (implies --deep; slow).")
    ] = False,
    allow_partial: Annotated[
        bool | None,
        typer.Option(
            "--allow-partial/--no-allow-partial",
            help="Accept a PARTIAL snapshot.",
            show_default="the plan's snapshot.partial, else no",
        ),
    ] = None,
    index: Annotated[
        list[str] | None, typer.Option("--index", help="Verify only this index of the snapshot (repeatable).")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Blob reads at once.")] = 8,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Verify a snapshot in its repository, reading the bucket (or folder) itself, read-only.

    Checks the live index-N, the snapshot and its state, its metadata blobs, every shard's file
    list and every file's blobs with their exact sizes, with one listing per index (what a restore
    reads); --deep adds each shard folder's live index-N and each file's checksum footer, --full every
    byte. Exit 0 only when the snapshot is restorable, 1 when it is not (or the repository cannot be
    read), 2 for bad options.
    """
    from migrator.clients.storage import StorageError
    from migrator.repository.repository_data import RepositoryFormatError
    from migrator.repository.verify import verify_snapshot

    storage, plan_partial = _open_storage(
        plan, directory, endpoint, bucket, base_path, region, "v1" if signature is Signature.V1 else "v4"
    )
    try:
        if snapshot is None:
            _print_listing(storage, as_json)
            return
        result = verify_snapshot(
            storage,
            snapshot,
            deep=deep,
            full=full,
            allow_partial=plan_partial if allow_partial is None else allow_partial,
            indices=index or None,
            workers=workers,
        )
    except (StorageError, RepositoryFormatError) as exc:  # the reader's errors, worded for this command
        raise fail(f"cannot read the repository: {exc}", exc.exit_code) from None
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        _print_report(result)
    if not result.restorable:
        raise typer.Exit(int(ExitCode.FAILED))
