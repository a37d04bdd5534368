"""Elasticsearch distributions for the test bed: which versions, which JDK, fetched with Maven.

The `integ-test-zip` packaging of Elasticsearch (and of OpenSearch, the "opensearch" flavour) is
published to Maven Central; we fetch it with the ordinary client (`mvn dependency:copy`), keep the
zip in a cache outside the git tree and unpack it once per sandbox. It has no bundled JDK, so each
version is paired with one found under /usr/lib/jvm (or named by MIGRATOR_JAVA_HOME_<major>).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

from migrator.errors import SandboxRefused

ELASTICSEARCH = "elasticsearch"
OPENSEARCH = "opensearch"
# Maven group of each flavour's integ-test-zip; the artifact is the flavour's name.
GROUPS = {
    ELASTICSEARCH: "org.elasticsearch.distribution.integ-test-zip",
    OPENSEARCH: "org.opensearch.distribution.integ-test-zip",
}

# The newest version of each line that Maven Central serves here (checked 2026-11-26). 9.5.4 is
# the newest 9.x that resolves; 9.5.5+ are refused by the registry.
# 5.6.16, 6.8.23 and OpenSearch 1.3.20 / 2.19.0 resolve too (checked 2026-11-30); OpenSearch versions
# are written `opensearch-<version>`.
KNOWN_VERSIONS: dict[str, str] = {
    "5.6": "5.6.16",
    "6.8": "6.8.23",
    "7.10": "7.10.2",
    "7.17": "7.17.29",
    "8": "8.19.21",
    "9": "9.5.4",
    "opensearch-1.3": "opensearch-1.3.20",
    "opensearch-2.19": "opensearch-2.19.0",
}
DEFAULT_SOURCE_VERSION = KNOWN_VERSIONS["7.17"]
DEFAULT_DESTINATION_VERSION = KNOWN_VERSIONS["8"]


class DistributionError(SandboxRefused):
    """A distribution cannot be used; the message names the version and the fix (exit 2)."""


@dataclass(frozen=True)
class Distribution:
    """One release of one flavour: `Distribution("6.8.23")`, `Distribution("2.19.0", OPENSEARCH)`."""

    version: str  # the number alone, "2.19.0"
    flavour: str = ELASTICSEARCH

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def name(self) -> str:
        """`elasticsearch-6.8.23`, `opensearch-2.19.0`: the zip's and the unpacked folder's name."""
        return f"{self.flavour}-{self.version}"

    @property
    def label(self) -> str:
        """How users name it (`--source-version`, sandbox.json): `6.8.23`, `opensearch-2.19.0`."""
        return self.version if self.flavour == ELASTICSEARCH else self.name

    @property
    def opensearch(self) -> bool:
        return self.flavour == OPENSEARCH

    @property
    def java_feature(self) -> int:
        """The JDK feature release this version runs on: Elasticsearch 9.x needs 21+ (so 25 here); the
        others run on 17 (5.6 and 6.8 once jvm.options drops the CMS flags, see nodes.jvm_options)."""
        return 25 if self.major >= 9 and not self.opensearch else 17

    @property
    def coordinates(self) -> str:
        return f"{GROUPS[self.flavour]}:{self.flavour}:{self.version}:zip"


def parse_label(label: str) -> Distribution:
    """`6.8.23` or `opensearch-2.19.0` -> its distribution."""
    prefix = f"{OPENSEARCH}-"
    if label.startswith(prefix):
        return Distribution(label.removeprefix(prefix), OPENSEARCH)
    return Distribution(label)


def resolve_version(requested: str) -> Distribution:
    """`7.17`, `8`, `8.19.21`, `opensearch-2.19` → a known distribution; anything else names the known ones."""
    known = set(KNOWN_VERSIONS.values())
    if requested in known:
        return parse_label(requested)
    if requested in KNOWN_VERSIONS:
        return parse_label(KNOWN_VERSIONS[requested])
    listing = ", ".join(f"{alias} (= {full})" if alias != full else full for alias, full in KNOWN_VERSIONS.items())
    raise DistributionError(f"unknown version {requested!r}; known versions: {listing}")


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
    target = target_dir / f"{dist.name}.zip"
    if target.is_file() and zipfile.is_zipfile(target):
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise DistributionError(f"Maven (mvn) is needed to fetch {dist.name}; install Maven")
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
    home = into / dist.name
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
