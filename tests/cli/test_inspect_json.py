"""``i3d-edge inspect`` prints valid JSON (and text) for a manifest holding NaN or infinite values."""

from __future__ import annotations

import json

from tests.conftest import manifest_json, run_cli, save_manifest_json


def test_inspect_json_never_prints_nan(bundle):
    data = manifest_json(bundle)
    data["verification"] = {"status": "passed", "tolerance": float("nan"), "variants": {"fp32": {
        "graphs_max_abs_diff": float("inf"), "end_to_end_max_abs_diff": float("nan"), "gate_agreement": 1.0}}}
    save_manifest_json(bundle, data)
    for args in (["--json"], []):
        proc = run_cli("inspect", str(bundle), *args)
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        assert "NaN" not in proc.stdout and "Infinity" not in proc.stdout
    report = json.loads(run_cli("inspect", str(bundle), "--json").stdout)
    assert report["verification"]["tolerance"] is None and report["verification"]["variants"]["fp32"][
        "gate_agreement"] == 1.0
