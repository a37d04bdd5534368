"""The official REST API specification of a cluster's version, beside the test bed: the `rest-api-spec`
JSON files (one per API: its paths, methods, query parameters and body) that Elasticsearch and OpenSearch
publish on Maven Central as `<group>:rest-api-spec:<version>`, fetched once with Maven into the cache like
the distributions (migrator.sandbox.distributions) and unpacked beside them. migrator.sandbox.conformance
checks requests against it.

Maven Central does not publish the specification for every release: the versions it serves (read from
its `maven-metadata.xml` on 2026-11-30) are, for Elasticsearch, 5.1.1, 5.6.4, 6.5.4, 6.6.0, 7.6.1, 7.10.2
and 9.1.3 to 9.5.3 (none of 6.8, 7.11 to 8.x); for OpenSearch 2.19.0 and 3.x (none of 1.x). A cluster
without its own is checked against the nearest published one, and `SpecChoice.note` says so. The
Elasticsearch jars before 8.x hold the open-source APIs only: a path none of them has (the x-pack APIs,
`_ilm`, `_security`, ...) is checked against 9.5.3's, the first published with them (`RestSpec.fallback`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migrator.clients.es import Version
from migrator.sandbox.distributions import ELASTICSEARCH, OPENSEARCH, DistributionError, cache_dir

GROUPS = {ELASTICSEARCH: "org.elasticsearch", OPENSEARCH: "org.opensearch"}
API_FOLDER = "rest-api-spec/api/"

# (distribution, major) -> the published specification it is checked against, and whether it is the
# cluster's own line (the same major and minor for the lines the test bed runs).
PUBLISHED: dict[tuple[str, int], str] = {
    (ELASTICSEARCH, 5): "5.6.4",
    (ELASTICSEARCH, 6): "6.6.0",
    (ELASTICSEARCH, 7): "7.10.2",
    (ELASTICSEARCH, 8): "9.5.3",
    (ELASTICSEARCH, 9): "9.5.3",
    (OPENSEARCH, 1): "2.19.0",
    (OPENSEARCH, 2): "2.19.0",
}
XPACK = "9.5.3"  # the first Elasticsearch specification on Maven Central with the x-pack APIs


@dataclass(frozen=True)
class SpecChoice:
    """Which published specification a cluster version is checked against: `flavour`, `version`
    (`7.10.2`), and `note`, empty when it is the cluster's own minor line, else why it is another."""

    flavour: str
    version: str
    note: str

    @property
    def coordinates(self) -> str:
        return f"{GROUPS[self.flavour]}:rest-api-spec:{self.version}:jar"

    @property
    def name(self) -> str:
        return f"{self.flavour}-rest-api-spec-{self.version}"


def choose(cluster: Version) -> SpecChoice:
    """The specification for `cluster` (see PUBLISHED); DistributionError for a major without one."""
    version = PUBLISHED.get((cluster.distribution, cluster.major))
    if version is None:
        raise DistributionError(f"no rest-api-spec is known for {cluster}: add its line to rest_spec.PUBLISHED")
    published = Version.parse(version)
    note = ""
    if (published.major, published.minor) != (cluster.major, cluster.minor):
        note = (
            f"Maven Central publishes no rest-api-spec for {cluster.distribution} {cluster.major}.{cluster.minor}; "
            f"checked against {version}, the nearest published"
        )
    return SpecChoice(cluster.distribution, version, note)


@dataclass(frozen=True)
class Endpoint:
    """One path of one API: `api` (`snapshot.create`), `segments` (`("_snapshot", "{repository}",
    "{snapshot}")`), the methods it takes, its path parts and query parameters as the JSON gives them,
    and whether it takes a body."""

    api: str
    segments: tuple[str, ...]
    methods: frozenset[str]
    parts: dict[str, Any]
    params: dict[str, Any]
    body: bool

    @property
    def pattern(self) -> str:
        return "/" + "/".join(self.segments)


@dataclass(frozen=True)
class RestSpec:
    """A version's specification: every endpoint, and the parameters every API accepts (`_common.json`)."""

    choice: SpecChoice
    endpoints: tuple[Endpoint, ...]
    common: dict[str, Any]
    fallback: RestSpec | None = None  # for the paths it lacks: the x-pack APIs of an open-source-only jar


