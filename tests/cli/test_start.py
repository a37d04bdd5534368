"""What `migrator` imports before its first request (issue 17's small-N target: the start is most of what
migrator costs beyond a hand-written script). Each check runs a fresh interpreter, as a user's command does:
in this one, other tests have imported everything long ago."""

from __future__ import annotations

import json
import subprocess
import sys

# Imported later than the command line: rich, when a terminal's view is drawn (migrator.render.live). oss2 stays
# in the start-up: apply's preflight reads the bucket moments later, and imported there (beside the clusters'
# reads) it cost 20-35 ms against 16 ms at start (docs/performance.md).
NOT_AT_START = ("rich", "migrator.render.live")


def modules_after(code: str) -> list[str]:
    probe = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_command_line_loads_without_rich() -> None:
    loaded = modules_after("import migrator.cli")
    assert "migrator.cli.main" in loaded  # the whole command line was imported
    assert [name for name in loaded if name.split(".")[0] in NOT_AT_START or name in NOT_AT_START] == []


def test_the_plain_progress_needs_no_rich_and_the_terminal_view_loads_it() -> None:
    plain = modules_after("from migrator.render.progress import progress_for\nprogress_for(False).close()")
    assert "rich" not in plain
    terminal = modules_after(
        "import io\nfrom rich.console import Console\nfrom migrator.render.live import RichProgress\n"
        "RichProgress(Console(file=io.StringIO(), force_terminal=True)).close()"
    )
    assert "rich.live" in terminal
