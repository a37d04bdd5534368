"""Test bed plumbing: ports in use, JDK selection, Maven failures give messages, not tracebacks."""

from __future__ import annotations

import socket

import pytest

from migrator.sandbox.distributions import Distribution, DistributionError, fetch_zip, find_java_home, resolve_version
from migrator.sandbox.nodes import jvm_options
from migrator.sandbox.processes import pick_port


def test_a_port_in_use_gets_the_next_free_one():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken: set[int] = set()
        chosen = pick_port(port, taken)
        assert chosen != port and chosen in taken
        assert pick_port(port, taken) not in (port, chosen)


def test_versions_pick_their_jdk():
    assert resolve_version("9").java_feature == 25
    assert resolve_version("7.10").java_feature == 17
    assert (find_java_home(17) / "bin" / "java").is_file()


def test_a_missing_jdk_names_the_one_needed(monkeypatch, tmp_path):
    monkeypatch.setenv("MIGRATOR_JAVA_HOME_25", str(tmp_path / "no-jdk"))
    with pytest.raises(DistributionError, match="no JDK 25 found.*MIGRATOR_JAVA_HOME_25"):
        find_java_home(25)


def test_an_artifact_maven_cannot_fetch_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("MIGRATOR_CACHE", str(tmp_path))
    with pytest.raises(DistributionError, match="could not fetch .*elasticsearch:7.0.999:zip"):
        fetch_zip(Distribution("7.0.999"))


def test_without_maven_the_message_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("MIGRATOR_CACHE", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DistributionError, match=r"Maven \(mvn\) is needed"):
        fetch_zip(Distribution("7.17.29"))


def test_older_and_opensearch_versions_resolve_to_their_flavour_and_coordinates():
    assert (
        resolve_version("6.8").coordinates == "org.elasticsearch.distribution.integ-test-zip:elasticsearch:6.8.23:zip"
    )
    opensearch = resolve_version("opensearch-2.19")
    assert opensearch.coordinates == "org.opensearch.distribution.integ-test-zip:opensearch:2.19.0:zip"
    assert (opensearch.name, opensearch.label, opensearch.java_feature) == (
        "opensearch-2.19.0",
        "opensearch-2.19.0",
        17,
    )
    assert resolve_version("opensearch-1.3.20").major == 1 and resolve_version("5.6").java_feature == 17


def test_jvm_options_lose_the_cms_flags_heap_and_pre_touch_and_get_g1(tmp_path):
    five = "-Xms2g\n-Xmx2g\n-XX:+UseConcMarkSweepGC\n-XX:CMSInitiatingOccupancyFraction=75\n"
    five += "-XX:+UseCMSInitiatingOccupancyOnly\n-XX:+AlwaysPreTouch\n-Xss1m\n"
    six = "8-13:-XX:+UseConcMarkSweepGC\n8-13:-XX:CMSInitiatingOccupancyFraction=75\n14-:-XX:+UseG1GC\n"
    assert jvm_options(five, tmp_path).splitlines() == ["-Xss1m", "-XX:+UseG1GC"]
    assert jvm_options(six, tmp_path).splitlines() == ["14-:-XX:+UseG1GC"]
