"""Container images of the sandbox's Docker engine (migrator/sandbox/docker_engine.py).

An Elasticsearch or OpenSearch node runs from the official image of its version when the registry
answers (what a user with internet access gets). Where it cannot be pulled, the image is built here
without any registry: a Debian root file system made by `debootstrap` from the machine's apt mirror
(with python3 for the OSS server) is imported as the base, and on top of it go a JDK of this machine
and the same integ-test zip the process engine runs. Where the plans use an `oss` repository, one
layer more installs the test bed's plugin (repository_plugin.py) with the distribution's own
`elasticsearch-plugin install`, on either image. Every image is built once and found again by tag.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from migrator.errors import SandboxError
from migrator.sandbox.distributions import ELASTICSEARCH, OPENSEARCH, Distribution, find_java_home

if TYPE_CHECKING:
    import docker

OFFICIAL_REPOSITORIES = {
    ELASTICSEARCH: "docker.elastic.co/elasticsearch/elasticsearch",
    OPENSEARCH: "opensearchproject/opensearch",
}
LOCAL_REPOSITORY = "migrator-sandbox/{flavour}"  # the integ-test zip on the local base
PLUGGED_REPOSITORY = "migrator-sandbox/{flavour}-oss"  # either image plus the oss plugin
BASE_IMAGE = "migrator-sandbox/base:bookworm-1"  # bump the suffix when the base's content changes
SUITE = "bookworm"
BASE_PACKAGES = ["python3", "python3-crcmod"]  # the OSS server runs on the base image
HOMES = {ELASTICSEARCH: "/usr/share/elasticsearch", OPENSEARCH: "/usr/share/opensearch"}  # as in the official images
JDK_HOME = "/opt/jdk"
TRIMMED = ["var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/locale"]


@dataclass(frozen=True)
class Image:
    """An image ready on the engine: its tag, whether it is (built on) the official one, the distribution's
    home inside it, and whether the test bed's oss plugin is installed in it."""

    tag: str
    official: bool
    home: str
    plugin: bool = False


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


def official_tag(dist: Distribution) -> str:
    """The official image of `dist`: `docker.elastic.co/elasticsearch/elasticsearch:8.19.21`,
    `opensearchproject/opensearch:2.19.0`."""
    return f"{OFFICIAL_REPOSITORIES[dist.flavour]}:{dist.version}"


def node_image(
    client: docker.DockerClient, dist: Distribution, home: Path, mode: str = "auto", plugin: Path | None = None
) -> Image:
    """The image a node of `dist` runs from. `mode`: `official` (present or pulled, else fail), `local`
    (built here from `home`, the unpacked integ-test zip) or `auto` (official when present or pullable,
    else local). With `plugin` (a built plugin folder, repository_plugin.plugin_dir), the image with that
    plugin installed on top (`with_plugin`). Raises SandboxError naming what failed."""
    official = official_tag(dist)
    image: Image | None = None
    if mode != "local":
        if exists(client, official):
            image = Image(official, True, HOMES[dist.flavour])
        else:
            reason = pull(client, official)
            if reason is None:
                image = Image(official, True, HOMES[dist.flavour])
            elif mode == "official":
                raise SandboxError(f"cannot pull {official}: {reason}; use --image local to build it here")
    if image is None:
        local = f"{LOCAL_REPOSITORY.format(flavour=dist.flavour)}:{dist.version}"
        if not exists(client, local):
            build_local(client, dist, home, local)
        image = Image(local, False, HOMES[dist.flavour])
    return image if plugin is None else with_plugin(client, image, dist, plugin)


PLUGIN_DOCKERFILE = """FROM {base}
USER 0
COPY {archive} /tmp/{archive}
RUN {home}/bin/{flavour}-plugin install --batch file:///tmp/{archive} && rm /tmp/{archive}
USER {user}
"""


