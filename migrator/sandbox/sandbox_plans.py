"""The plans `migrator sandbox up` writes beside its document: a migration, the same in two phases
(cutover), and one across regions through two buckets.

Place in the flow: manager.py calls these after the sandbox's clusters and OSS server are up; the
user runs the plans with `migrator apply`. The repository is `type: oss` by default (the test bed's
plugin, elasticsearch-repository-oss, on every node: the nodes write the bucket through the OSS server,
as on Alibaba Cloud), or `type: fs` on the bucket's folder with `sandbox up --repository fs`. The key
pair is always a `${ENV}` reference to the sandbox's env file, never a literal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

KEY_ID_VAR = "MIGRATOR_SANDBOX_OSS_ACCESS_KEY_ID"
SECRET_VAR = "MIGRATOR_SANDBOX_OSS_ACCESS_KEY_SECRET"
CROSS_REGION_BASE_PATH = "snapshots/cross-region"


def repository_document(kind: str, oss: dict[str, Any], bucket_dir: Path, replica_dir: Path) -> dict[str, Any]:
    """The `repository` and `replica_repository` entries of sandbox.json: type and settings, keys left out."""
    if kind == "fs":
        return {
            "repository": {"type": "fs", "settings": {"location": str(bucket_dir / oss["base_path"])}},
            "replica_repository": {"type": "fs", "settings": {"location": str(replica_dir / oss["base_path"])}},
        }

    def settings(bucket: str, region: str) -> dict[str, Any]:
        return {"endpoint": oss["endpoint"], "bucket": bucket, "base_path": oss["base_path"], "region": region}

    return {
        "repository": {"type": "oss", "settings": settings(oss["bucket"], oss["region"])},
        "replica_repository": {"type": "oss", "settings": settings(oss["replica_bucket"], oss["replica_region"])},
    }


def _repository_yaml(document: dict[str, Any], base_path: str, destination: dict[str, Any] | None) -> str:
    """The plan's repository settings (indented) for the source's bucket, and the destination's override."""
    repository = document["repository"]
    if repository["type"] == "fs":
        location = str(Path(repository["settings"]["location"]).parent.parent / base_path)
        text = "  type: fs                      # --repository fs: the bucket's folder, shared by both clusters\n"
        text += f"  settings:\n    location: {location}\n    compress: true\n"
        if destination is not None:
            replica = str(Path(destination["settings"]["location"]).parent.parent / base_path)
            text += "  destination_settings:         # the destination reads its own region's bucket\n"
            text += f"    location: {replica}\n"
        return text
    settings = repository["settings"]
    text = (
        "  type: oss                     # the test bed's elasticsearch-repository-oss plugin, as on Alibaba Cloud\n"
        "  settings:\n"
        f"    endpoint: {settings['endpoint']}\n"
        f"    bucket: {settings['bucket']}\n"
        f"    base_path: {base_path}\n"
        f"    access_key_id: ${{{KEY_ID_VAR}}}\n"
        f"    secret_access_key: ${{{SECRET_VAR}}}\n"
        "    compress: true\n"
        "    extra:\n"
        f"      region: {settings['region']}           # V4 signatures\n"
    )
    if destination is not None:
        text += (
            "  destination_settings:         # the destination reads its own region's bucket\n"
            f"    bucket: {destination['settings']['bucket']}\n"
            "    extra:\n"
            f"      region: {destination['settings']['region']}\n"
        )
    return text


