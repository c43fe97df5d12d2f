"""Plant each bug of issue #20's audit, one at a time, in a copy of the tree; its fast tests must fail.

    python scripts/planted_bugs.py            # every bug; prints a Markdown table, exit 1 if one survives
    python scripts/planted_bugs.py lm_weight  # some of them

Each bug is a literal replacement (the original text must occur exactly once, so a refactor that
moves the code makes this script fail loudly instead of planting nothing). The named tests are
first run on the unchanged copy (they must pass), then on the planted one (at least one must fail
with a test failure, pytest exit code 1, not a collection error). Not part of CI: ~5 minutes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Bug:
    name: str
    what: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]


BUGS = (
    Bug("precision_ignored", "the runtime ignores `precision` (int8 asked, the bundle's fp32 sessions used)",
        "i3d_edge/runtime/runtime.py", "manifest.variant(options.precision)", "manifest.variant(None)",
        ("tests/test_default_model.py::test_int8_runs_the_int8_graphs",)),
    Bug("lm_weight", "the bundle's tuned `lm_weight` ignored (1.0 used)",
        "i3d_edge/runtime/decoding.py", "lm_weight=s.lm_weight,", "lm_weight=1.0,",
        ("tests/test_default_model.py::test_bundle_decoder_settings_reach_the_decoder",)),
    Bug("lm_last_word", "the LM decoder drops the last word",
        "i3d_edge/runtime/decoding.py", "        return path_spans(path, self._blank, self._separator)",
        "        spans = path_spans(path, self._blank, self._separator)\n"
        "        cut = max((i for i, s in enumerate(spans) if s.id == self._separator), default=0)\n"
        "        return spans[:cut]",
        ("tests/test_default_model.py::test_default_model_with_its_lm_gives_the_reference_texts",)),
    Bug("no_normalisation", "feature normalisation skipped",
        "i3d_edge/features.py", "return normalize(log_mel(audio, cfg), cfg)",
        "return log_mel(audio, cfg).astype(np.float32)",
        ("tests/test_default_model.py::test_default_model_transcribes_samples_without_torch",)),
    Bug("json_gate_probs_rounded", "JSON `gate_probs` rounded to one decimal",
        "i3d_edge/runtime/results.py",
        '            "gate_probs": {k: round(v, 6) for k, v in self.gate_probs.items()},\n            "duration"',
        '            "gate_probs": {k: round(v, 1) for k, v in self.gate_probs.items()},\n            "duration"',
        ("tests/runtime/test_results.py",)),
    Bug("json_no_segments", "`segments` missing from the JSON",
        "i3d_edge/runtime/results.py", '            "segments": [s.to_dict() for s in self.segments],\n', "",
        ("tests/runtime/test_results.py",)),
    Bug("eval_arguments_swapped", "`eval` calls `score(hyps, refs)`",
        "i3d_edge/apps/evaluation.py", "s = score(refs, hyps)", "s = score(hyps, refs)",
        ("tests/test_default_model.py::test_eval_scores_a_hand_computed_corpus", "tests/apps/test_evaluation.py")),
    Bug("bench_verdict_inverted", "the bench's PASS/MISS comparison inverted",
        "benchmarks/targets.py", 'value <= limit if op == "<=" else value >= limit',
        'value >= limit if op == "<=" else value <= limit',
        ("tests/apps/test_bench_verdicts.py",)),
    Bug("numpy_gates_least_probable", "numpy gate selection keeps the least probable modules",
        "i3d_edge/gating.py", "np.argsort(-probs, axis=1", "np.argsort(probs, axis=1",
        ("tests/test_reference_values.py",)),
    Bug("torch_gates_least_probable", "torch gate selection keeps the least probable modules",
        "i3d_edge/models/i3d.py", "torch.sort(-probs, dim=1", "torch.sort(probs, dim=1",
        ("tests/test_reference_values.py",)),
    Bug("mel_scale", "a wrong constant in the mel scale (the filterbank's own formula)",
        "i3d_edge/features.py", "return 2595.0 * np.log10(1.0 + hz / 700.0)",
        "return 2595.0 * np.log10(1.0 + hz / 600.0)",
        ("tests/test_reference_values.py::test_log_mel_matches_a_textbook_reference",)),
    Bug("no_provenance", "export stops recording the source checkpoint's SHA-256",
        "i3d_edge/export/bundle.py", '"sha256": sha256_file(checkpoint)}', '"sha256": None}',
        ("tests/export/test_export.py::test_source_checkpoint_is_hashed",)),
    Bug("unbounded_segments", "long audio decoded as one segment (segment length ignored)",
        "i3d_edge/runtime/runtime.py", "SegmentPolicy(max_seconds=options.segment_seconds,",
        "SegmentPolicy(max_seconds=1e6,",
        ("tests/runtime/test_long_audio.py::test_memory_is_bounded_by_the_segment_not_the_file",)),
)


def _copy_tree(dst: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.split(b"\0")
    for rel in filter(None, files):
        src = ROOT / os.fsdecode(rel)
        if src.is_file():
            (dst / os.fsdecode(rel)).parent.mkdir(parents=True, exist_ok=True)
            (dst / os.fsdecode(rel)).write_bytes(src.read_bytes())


def _pytest(tree: Path, tests: tuple[str, ...]) -> tuple[int, str]:
    """pytest's exit code and its first assertion line (``E   ...``), the evidence of why a test failed."""
    env = {k: v for k, v in os.environ.items() if k != "I3D_EDGE_TEST_FIXTURE_CACHE"}  # nothing exported before
    env["PYTHONPATH"] = str(tree)
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-n", "0", "-p", "no:cacheprovider", *tests]
    run = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    why = next((ln[1:].strip() for ln in run.stdout.splitlines() if ln.startswith("E ")), "")
    return run.returncode, why


def main(names: list[str]) -> int:
    bugs = [b for b in BUGS if not names or b.name in names]
    rows, survived = [], 0
    for bug in bugs:
        with tempfile.TemporaryDirectory(prefix=f"planted-{bug.name}-") as tmp:
            tree = Path(tmp)
            _copy_tree(tree)
            path = tree / bug.file
            text = path.read_text()
            if text.count(bug.old) != 1:
                n = text.count(bug.old)
                raise SystemExit(f"{bug.name}: {bug.file} holds the text to replace {n} times, not once")
            clean, _ = _pytest(tree, bug.tests)
            path.write_text(text.replace(bug.old, bug.new))
            t0 = time.perf_counter()
            planted, why = _pytest(tree, bug.tests)
            caught = clean == 0 and planted == 1
            survived += not caught
            why = why.replace("|", "/")[:90]
            verdict = f"caught: `{why}`" if caught else f"NOT caught (clean exit {clean}, planted exit {planted})"
            rows.append(f"| {bug.what} | `{bug.file}` | {', '.join(f'`{t}`' for t in bug.tests)} | {verdict} "
                        f"({time.perf_counter() - t0:.0f} s) |")
            print(rows[-1], file=sys.stderr, flush=True)
    print("| planted bug | file | fast tests | result |\n|---|---|---|---|")
    print("\n".join(rows))
    return 1 if survived else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