def with_plugin(client: docker.DockerClient, image: Image, dist: Distribution, plugin: Path) -> Image:
    """`image` with the plugin folder `plugin` installed by the distribution's own `elasticsearch-plugin
    install --batch file://...` (which checks the descriptor's version, the jars and the policy as for any
    user's plugin), built once per image and plugin build: the tag names the version, the kind of base
    (official or local) and the plugin's cache key (`<version>-<source hash>`). The base's user is kept."""

    kind = "official" if image.official else "local"
    tag = f"{PLUGGED_REPOSITORY.format(flavour=dist.flavour)}:{kind}-{plugin.parent.name}"
    plugged = Image(tag, image.official, image.home, plugin=True)
    if exists(client, tag):
        return plugged
    archive = f"{plugin.name}.zip"
    user = client.images.get(image.tag).attrs["Config"].get("User") or "0"
    dockerfile = PLUGIN_DOCKERFILE.format(
        base=image.tag, archive=archive, home=image.home, flavour=dist.flavour, user=user
    )
    with tempfile.TemporaryFile(dir="/var/tmp") as context:
        with tarfile.open(fileobj=context, mode="w") as tar:
            _add_bytes(tar, "Dockerfile", dockerfile.encode())
            _add_bytes(tar, archive, plugin_archive(plugin, dist))
        context.seek(0)
        build(client, context, tag, f"installing the oss plugin into {tag}")
    return plugged


def plugin_archive(plugin: Path, dist: Distribution) -> bytes:
    """The plugin folder as the zip `elasticsearch-plugin install` takes: its files at the top (6.8 and
    later; 6.8's installer refuses an `elasticsearch/` folder as "an older plugin structure"), or under
    `elasticsearch/` (the layout 5.x's installer requires)."""
    prefix = "elasticsearch/" if dist.major < 6 else ""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(plugin.rglob("*")):
            if path.is_file() and path.name != "build-seconds":
                archive.write(path, prefix + path.relative_to(plugin).as_posix())
    return buffer.getvalue()


def _add_bytes(tar: tarfile.TarFile, name: str, content: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(content))


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
COPY distribution {{home}}
ENV ES_JAVA_HOME={JDK_HOME} OPENSEARCH_JAVA_HOME={JDK_HOME} JAVA_HOME={JDK_HOME} \\
    PATH={{home}}/bin:{JDK_HOME}/bin:/usr/bin:/bin
WORKDIR {{home}}
USER 1000:1000
ENTRYPOINT ["{{home}}/bin/{{flavour}}"]
"""


def build_local(client: docker.DockerClient, dist: Distribution, home: Path, tag: str) -> None:
    """Build `tag`: the base, this machine's JDK for `dist` (symlinks resolved) and the unpacked zip at
    `home`, at the official image's home (HOMES). The JDK layer is the same for every version on that
    JDK, so the engine's build cache keeps one copy of it."""

    base = base_image(client)
    java_home = find_java_home(dist.java_feature)
    with tempfile.TemporaryFile(dir="/var/tmp") as context:
        with tarfile.open(fileobj=context, mode="w") as tar:
            dockerfile = DOCKERFILE.format(base=base, home=HOMES[dist.flavour], flavour=dist.flavour)
            _add_bytes(tar, "Dockerfile", dockerfile.encode())
            add_resolved(tar, java_home, "jdk")
            tar.add(home, arcname="distribution", filter=_without_marker)
        context.seek(0)
        build(client, context, tag, f"building {tag}")


STEP_IMAGE = re.compile(r"---> ([0-9a-f]{12,64})\b")  # a build step's result in the engine's build log


def build(client: docker.DockerClient, context: BinaryIO, tag: str, what: str) -> None:
    """Build the tar `context` as `tag`. A failed build leaves nothing behind: not its failed step's
    container (forcerm) nor the untagged images of the steps before it (on vfs each a full copy of the
    image); SandboxError names `what` failed, with the build's last lines."""
    import docker.errors

    try:
        client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True, forcerm=True, pull=False)
    except docker.errors.BuildError as exc:
        lines = [str(item.get("stream", item.get("error", ""))).strip() for item in exc.build_log]
        for step in reversed(STEP_IMAGE.findall("\n".join(lines))):
            with contextlib.suppress(docker.errors.APIError):  # a cached step other images build on stays
                if not client.images.get(step).tags:
                    client.images.remove(step, noprune=True)
        raise SandboxError(f"{what} failed: {exc.msg}\n" + "\n".join(build_reason(lines))) from None
    except docker.errors.APIError as exc:
        raise SandboxError(f"{what} failed: {exc.explanation or exc}") from None


def build_reason(lines: list[str], most: int = 10) -> list[str]:
    """The lines of a failed build's log that say why: without Java's stack frames (`at ...`, `... N more`),
    which would push the installer's own message (e.g. the version a plugin was built for) out of the last
    `most` lines."""
    plain = (re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in lines)  # the installer colours its stderr
    said = [line for line in plain if line and not line.startswith(("at ", "... "))]
    return said[-most:]


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