def sandbox_plan(document: dict[str, Any], env_file: str, *, base_path: str | None = None,
                 destination: dict[str, Any] | None = None) -> str:  # fmt: skip
    """A ready plan for this sandbox: the seeded indices, renamed on the destination."""
    oss = document["oss"]
    base_path = base_path or oss["base_path"]
    repository = _repository_yaml(document, base_path, destination)
    return f"""# Written by `migrator sandbox up`: a real migration on the local sandbox.
# Run it with: migrator apply {document["plan"]} --yes
name: sandbox-demo
env_file: {env_file}            # the sandbox's OSS key pair (never written into this plan)
source:
  url: {document["source"]["url"]}
destination:
  url: {document["destination"]["url"]}
repository:
  name: migrator_sandbox
{repository}storage:                        # how migrator reads the repository itself: through the OSS server
  kind: oss
  endpoint: {oss["endpoint"]}
  bucket: {oss["bucket"]}
  base_path: {base_path}
  region: {oss["region"]}
  access_key_id: ${{{KEY_ID_VAR}}}
  access_key_secret: ${{{SECRET_VAR}}}
snapshot:
  indices: ["*"]                # every index; `.`-prefixed ones are left out unless listed by name
  exclude: ["logs-debug"]
restore:
  rename_pattern: "(.+)"
  rename_replacement: "migrated-$1"
"""


def cutover_plan(document: dict[str, Any], env_file: str) -> str:
    """The same migration in two phases: `apply` copies while the source takes writes, `apply --phase
    cutover` blocks writes, catches up with an incremental snapshot and moves the `logs` alias."""
    plan = sandbox_plan(document, env_file).replace("name: sandbox-demo", "name: sandbox-cutover")
    plan = plan.replace('rename_replacement: "migrated-$1"', 'rename_replacement: "cutover-$1"')
    plan = plan.replace(f"# Run it with: migrator apply {document['plan']} --yes", "# Two phases, see below.")
    folder = Path(document["plan"]).parent
    return (
        plan
        + f"""cutover:
  enabled: true                 # migrator apply {folder / "cutover.yaml"} --yes   (phase one: the bulk copy)
                                # migrator apply {folder / "cutover.yaml"} --phase cutover --yes
                                # migrator rollback {folder / "cutover.yaml"}  (writes back on the source)
finish:
  aliases:
    logs: ["logs-2026.11.01", "logs-2026.11.02"]
"""
    )


def cross_region_plan(document: dict[str, Any], env_file: str) -> str:
    """The migration through two buckets: the source's (cn-hangzhou) replicated by OSS to the destination's
    (cn-shanghai), the replica verified before the destination reads it."""
    oss = document["oss"]
    base_path = CROSS_REGION_BASE_PATH
    plan = sandbox_plan(document, env_file, base_path=base_path, destination=document["replica_repository"])
    plan = plan.replace("name: sandbox-demo", "name: sandbox-cross-region")
    plan = plan.replace(
        f"apply {document['plan']} --yes", f"apply {Path(document['plan']).parent / 'cross-region.yaml'} --yes"
    )
    plan = plan.replace("name: migrator_sandbox\n", "name: migrator_sandbox_xr\n")
    plan = plan.replace('rename_replacement: "migrated-$1"', 'rename_replacement: "replica-$1"')
    return (
        plan
        + f"""replication:                    # OSS cross-region replication; method: copy for migrator's own copy
  method: oss
  storage:
    kind: oss
    endpoint: {oss["endpoint"]}
    bucket: {oss["replica_bucket"]}
    base_path: {base_path}
    region: {oss["replica_region"]}
    access_key_id: ${{{KEY_ID_VAR}}}
    access_key_secret: ${{{SECRET_VAR}}}
finish:
  unregister_repositories: true # also removes the replication rule (OSS allows one per target bucket)
"""
    )


def printable(document: dict[str, Any]) -> dict[str, Any]:
    """The sandbox document as `sandbox up` prints it: the OSS secret shown as
    `${MIGRATOR_SANDBOX_OSS_ACCESS_KEY_SECRET}`, the variable the plans read from DIR/sandbox.env (the secret
    itself stays in that file and in sandbox.json, both mode 600). Secrets are never printed, a local
    sandbox's included."""
    oss = {**document["oss"], "access_key_secret": f"${{{SECRET_VAR}}}"}
    return {**document, "oss": oss}
