"""Result files a researcher can use: the shipped JSON schemas describe what a batch writes
(every JSON and summary row here is validated with ``jsonschema``), the ``.npz`` holds the
float maps, the 16-bit PNG the calibrated heatmap, and ``--outputs`` chooses the files."""

from __future__ import annotations

import json
import re

import jsonschema
import numpy as np
import pytest
from batch_support import CheapAnalysis, cheap_analysis, read_csv, run, sha256, write_image
from PIL import Image

from noisead.anomaly.evidence import EVIDENCE
from noisead.batch.outputs import (
    DEFAULT_OUTPUTS,
    NPZ_KEYS,
    OUTPUT_CHOICES,
    OutputOptions,
    parse_output_kinds,
    write_outputs,
)
from noisead.batch.records import PROVENANCE_KEYS, json_header, model_provenance
from noisead.batch.source import sha256_of
from noisead.infer import WEIGHTS_DIR
from noisead.io import load_image
from noisead.schemas import (
    RESULT_SCHEMA_VERSION,
    SCHEMA_FILES,
    SUMMARY_SCHEMA_VERSION,
    load_schema,
    schema_path,
)


def validate(document: dict, name: str) -> None:
    jsonschema.Draft202012Validator(load_schema(name)).validate(document)


def validate_folder(out) -> dict[str, dict]:
    """Validate every result JSON and summary row of a batch folder; the JSONs by stem."""
    results = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
    for document in results.values():
        validate(document, "result")
    for row in read_csv(out / "summary.csv"):
        validate(row, "summary-row")
    return results


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES))
def test_shipped_schemas_are_valid_and_versioned(name):
    schema = load_schema(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    version = SUMMARY_SCHEMA_VERSION if name == "summary-row" else RESULT_SCHEMA_VERSION
    assert schema["$id"] == f"urn:noisead:schema:{name}:{version}"
    assert schema_path(name).is_file() and schema_path(name).parent.name == "schemas"


def test_every_file_of_a_batch_follows_the_schema(tmp_path):
    photo = write_image(tmp_path / "in" / "photo.png", seed=1)
    write_image(tmp_path / "in" / "tiny.png", seed=2, size=8)  # judged without analysis
    provenance = model_provenance(WEIGHTS_DIR / "default.safetensors", "default",
                                  "reference", 0.99)
    out = tmp_path / "out"
    run([tmp_path / "in"], out, outputs=OutputOptions(DEFAULT_OUTPUTS, provenance))
    results = validate_folder(out)
    assert set(results) == {"photo", "tiny"}
    result = results["photo"]
    assert result["schema"] == "noisead.result"
    assert result["schema_version"] == RESULT_SCHEMA_VERSION
    assert result["input"] == {"path": str(photo), "size": photo.stat().st_size,
                               "mtime_ns": photo.stat().st_mtime_ns, "sha256": sha256(photo)}
    assert result["model_sha256"] == sha256(WEIGHTS_DIR / "default.safetensors")
    assert result["model_sidecar_sha256"] == sha256(WEIGHTS_DIR / "default.json")
    assert result["mode"] == "reference" and result["threshold"] == 0.9  # the analysis' own
    assert set(result["timings"]) == {"analysis_s", "write_s"}
    assert set(result["files"]) == DEFAULT_OUTPUTS
    assert {k: results["tiny"][k] for k in PROVENANCE_KEYS} == {
        **provenance, "model": "cheap"}  # the run's model name, as the analysis gives it
    assert results["tiny"]["files"] == {"json": "tiny.json"}


def test_the_schema_rejects_what_it_does_not_describe(tmp_path):
    run([write_image(tmp_path / "a.png", seed=1)], tmp_path / "out")
    result = json.loads((tmp_path / "out" / "a.json").read_text())
    validate(result, "result")
    for broken in ({**result, "input": {**result["input"], "sha256": "xyz"}},
                   {**result, "undocumented": 1},
                   {k: v for k, v in result.items() if k != "model_sha256"},
                   {**result, "schema_version": "2.0"}):
        with pytest.raises(jsonschema.ValidationError):
            validate(broken, "result")
    (row,) = read_csv(tmp_path / "out" / "summary.csv")
    with pytest.raises(jsonschema.ValidationError):
        validate({**row, "score": "0.5"}, "summary-row")


def test_npz_and_16_bit_heatmap_hold_the_maps(tmp_path):
    image = write_image(tmp_path / "a.png", seed=3, size=40)
    loaded = load_image(image)
    analysis = cheap_analysis(loaded.pixels)
    analysis.image_statistic = 1.25
    kinds = parse_output_kinds("heatmap16,npz")
    header = json_header(image, sha256_of(image), "a")
    paths = write_outputs(analysis, loaded.pixels, tmp_path / "out", "a", header,
                          OutputOptions(kinds))
    assert set(paths) == {"heatmap16", "npz", "json"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "a.heatmap16.png", "a.json", "a.npz"]
    with np.load(paths["npz"]) as saved:
        assert set(saved.files) == set(NPZ_KEYS)  # no evidence map in the cheap analysis
        np.testing.assert_array_equal(saved["heatmap"], analysis.heatmap)
        np.testing.assert_array_equal(saved["raw"], analysis.raw)
        np.testing.assert_array_equal(saved["fingerprint"], analysis.fingerprint)
        np.testing.assert_array_equal(saved["mask"], analysis.mask)
        assert saved["heatmap"].dtype == np.float32 and saved["mask"].dtype == bool
        assert float(saved["score"]) == analysis.score
        assert float(saved["image_statistic"]) == 1.25
    png = Image.open(paths["heatmap16"])
    grey = np.asarray(png)
    assert png.mode.startswith("I;16") and grey.shape == analysis.heatmap.shape
    np.testing.assert_array_equal(grey, np.round(analysis.heatmap * 65535).astype(np.uint16))
    analysis.evidence = (analysis.heatmap > 0.5).astype(np.uint8)  # codes into EVIDENCE
    with np.load(write_outputs(analysis, loaded.pixels, tmp_path / "out", "a", header,
                               OutputOptions(kinds))["npz"]) as saved:
        np.testing.assert_array_equal(saved["evidence"], analysis.evidence)
        assert list(saved["evidence_names"]) == list(EVIDENCE)
    result = json.loads(paths["json"].read_text())
    validate(result, "result")
    assert result["files"] == {"heatmap16": "a.heatmap16.png", "npz": "a.npz",
                               "json": "a.json"}
    assert result["thumbnails"] == {} and result["image_statistic"] == 1.25


def test_output_kinds_are_parsed_with_the_json_always():
    assert parse_output_kinds("npz") == {"npz", "json"}
    assert parse_output_kinds(" heatmap , mask ") == {"heatmap", "mask", "json"}
    assert parse_output_kinds("all") == set(OUTPUT_CHOICES)
    assert parse_output_kinds(["npz", "json"]) == {"npz", "json"}
    with pytest.raises(ValueError, match="unknown output kind.*bogus"):
        parse_output_kinds("heatmap,bogus")


def test_a_rerun_asking_for_more_files_analyses_again_only_then(tmp_path):
    image = write_image(tmp_path / "a.png", seed=1)
    out = tmp_path / "out"
    analysis = CheapAnalysis()
    run([image], out, analysis)
    assert not (out / "a.npz").exists()
    more = OutputOptions(parse_output_kinds("npz,overlay"))
    report = run([image], out, analysis, outputs=more)
    assert len(report.done) == 1 and analysis.calls == 2
    assert sorted(p.name for p in out.glob("a.*")) == ["a.json", "a.npz", "a.overlay.png"]
    report = run([image], out, analysis, outputs=more)
    assert len(report.skipped) == 1 and analysis.calls == 2
    validate_folder(out)


def test_an_unjudged_result_is_never_redone_for_files_it_cannot_have(tmp_path):
    tiny = write_image(tmp_path / "tiny.png", seed=2, size=8)
    analysis = CheapAnalysis()
    everything = OutputOptions(parse_output_kinds("all"))
    run([tiny], tmp_path / "out", analysis, outputs=everything)
    report = run([tiny], tmp_path / "out", analysis, outputs=everything)
    assert len(report.skipped) == 1


def test_summary_columns_are_the_schema_columns():
    from noisead.batch.summary import SUMMARY_COLUMNS

    schema = load_schema("summary-row")
    assert list(schema["required"]) == list(SUMMARY_COLUMNS)
    assert ", ".join(SUMMARY_COLUMNS) in schema["description"]


def test_readme_documents_the_schemas_and_npz_keys():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for name in SCHEMA_FILES.values():
        assert name in readme
    assert re.search(rf"schema_version.{{0,40}}{re.escape(RESULT_SCHEMA_VERSION)}", readme)
    for key in NPZ_KEYS:
        assert f"`{key}`" in readme
