"""Container images of the sandbox's Docker engine (migrator/sandbox/docker_engine.py).

An Elasticsearch node runs from the official image of its version when the registry answers (what a
user with internet access gets). Where it cannot be pulled, the image is built here without any
registry: a Debian root file system made by `debootstrap` from the machine's apt mirror (with
python3 for the OSS server) is imported as the base, and on top of it go a JDK of this machine and
the same integ-test zip the process engine runs. Every image is built once and found again by tag.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from migrator.sandbox.distributions import Distribution, find_java_home
from migrator.sandbox.processes import SandboxError

if TYPE_CHECKING:
    import docker

OFFICIAL_REPOSITORY = "docker.elastic.co/elasticsearch/elasticsearch"
LOCAL_REPOSITORY = "migrator-sandbox/elasticsearch"
BASE_IMAGE = "migrator-sandbox/base:bookworm-1"  # bump the suffix when the base's content changes
SUITE = "bookworm"
BASE_PACKAGES = ["python3", "python3-crcmod"]  # the OSS server runs on the base image
ES_HOME = "/usr/share/elasticsearch"  # the same place as in the official image
JDK_HOME = "/opt/jdk"
TRIMMED = ["var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/locale"]


@dataclass(frozen=True)
class Image:
    """An image ready on the engine: its tag and whether it is Elastic's official one."""

    tag: str
    official: bool


def exists(client: docker.DockerClient, tag: str) -> bool:
    import docker.errors

    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def size_bytes(client: docker.DockerClient, tag: str) -> int:
    """The image's size on the engine, in bytes (the engine's `Size`: all its layers)."""
    return int(client.images.get(tag).attrs["Size"])


def elasticsearch_image(client: docker.DockerClient, dist: Distribution, home: Path, mode: str = "auto") -> Image:
    """The image a node of `dist` runs from. `mode`: `official` (pull it or fail), `local` (build it here
    from `home`, the unpacked integ-test zip) or `auto` (official when present or pullable, else local).
    Raises SandboxError naming what failed."""
    official = f"{OFFICIAL_REPOSITORY}:{dist.version}"
    local = f"{LOCAL_REPOSITORY}:{dist.version}"
    if mode != "local":
        if exists(client, official):
            return Image(official, True)
        reason = pull(client, official)
        if reason is None:
            return Image(official, True)
        if mode == "official":
            raise SandboxError(f"cannot pull {official}: {reason}; use --image local to build it here")
    if not exists(client, local):
        build_elasticsearch(client, dist, home, local)
    return Image(local, False)


def pull(client: docker.DockerClient, tag: str) -> str | None:
    """Pull `tag`; None when it arrived, else the engine's reason (no registry, unknown tag...)."""
    import docker.errors
    import requests

    repository, version = tag.rsplit(":", 1)
    try:
        client.images.pull(repository, tag=version)
    except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
        return str(getattr(exc, "explanation", None) or exc)
    return None


def base_image(client: docker.DockerClient) -> str:
    """The Debian base (with python3), imported from a debootstrap root file system once; its tag.
    Raises SandboxError when debootstrap is missing or fails, or the engine refuses the import."""
    import docker.errors

    if exists(client, BASE_IMAGE):
        return BASE_IMAGE
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None or os.geteuid() != 0:
        raise SandboxError(
            f"the local base image {BASE_IMAGE} is missing and building it needs debootstrap run as root; "
            "run `apt-get install debootstrap` and `migrator sandbox up --engine docker` once as root"
        )
    repository, tag = BASE_IMAGE.rsplit(":", 1)
    with tempfile.TemporaryDirectory(prefix="migrator-base-", dir="/var/tmp") as scratch:
        rootfs = Path(scratch) / "rootfs"
        command = [debootstrap, "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", SUITE, str(rootfs)]
        mirror = apt_mirror()
        if mirror:
            command.append(mirror)
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
        except subprocess.TimeoutExpired as exc:
            raise SandboxError("debootstrap did not finish within 30 minutes; check the apt mirror") from exc
        if result.returncode != 0:
            last = "\n".join((result.stdout + result.stderr).strip().splitlines()[-5:])
            raise SandboxError(f"debootstrap failed building {BASE_IMAGE}:\n{last}")
        for trimmed in TRIMMED:
            target = rootfs / trimmed
            if target.is_dir():
                shutil.rmtree(target)
                target.mkdir()
        archive = Path(scratch) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(archive), "."], check=True)
        try:
            client.api.import_image_from_file(str(archive), repository=repository, tag=tag)
        except docker.errors.APIError as exc:
            raise SandboxError(f"importing {BASE_IMAGE} failed: {exc.explanation or exc}") from None
    return BASE_IMAGE


