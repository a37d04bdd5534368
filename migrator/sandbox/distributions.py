"""Elasticsearch distributions for the test bed: which versions, which JDK, fetched with Maven.

The `integ-test-zip` packaging of Elasticsearch is published to Maven Central; we fetch it with
the ordinary client (`mvn dependency:copy`), keep the zip in a cache outside the git tree and
unpack it once per sandbox. It has no bundled JDK, so each version is paired with one found under
/usr/lib/jvm (or named by MIGRATOR_JAVA_HOME_<major>).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

GROUP = "org.elasticsearch.distribution.integ-test-zip"
ARTIFACT = "elasticsearch"

# The newest version of each line that Maven Central serves here (checked 2026-11-26). 9.5.4 is
# the newest 9.x that resolves; 9.5.5+ are refused by the registry.
KNOWN_VERSIONS: dict[str, str] = {
    "7.10": "7.10.2",
    "7.17": "7.17.29",
    "8": "8.19.21",
    "9": "9.5.4",
}
DEFAULT_SOURCE_VERSION = KNOWN_VERSIONS["7.17"]
DEFAULT_DESTINATION_VERSION = KNOWN_VERSIONS["8"]


class DistributionError(Exception):
    """A distribution cannot be used; the message names the version and the fix."""


@dataclass(frozen=True)
class Distribution:
    version: str

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def java_feature(self) -> int:
        """The JDK feature release this version runs on (9.x needs 21+, the others 17)."""
        return 25 if self.major >= 9 else 17

    @property
    def coordinates(self) -> str:
        return f"{GROUP}:{ARTIFACT}:{self.version}:zip"


def resolve_version(requested: str) -> Distribution:
    """`7.17`, `8`, `8.19.21` → a known distribution; anything else names the known ones."""
    known = set(KNOWN_VERSIONS.values())
    if requested in known:
        return Distribution(requested)
    if requested in KNOWN_VERSIONS:
        return Distribution(KNOWN_VERSIONS[requested])
    listing = ", ".join(f"{alias} (= {full})" if alias != full else full for alias, full in KNOWN_VERSIONS.items())
    raise DistributionError(f"unknown Elasticsearch version {requested!r}; known versions: {listing}")


def cache_dir() -> Path:
    return Path(os.environ.get("MIGRATOR_CACHE", Path.home() / ".cache" / "migrator"))


def find_java_home(feature: int) -> Path:
    """A JDK of the given feature release: MIGRATOR_JAVA_HOME_<n>, else /usr/lib/jvm/*<n>*."""
    override = os.environ.get(f"MIGRATOR_JAVA_HOME_{feature}")
    candidates = [Path(override)] if override else sorted(Path("/usr/lib/jvm").glob(f"*{feature}*"))
    for home in candidates:
        if (home / "bin" / "java").is_file():
            return home.resolve()
    raise DistributionError(
        f"no JDK {feature} found (looked in /usr/lib/jvm); install a JDK {feature} "
        f"or set MIGRATOR_JAVA_HOME_{feature} to its home"
    )


def fetch_zip(dist: Distribution) -> Path:
    """The distribution's zip in the cache, downloaded with Maven when missing."""
    target_dir = cache_dir() / "dist"
    target = target_dir / f"elasticsearch-{dist.version}.zip"
    if target.is_file() and zipfile.is_zipfile(target):
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise DistributionError(f"Maven (mvn) is needed to fetch Elasticsearch {dist.version}; install Maven")
    target_dir.mkdir(parents=True, exist_ok=True)
    command = [
        mvn,
        "-q",
        "-B",
        "dependency:copy",
        f"-Dartifact={dist.coordinates}",
        f"-DoutputDirectory={target_dir}",
        "-Dmdep.overWriteIfNewer=true",
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=1800, cwd=target_dir)
    except subprocess.TimeoutExpired as exc:
        raise DistributionError(f"Maven did not fetch {dist.coordinates} within 30 minutes") from exc
    if result.returncode != 0 or not target.is_file():
        lines = [line for line in (result.stdout + result.stderr).splitlines() if "ERROR" in line]
        reason = lines[0] if lines else "no output"
        raise DistributionError(
            f"could not fetch {dist.coordinates} from Maven Central with mvn: {reason.strip()}\n"
            "Check the network or the Maven mirror in ~/.m2/settings.xml, or place the zip at " + str(target)
        )
    return target


def unpack(dist: Distribution, into: Path) -> Path:
    """The unpacked distribution home under `into` (unpacked once)."""
    home = into / f"elasticsearch-{dist.version}"
    marker = home / ".unpacked"
    if marker.is_file():
        return home
    archive = fetch_zip(dist)
    if home.exists():
        shutil.rmtree(home)
    into.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            extracted = Path(zf.extract(info, into))
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                extracted.chmod(mode)
    marker.write_text(dist.version)
    return home
