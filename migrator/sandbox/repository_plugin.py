"""The test bed's `oss` repository plugin: built on first use, cached beside the distributions.

Place in the flow: `migrator sandbox up` and the test suite's `testbed` fixture start Elasticsearch nodes
(nodes.py); each node gets this plugin in its plugins folder, so the nodes register `type: oss`
repositories that store blobs in the sandbox's OSS server (the oss_server package) through the Aliyun OSS Java SDK.

The Java sources are package data under `oss_plugin/`: `common/` (the OSS side and the settings, no
Elasticsearch type) and one folder per generation of Elasticsearch's repository interfaces. They are
compiled with the JDK the node runs on (`javac --release`), against the distribution's own `lib/*.jar`
and the SDK's jars, which Maven fetches from Maven Central like the distributions. The result, a plugin
folder (`plugin-descriptor.properties`, the plugin jar, the SDK jars and the policy the node's security
model asks for), is cached under `<cache>/oss-plugin/<es version>-<source hash>/`, so a changed source
is rebuilt and an unchanged one never is. It is test-bed code: nothing in migrator's own run imports it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
import zipfile
from importlib import resources
from pathlib import Path

from migrator.sandbox.distributions import Distribution, DistributionError, cache_dir, find_java_home

PLUGIN_NAME = "elasticsearch-repository-oss"
PLUGIN_CLASS = "migrator.oss.OssRepositoryPlugin"
# The SDK and exactly the jars its key-pair and STS-token paths load (shared/notes/oss-plugin.md);
# aliyun-java-sdk-core, -ram, -kms and the tracing jars stay out.
SDK_JARS = (
    "com.aliyun.oss:aliyun-sdk-oss:3.18.5",
    "org.apache.httpcomponents:httpclient:4.5.13",
    "org.apache.httpcomponents:httpcore:4.4.13",
    "commons-logging:commons-logging:1.2",
    "commons-codec:commons-codec:1.11",
    "org.jdom:jdom2:2.0.6.1",
    "org.codehaus.jettison:jettison:1.5.4",
)
_POLICY = """grant {
  // the OSS endpoint; the SDK's HTTP client resolves and connects
  permission java.net.SocketPermission "*", "connect,resolve";
  // the SDK and httpclient read their configuration from system properties
  permission java.util.PropertyPermission "*", "read";
  permission java.lang.RuntimePermission "getClassLoader";
  permission java.lang.RuntimePermission "accessDeclaredMembers";
  permission java.lang.reflect.ReflectPermission "suppressAccessChecks";
};
"""
# 8.x/9.x entitlements: the network only. The SDK's idle-connection reaper thread (which would need
# manage_threads) is turned off in OssStore.
_ENTITLEMENTS = """ALL-UNNAMED:
  - outbound_network
"""


COVERED = "Elasticsearch 5.6, 6.8 and 7.10 or later"  # the versions `generation` serves, as messages name them


def generation(dist: Distribution) -> tuple[str, int]:
    """(source folder, javac --release) for a distribution; DistributionError for one no folder serves."""
    major, minor = (int(part) for part in dist.version.split(".")[:2])
    if major == 5 and minor == 6:
        return "es5_6", 11  # as 6.8: java.version is a minimum, and 5.6 runs on 17 here
    if major == 6 and minor == 8:
        return "es6_8", 11  # 6.8 reads a plugin's java.version as a minimum; its nodes run on 17 here
    if major == 7 and minor <= 10:
        return "es7_10", 11
    if major == 7:
        return "es7_17", 11
    if major == 8:
        return "es8_19", 17
    if major == 9:
        return "es9_5", 21
    raise DistributionError(f"the test bed's oss repository plugin has no sources for Elasticsearch {dist.version}")


def has_plugin(dist: Distribution) -> bool:
    """Whether the test bed's oss plugin has sources for this distribution (COVERED)."""
    if dist.opensearch:
        return False
    try:
        generation(dist)
    except DistributionError:
        return False
    return True


def _sources(folder: str) -> list[tuple[str, bytes]]:
    """(relative name, content) of the common sources and one generation's, sorted."""
    root = resources.files("migrator.sandbox") / "oss_plugin"
    found = []
    for sub in ("common", folder):
        directory = root / sub
        if not directory.is_dir():
            raise DistributionError(f"the oss repository plugin's sources {sub}/ are missing from {root}")
        for item in directory.iterdir():
            if item.name.endswith(".java"):
                found.append((f"{sub}/{item.name}", item.read_bytes()))
    return sorted(found)


def plugin_dir(dist: Distribution, es_home: Path) -> Path:
    """The built plugin folder for this distribution (built now when the cache has none)."""
    folder, release = generation(dist)
    sources = _sources(folder)
    digest = hashlib.sha256()
    for name, content in sources:
        digest.update(name.encode() + b"\0" + content + b"\0")
    digest.update("\n".join([*SDK_JARS, _POLICY, _ENTITLEMENTS]).encode())  # what goes into the folder
    target = cache_dir() / "oss-plugin" / f"{dist.version}-{digest.hexdigest()[:12]}" / PLUGIN_NAME
    if (target / "plugin-descriptor.properties").is_file():
        return target
    target.parent.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent.parent) as work:
        staged = Path(work) / PLUGIN_NAME
        staged.mkdir()
        _build(dist, es_home, sources, release, Path(work), staged)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(staged, target)
        except OSError:
            if not (target / "plugin-descriptor.properties").is_file():  # not a concurrent builder's result
                raise
    return target


