"""Choosing the sandbox's engine: the recorded one, bad `--engine`/`--image` values, no Docker engine."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from migrator.errors import SandboxError
from migrator.sandbox.docker_engine import DockerSandbox, connect
from migrator.sandbox.engines import engine_of, open_sandbox, remember
from migrator.sandbox.manager import Sandbox


def migrator(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "migrator", *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_a_folder_remembers_the_engine_that_started_it(tmp_path):
    assert engine_of(tmp_path) == "process"
    assert type(open_sandbox(tmp_path)) is Sandbox
    remember(tmp_path, "docker")
    assert engine_of(tmp_path) == "docker"
    assert isinstance(open_sandbox(tmp_path), DockerSandbox)


def test_an_unknown_engine_or_image_is_refused_naming_the_option(tmp_path):
    engine = migrator("sandbox", "up", "--engine", "podman", "--dir", str(tmp_path))
    assert engine.returncode == 2
    said = " ".join(engine.stderr.replace("│", " ").split())
    assert "'--engine': Value error, 'podman' is not one of 'process', 'docker'" in said
    image = migrator("sandbox", "up", "--engine", "docker", "--image", "latest", "--dir", str(tmp_path))
    assert image.returncode == 2
    said = " ".join(image.stderr.replace("│", " ").split())
    assert "'--image': Value error, 'latest' is not one of 'auto', 'official', 'local'" in said
    with pytest.raises(SandboxError, match="unknown engine 'podman'; use --engine process or --engine docker"):
        open_sandbox(tmp_path, "podman")
    with pytest.raises(SandboxError, match="unknown image 'latest'; use --image auto or --image official or"):
        open_sandbox(tmp_path, "docker", "latest")


def test_no_docker_engine_names_how_to_start_one(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/absent.sock")
    with pytest.raises(SandboxError, match="no Docker engine answers .*scripts/docker-engine.sh"):
        connect()
    result = migrator(
        "sandbox",
        "up",
        "--engine",
        "docker",
        "--dir",
        str(tmp_path / "sandbox"),
        env={**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/absent.sock"},
    )
    assert result.returncode == 1
    assert "no Docker engine answers" in result.stderr and "Traceback" not in result.stderr


def test_status_and_down_without_the_docker_engine_say_so(tmp_path):
    remember(tmp_path, "docker")
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/absent.sock"}
    for command in ("status", "down"):
        result = migrator("sandbox", command, "--dir", str(tmp_path), env=env)
        assert result.returncode == 1, command
        assert "no Docker engine answers" in result.stderr and "Traceback" not in result.stderr, command


def test_the_docker_engine_refuses_clusters_of_several_nodes_naming_the_process_engine(tmp_path):
    with pytest.raises(SandboxError, match="single-node clusters only; .* use the process engine"):
        DockerSandbox(tmp_path).up(destination_nodes=3)