def _endpoints(api: str, definition: dict[str, Any]) -> list[Endpoint]:
    """The endpoints of one API file, in either layout: 7.x+ (`url.paths` of `{path, methods, parts}`,
    `params` beside `url`) or 5.x/6.x (`methods`, `url.paths` of strings, `url.parts`, `url.params`)."""
    url = definition.get("url", {})
    body = definition.get("body") is not None
    params = {**url.get("params", {}), **definition.get("params", {})}
    found = []
    for entry in url.get("paths", []):
        if isinstance(entry, str):
            path, methods, parts = entry, definition.get("methods", []), url.get("parts", {})
        else:
            path, methods, parts = entry["path"], entry.get("methods", []), entry.get("parts", {})
        segments = tuple(segment for segment in path.strip("/").split("/") if segment)
        found.append(Endpoint(api, segments, frozenset(methods), parts, params, body))
    return found


def parse(files: dict[str, Any], choice: SpecChoice) -> RestSpec:
    """A specification from its API files (file name without `.json` -> parsed JSON)."""
    common = files.get("_common", {}).get("params", {})
    endpoints: list[Endpoint] = []
    for name, document in sorted(files.items()):
        if name.startswith("_"):
            continue
        for api, definition in document.items():
            endpoints += _endpoints(api, definition)
    return RestSpec(choice, tuple(endpoints), common)


def fetch_jar(choice: SpecChoice) -> Path:
    """The specification's jar in the cache (`<cache>/rest-api-spec/`), fetched with Maven when missing.
    DistributionError naming the coordinates when Maven cannot fetch it."""
    folder = cache_dir() / "rest-api-spec"
    target = folder / f"rest-api-spec-{choice.version}.jar"
    cached = folder / f"{choice.name}.jar"
    if cached.is_file() and zipfile.is_zipfile(cached):
        return cached
    mvn = shutil.which("mvn")
    if mvn is None:
        raise DistributionError(f"Maven (mvn) is needed to fetch {choice.coordinates}; install Maven")
    folder.mkdir(parents=True, exist_ok=True)
    command = [mvn, "-q", "-B", "dependency:copy", f"-Dartifact={choice.coordinates}", f"-DoutputDirectory={folder}"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=folder)
    except subprocess.TimeoutExpired as exc:
        raise DistributionError(f"Maven did not fetch {choice.coordinates} within 10 minutes") from exc
    if result.returncode != 0 or not target.is_file():
        lines = [line for line in (result.stdout + result.stderr).splitlines() if "ERROR" in line]
        raise DistributionError(
            f"could not fetch {choice.coordinates} from Maven Central with mvn: "
            f"{lines[0].strip() if lines else 'no output'}"
        )
    target.replace(cached)  # the two flavours publish the same file name
    return cached


def load(cluster: Version, into: Path) -> RestSpec:
    """The specification for `cluster`, its API files unpacked once under `into/<name>/`; with 9.5.3's as
    its fallback for the x-pack APIs when it is an open-source-only Elasticsearch jar (before 8.x)."""
    choice = choose(cluster)
    spec = _load(choice, into)
    if choice.flavour == ELASTICSEARCH and Version.parse(choice.version).major < 8:
        note = f"x-pack APIs are not in the published {choice.version} specification; checked against {XPACK}"
        spec = RestSpec(choice, spec.endpoints, spec.common, _load(SpecChoice(ELASTICSEARCH, XPACK, note), into))
    return spec


def _load(choice: SpecChoice, into: Path) -> RestSpec:
    folder = into / choice.name
    marker = folder / ".unpacked"
    if not marker.is_file():
        with zipfile.ZipFile(fetch_jar(choice)) as jar:
            members = [m for m in jar.namelist() if m.startswith(API_FOLDER) and m.endswith(".json")]
            folder.mkdir(parents=True, exist_ok=True)
            for member in members:
                (folder / Path(member).name).write_bytes(jar.read(member))
        marker.write_text(choice.version)
    files = {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}
    return parse(files, choice)
