"""The docker engine's images (migrator/sandbox/images.py) on a real Docker engine: the official image's
path (taken when an image under the official tag is on the engine; no registry answers here, so the test
puts the local build under that tag), the oss plugin installed by the distribution's own installer, and
OpenSearch and Elasticsearch 6.8 nodes started from images built here.

These need a Docker engine (tests/sandbox/conftest.py's `engine`); without one they FAIL with the reason.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest

from migrator.clients.es import EsClient
from migrator.errors import SandboxError
from migrator.sandbox import images
from migrator.sandbox.distributions import KNOWN_VERSIONS, resolve_version, unpack
from migrator.sandbox.docker_engine import LABEL_DIR, LABEL_ROLE
from migrator.sandbox.repository_plugin import PLUGIN_NAME, plugin_dir
from tests.conftest import TESTS_ROOT
from tests.sandbox.test_docker_engine import migrator

pytestmark = [pytest.mark.cluster, pytest.mark.docker]


def test_an_official_image_on_the_engine_is_used_and_gets_the_oss_plugin(engine):
    dist = resolve_version("7.17")
    home = unpack(dist, TESTS_ROOT / "dist")
    official = images.official_tag(dist)
    assert official == f"docker.elastic.co/elasticsearch/elasticsearch:{dist.version}"
    stand_in = not images.exists(engine, official)
    if stand_in:  # no registry here: the local build, tagged as the official image, takes its place
        local = images.node_image(engine, dist, home, "local")
        engine.images.get(local.tag).tag(*official.rsplit(":", 1))
    plugged_tag = None
    try:
        image = images.node_image(engine, dist, home, "auto", plugin_dir(dist, home))
        plugged_tag = image.tag
        assert image.official and image.plugin
        assert image.tag.startswith(f"migrator-sandbox/elasticsearch-oss:official-{dist.version}-")
        built_on = [layer["Id"] for layer in engine.images.get(image.tag).history()]
        assert engine.images.get(official).id in built_on
        steps = " ".join(layer["CreatedBy"] for layer in engine.images.get(image.tag).history())
        assert "bin/elasticsearch-plugin install --batch file:///tmp/" in steps
        listed = engine.containers.run(
            image.tag, ["list"], entrypoint=[f"{image.home}/bin/elasticsearch-plugin"], remove=True, user="1000:0"
        )
        assert PLUGIN_NAME in listed.decode().split()
        assert images.node_image(engine, dist, home, "auto", plugin_dir(dist, home)) == image  # found by tag
    finally:
        if plugged_tag is not None and stand_in:
            engine.images.remove(plugged_tag)
        if stand_in:
            engine.images.remove(official)  # the tag only: the local build keeps its own


def test_opensearch_and_elasticsearch_6_8_run_from_images_built_here(engine):
    folder = Path("/var/tmp/migrator-tests") / f"docker-older-{uuid.uuid4().hex[:8]}"
    try:
        up = migrator(
            "sandbox", "up", "--engine", "docker", "--source-version", "6.8",
            "--destination-version", "opensearch-2.19", "--dir", str(folder),
        )  # fmt: skip
        document = json.loads(up.stdout)
        assert document["source"]["version"] == KNOWN_VERSIONS["6.8"]
        assert document["destination"]["version"] == KNOWN_VERSIONS["opensearch-2.19"]
        assert document["repository"]["type"] == "fs"  # the oss plugin has no build for these two
        containers = engine.containers.list(all=True, filters={"label": f"{LABEL_DIR}={folder}"})
        tags = {c.labels[LABEL_ROLE]: c.attrs["Config"]["Image"] for c in containers}
        assert tags["source"] == "migrator-sandbox/elasticsearch:6.8.23"
        assert tags["destination"] == "migrator-sandbox/opensearch:2.19.0"
        source = EsClient(document["source"]["url"], label="source")
        destination = EsClient(document["destination"]["url"], label="destination")
        try:
            assert source.get("/")["version"]["number"] == "6.8.23"
            root = destination.get("/")
            assert (root["version"].get("distribution"), root["version"]["number"]) == ("opensearch", "2.19.0")
            for client in (source, destination):
                assert client.health()["status"] in ("green", "yellow")
                body = {"type": "fs", "settings": {"location": document["repository"]["settings"]["location"]}}
                client.request("PUT", "/_snapshot/docker_images_check", body)  # path.repo reaches the bucket
                client.request("DELETE", "/_snapshot/docker_images_check")
        finally:
            source.close()
            destination.close()
    finally:
        migrator("sandbox", "down", "--dir", str(folder), check=False)
        shutil.rmtree(folder, ignore_errors=True)
    assert engine.containers.list(all=True, filters={"label": f"{LABEL_DIR}={folder}"}) == []


def test_a_plugin_the_installer_refuses_is_an_error_naming_why_and_leaves_nothing_behind(engine, tmp_path):
    dist = resolve_version("7.17")
    home = unpack(dist, TESTS_ROOT / "dist")
    broken = tmp_path / f"{dist.version}-refused{uuid.uuid4().hex[:6]}" / PLUGIN_NAME
    shutil.copytree(plugin_dir(dist, home), broken)
    descriptor = broken / "plugin-descriptor.properties"
    descriptor.write_text(
        descriptor.read_text().replace(f"elasticsearch.version={dist.version}", "elasticsearch.version=7.17.0")
    )
    base = images.node_image(engine, dist, home, "local")
    containers_before = {c.id for c in engine.containers.list(all=True)}
    dangling_before = {i.id for i in engine.images.list(filters={"dangling": True})}
    with pytest.raises(SandboxError, match=r"installing the oss plugin into .* failed(.|\n)*7\.17\.0"):
        images.with_plugin(engine, base, dist, broken)
    assert {c.id for c in engine.containers.list(all=True)} <= containers_before  # the failed step's too
    # nor the layers of the steps before it (the copied zip: a full copy of the image on vfs)
    assert {i.id for i in engine.images.list(filters={"dangling": True})} <= dangling_before
    assert not images.exists(engine, f"migrator-sandbox/elasticsearch-oss:local-{broken.parent.name}")
