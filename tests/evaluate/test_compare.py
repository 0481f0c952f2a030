"""The thesis-shaped comparison tables read the right rows of several evaluation runs."""

from __future__ import annotations

import json
from pathlib import Path

from noisead.evaluate.compare import Source, collect_cells, format_comparison


def _write_run(root: Path, dataset: str, rows: list[dict]) -> None:
    (root / dataset).mkdir(parents=True)
    (root / dataset / "results.json").write_text(json.dumps({"summary": rows}))


def _row(condition: str, method: str, auc: float, mcc: float, det: float | None = None):
    return {"condition": condition, "method": method, "auc": auc, "mcc_best": mcc,
            "detection_auc": det}


def test_cells_and_tables_follow_the_runs(tmp_path: Path) -> None:
    run_a, run_b = tmp_path / "a", tmp_path / "b"
    _write_run(run_a, "splice-jpeg", [
        _row("clean", "noisead-reference", 0.91, 0.71, 0.81),
        _row("clean", "ela", 0.51, 0.11, 0.52),
        _row("jpeg90", "noisead-reference", 0.88, 0.66),
        _row("resize0.9", "noisead-reference", 0.77, 0.55)])
    _write_run(run_b, "generative-png", [_row("clean", "noisead-reference", 0.61, 0.21, 0.4)])
    sets = ("splice-png", "splice-jpeg", "generative-png", "generative-jpeg", "cvip-copymove")
    rows = {label: collect_cells(Source(label, run, method), sets)
            for label, run, method in (("Model A", run_a, "noisead-reference"),
                                       ("ELA", run_a, "ela"),
                                       ("Model B", run_b, "noisead-reference"))}
    assert set(rows["Model A"]) == {("splice-jpeg", "clean"), ("splice-jpeg", "jpeg90"),
                                    ("splice-jpeg", "resize0.9")}
    assert set(rows["ELA"]) == {("splice-jpeg", "clean")}

    text = format_comparison(rows, {"paper": {("dso-1", "clean"): "0.9 / 0.7",
                                              ("thesis", "jpeg90"): "0.64"}})
    lines = text.splitlines()
    table1 = lines[lines.index(next(x for x in lines if x.startswith("#### Table 1"))):]
    model_a = next(x for x in table1 if x.startswith("| Model A"))
    # columns: PNG-sourced (not evaluated: empty), JPEG-sourced, copy-move, det. AUCs, DSO-1
    assert model_a.split(" | ")[1:4] == ["", "0.910 / 0.710", ""]
    assert "0.810" in model_a
    assert any(x.startswith("| paper") and "0.9 / 0.7" in x for x in table1)
    model_b = next(x for x in lines if x.startswith("| Model B") and "0.610 / 0.210" in x)
    assert "0.400" in model_b
    # robustness tables: only methods swept on the set get a row; published row last
    table3 = text.split("#### Table 3")[1].split("#### Table 4")[0]
    assert "| splice-jpeg | Model A | 0.910 / 0.710 |  |  | 0.880 / 0.660 |" in table3
    assert "ELA" not in table3 and "Model B" not in table3
    assert table3.strip().splitlines()[-1] == "| thesis' data | paper |  |  |  | 0.64 |"
    table4 = text.split("#### Table 4")[1]
    assert "| splice-jpeg | Model A | 0.910 / 0.710 |  | 0.770 / 0.550 |  |  |" in table4


def test_missing_runs_leave_empty_tables(tmp_path: Path) -> None:
    cells = collect_cells(Source("nothing", tmp_path / "absent", "noisead-reference"),
                          ("splice-png",))
    assert cells == {}
    text = format_comparison({"nothing": cells})
    assert "| nothing |  |  |  |  |  |" in text
