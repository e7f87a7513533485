"""`ganforge theory`: a table of checks with PASS/FAIL and the figure's path."""

from __future__ import annotations

import pytest

from ganforge.cli import main
from ganforge.theory import RESULTS, get


def test_every_result_has_a_run_function():
    assert set(RESULTS) == {"optimal-discriminator", "value-at-optimum", "saturation", "wasserstein",
                            "mode-collapse", "crypto"}
    assert all(callable(get(name).run) for name in RESULTS)


def test_cli_theory_prints_checks_and_the_figure(tmp_path, capsys):
    assert main(["theory", "saturation", "--out", str(tmp_path), "--quick"]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "FAIL" not in out
    assert str(tmp_path / "saturation.png") in out and (tmp_path / "saturation.png").is_file()


def test_cli_theory_reported_numbers_do_not_fail(tmp_path, capsys, monkeypatch):
    """A number marked as reported (passed None) is printed but does not set exit status 1."""
    from ganforge.theory import _common, saturation

    real_run = saturation.run

    def run_with_a_reported_number(out_dir, seed=0, quick=False):
        res = real_run(out_dir, seed=seed, quick=quick)
        res["checks"].append(_common.reported("a known limit", 0.3, "see the docs"))
        return res

    monkeypatch.setattr(saturation, "run", run_with_a_reported_number)
    assert main(["theory", "saturation", "--out", str(tmp_path), "--quick"]) == 0
    out = capsys.readouterr().out
    assert "a known limit" in out and "reported" in out and "FAIL" not in out


def test_cli_theory_unknown_result_is_a_usage_error(capsys):
    assert main(["theory", "everything"]) == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_theory_all(tmp_path):
    main(["theory", "all", "--out", str(tmp_path), "--quick"])
    assert len(list(tmp_path.glob("*.png"))) == 7