def apt_mirror() -> str | None:
    """The first Debian mirror of this machine's apt sources (deb822 or one-line form), if any."""
    sources = [Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")]
    for source in sources:
        if not source.is_file():
            continue
        for line in source.read_text().splitlines():
            words = line.split()
            if words[:1] == ["URIs:"] and len(words) > 1 and not words[1].endswith("-security"):
                return words[1]
            if words[:1] == ["deb"] and len(words) > 2:
                return words[2] if not words[1].startswith("[") else words[3]
    return None


DOCKERFILE = f"""FROM {{base}}
COPY jdk {JDK_HOME}
COPY elasticsearch {ES_HOME}
ENV ES_JAVA_HOME={JDK_HOME} JAVA_HOME={JDK_HOME} PATH={ES_HOME}/bin:{JDK_HOME}/bin:/usr/bin:/bin
WORKDIR {ES_HOME}
USER 1000:1000
ENTRYPOINT ["{ES_HOME}/bin/elasticsearch"]
"""


def build_elasticsearch(client: docker.DockerClient, dist: Distribution, home: Path, tag: str) -> None:
    """Build `tag`: the base, this machine's JDK for `dist` (symlinks resolved) and the unpacked zip at
    `home`. The JDK layer is the same for every version on that JDK, so the engine's build cache keeps
    one copy of it."""
    import docker.errors

    base = base_image(client)
    java_home = find_java_home(dist.java_feature)
    with tempfile.TemporaryFile(dir="/var/tmp") as context:
        with tarfile.open(fileobj=context, mode="w") as tar:
            dockerfile = DOCKERFILE.format(base=base).encode()
            info = tarfile.TarInfo("Dockerfile")
            info.size = len(dockerfile)
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(dockerfile))
            add_resolved(tar, java_home, "jdk")
            tar.add(home, arcname="elasticsearch", filter=_without_marker)
        context.seek(0)
        try:
            client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True, pull=False)
        except docker.errors.BuildError as exc:
            lines = [str(item.get("stream", item.get("error", ""))).strip() for item in exc.build_log]
            raise SandboxError(f"building {tag} failed: {exc.msg}\n" + "\n".join(lines[-10:])) from None
        except docker.errors.APIError as exc:
            raise SandboxError(f"building {tag} failed: {exc.explanation or exc}") from None


def add_resolved(tar: tarfile.TarFile, folder: Path, arcname: str) -> None:
    """Add `folder` with every symlink replaced by what it points at (Debian's JDK links into /etc);
    dangling links (an absent src.zip) are left out."""
    for root, dirs, files in os.walk(folder, followlinks=True):
        relative = Path(root).relative_to(folder)
        tar.add(Path(root).resolve(), arcname=str(Path(arcname) / relative), recursive=False)
        for name in sorted(files):
            path = Path(root) / name
            with contextlib.suppress(FileNotFoundError):
                tar.add(path.resolve(strict=True), arcname=str(Path(arcname) / relative / name))
        dirs.sort()


def _without_marker(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    """The unpack marker is the sandbox's bookkeeping, not part of the distribution."""
    return None if info.name.endswith("/.unpacked") else info