def _build(
    dist: Distribution, es_home: Path, sources: list[tuple[str, bytes]], release: int, work: Path, staged: Path
) -> None:
    started = time.monotonic()
    for jar in fetch_sdk():
        shutil.copy2(jar, staged / jar.name)
    source_dir, classes = work / "src", work / "classes"
    for name, content in sources:
        (source_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (source_dir / name).write_bytes(content)
    classes.mkdir()
    javac = find_java_home(dist.java_feature) / "bin" / "javac"
    if not javac.is_file():
        raise DistributionError(f"{javac} is missing: the oss repository plugin is compiled with a full JDK")
    jars = [*sorted((es_home / "lib").glob("*.jar")), *sorted(staged.glob("*.jar"))]
    classpath = os.pathsep.join(str(jar) for jar in jars)
    command = [
        str(javac), "--release", str(release), "-nowarn", "-Xlint:none", "-encoding", "UTF-8",
        "-cp", classpath, "-d", str(classes), *(str(source_dir / name) for name, _ in sources),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise DistributionError(
            f"compiling the oss repository plugin for Elasticsearch {dist.version} failed:\n{result.stderr[-3000:]}"
        )
    with zipfile.ZipFile(staged / f"{PLUGIN_NAME}-{dist.version}.jar", "w", zipfile.ZIP_DEFLATED) as plugin_jar:
        plugin_jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n\n")
        for path in sorted(classes.rglob("*.class")):
            plugin_jar.write(path, path.relative_to(classes).as_posix())
    descriptor = {
        "description": "The migrator test bed's oss snapshot repository (Aliyun OSS Java SDK)",
        "version": "1.0.0",
        "name": PLUGIN_NAME,
        "classname": PLUGIN_CLASS,
        "java.version": str(release),
        "elasticsearch.version": dist.version,
        "extended.plugins": "",
        "has.native.controller": "false",
    }
    (staged / "plugin-descriptor.properties").write_text("".join(f"{k}={v}\n" for k, v in descriptor.items()))
    if dist.major < 8:
        (staged / "plugin-security.policy").write_text(_POLICY)
    else:
        (staged / "entitlement-policy.yaml").write_text(_ENTITLEMENTS)
    (staged / "build-seconds").write_text(f"{time.monotonic() - started:.1f}\n")


def fetch_sdk() -> list[Path]:
    """The SDK's jars in the cache (`<cache>/oss-plugin/sdk`), fetched with Maven when missing."""
    target = cache_dir() / "oss-plugin" / "sdk"
    names = [f"{artifact}-{version}.jar" for _, artifact, version in (c.split(":") for c in SDK_JARS)]
    if all((target / name).is_file() for name in names):
        return [target / name for name in names]
    mvn = shutil.which("mvn")
    if mvn is None:
        raise DistributionError("Maven (mvn) is needed to fetch the Aliyun OSS Java SDK; install Maven")
    target.mkdir(parents=True, exist_ok=True)
    dependencies = "".join(
        f"<dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId><version>{version}</version>"
        "</dependency>"
        for group, artifact, version in (c.split(":") for c in SDK_JARS)
    )
    (target / "pom.xml").write_text(
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        "<groupId>migrator.sandbox</groupId><artifactId>oss-plugin-sdk</artifactId><version>1</version>"
        f"<dependencies>{dependencies}</dependencies></project>"
    )  # one Maven run for the listed jars only (excludeTransitive), not one per jar
    command = [mvn, "-q", "-B", "dependency:copy-dependencies", "-DexcludeTransitive=true"]
    command.append(f"-DoutputDirectory={target}")
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=target)
    except subprocess.TimeoutExpired as exc:
        raise DistributionError("Maven did not fetch the Aliyun OSS Java SDK within 15 minutes") from exc
    if result.returncode != 0 or not all((target / name).is_file() for name in names):
        lines = [line for line in (result.stdout + result.stderr).splitlines() if "ERROR" in line]
        raise DistributionError(
            f"could not fetch {', '.join(SDK_JARS)} from Maven Central with mvn: "
            f"{(lines or ['no output'])[0].strip()}\nCheck the network or the Maven mirror in ~/.m2/settings.xml"
        )
    return [target / name for name in names]


def install(plugin: Path, es_home: Path) -> None:
    """Put the plugin folder into `<es_home>/plugins/` (replacing an older copy), readable by any user."""
    destination = es_home / "plugins" / PLUGIN_NAME
    if destination.exists():
        shutil.rmtree(destination)
    shutil.copytree(plugin, destination)
    for path in [destination, *destination.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
