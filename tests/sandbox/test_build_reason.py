"""A failed image build says why (images.build_reason), without a Docker engine."""

from __future__ import annotations

from migrator.sandbox.images import build_reason


def test_the_installers_message_survives_a_long_coloured_stack_trace():
    log = [
        "Step 3/3 : RUN elasticsearch-plugin install --batch file:///tmp/plugin.zip",
        "\x1b[91mERROR: Plugin [repository-oss] was built for Elasticsearch version 7.17.0 but 7.17.29 is running",
        *(f"\x1b[91m\tat org.elasticsearch.plugins.cli.Frame{n}(Frame.java:{n})".strip() for n in range(40)),
        "\x1b[91m... 12 more",
    ]
    # Before: the last 10 lines, all stack frames; the version the plugin was built for was cut off.
    assert build_reason(log) == [log[0], log[1].removeprefix("\x1b[91m")]
