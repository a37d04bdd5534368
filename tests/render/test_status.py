"""`migrator status` of a large plan: its totals and the acting steps, a fixed number of lines."""

from __future__ import annotations

import io

from rich.console import Console

from migrator.render.status import SHOWN, status_text, status_view


def report_of(count: int) -> dict:
    steps = [
        {
            "step": f"recovery[i-{index}]",
            "status": "acting" if index % 50 == 0 else "done",
            "attempts": 1,
            "seconds": None,
            "progress": {"completed": 5, "total": 10, "unit": "bytes", "text": ""},
        }
        for index in range(count)
    ]
    return {
        "plan": "p",
        "status": "running",
        "snapshot": "s",
        "runs": 1,
        "lock": None,
        "live": False,
        "steps": steps,
        "last_events": [],
    }


def test_status_of_a_large_plan_shows_totals_and_the_acting_steps_only():
    text = status_text(report_of(2000)).splitlines()
    assert text[1] == "steps: 2000, 1960 done, 40 acting"
    assert len(text) == 2 + SHOWN + 1 and text[-1] == f"  ... and {40 - SHOWN} more acting or failed"
    assert text[2].startswith("  acting    recovery[i-0]")
    console = Console(file=io.StringIO(), width=160, record=True)
    console.print(status_view(report_of(2000)))
    shown = console.export_text()
    assert shown.count("recovery[i-") == SHOWN and "steps: 2000, 1960 done, 40 acting" in shown
    assert len(status_text(report_of(10)).splitlines()) == 2 + 10  # a small plan: every step


def test_status_of_a_drifted_run_says_its_drift_in_a_few_lines_and_keeps_every_drift_in_the_json():
    report = {
        **report_of(2000),
        "status": "drifted",
        "drift": [
            {"step": f"restore[i-{n}]", "what": f"i-{n} does not exist", "redo": f"restore[i-{n}]"} for n in range(300)
        ],
        "redo": "restore",
    }
    text = status_text(report, "plan.yaml").splitlines()
    drift = text[text.index("drift: 300 done step(s) are no longer as the run left them:") :]
    assert (
        drift[1]
        == "  restore: 300 (restore[i-0], restore[i-1], restore[i-2] and 297 more); restore[i-0]: i-0 does not exist"
    )
    assert drift[2] == "  to redo them: migrator resume plan.yaml --redo 'restore'"
    assert len(drift) == 4
