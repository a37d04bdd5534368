"""scripts/bench_scale.py's fit of wall time and CPU against N (issue 17: "flat per-index cost, no quadratic
term in the fit"), and the tally's verdict on one run."""

from __future__ import annotations

import pytest

from tests.helpers import load_script


def test_the_fit_recovers_a_quadratic_term_from_three_sizes():
    a, b, c = load_script("bench_scale").quadratic_fit([(n, 3.0 + 0.125 * n + 4e-5 * n * n) for n in (50, 500, 2000)])
    assert (a, b, c) == (pytest.approx(3.0), pytest.approx(0.125), pytest.approx(4e-5))


def test_a_linear_cost_fits_with_no_quadratic_term():
    points = [(n, 2.0 + 0.015 * n) for n in (50, 200, 500, 2000)]
    a, b, c = load_script("bench_scale").quadratic_fit(points)
    assert (a, b) == (pytest.approx(2.0), pytest.approx(0.015))
    assert abs(c * 2000**2) < 1e-9


def test_the_printed_fit_names_the_cost_per_index_and_the_square_terms_share(capsys):
    load_script("bench_scale").print_fit("migrator's wall time", [(50, 9.4), (500, 75.5), (1750, 340.0)])
    printed = capsys.readouterr().out
    assert "146.9 ms/index from 50 to 500; 211.6 ms/index from 500 to 1,750" in printed
    assert "the N^2 term is 116.6 s = 34 % of the 340.0 s at N=1,750" in printed


def test_a_run_completed_only_when_it_exited_0_and_its_state_says_done():
    outcome = load_script("bench_scale").Outcome
    assert outcome("r", 0, "done", 1.0, 1.0, [], []).completed
    assert not outcome("r", 1, "failed", 1.0, 1.0, [], ["restore[x]: exists"]).completed
    assert not outcome("r", 0, "running", 1.0, 1.0, [], []).completed


def test_without_terminal_runs_the_table_says_not_run_instead_of_nan(capsys):
    script = load_script("bench_scale")
    runs = [
        script.Run(
            script.MIGRATOR, wall_s=3.6, cpu_s=0.7, rss_kb=65_000, commands={"plan": 0.6, "status": 0.2, "report": 0.2}
        ),
        script.Run(script.MINIMAL, wall_s=2.8, cpu_s=0.1),
    ]
    script.print_table([script.report(50, runs)])
    out = capsys.readouterr().out
    assert "nan" not in out
    assert "| not run | not run |" in out
    assert "1.29x" in out
