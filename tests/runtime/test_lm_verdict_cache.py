"""The LM verdict cache is never the word of someone else, and what KenLM loads is what was hashed.

A cached "ok" lets the runtime skip the Python validation and the child-process probe of a bundle's
language model. These cases plant "ok" for a model that crashes KenLM (a negative n-gram count)
in caches that another user could write, or plant entries that would hang or exhaust a reader, and
swap the model file while it is being loaded: the run gives one line (never exit status 139), and
the cache stays private.

Each CLI case runs the real ``i3d-edge`` command in a child process with bounded address space and
time (``tests.conftest.run_cli``).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("flashlight.lib.text", reason="LM decoding needs the [lm] extra")

from i3d_edge.manifest import sha256_file
from tests.conftest import BAD_ARPA, GOOD_ARPA, ROOT, manifest_json, one_line_error, run_cli, save_manifest_json

CRASHING = BAD_ARPA["negative_count"][0]  # `ngram 1=-5`: KenLM's loader dies with SIGSEGV on it
REL = "lm/words-0123456789abcdef.arpa"


def _carry(bundle: Path, text: str) -> Path:
    """Make ``text`` the bundle's LM, listed with its true hash (as the author of a hostile bundle would)."""
    path = bundle / REL
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    data = manifest_json(bundle)
    data["files"][REL] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    data["decoder"] = {"kind": "lexicon-kenlm", "lm": REL, "lm_weight": 1.0, "word_score": 0.0, "beam_size": 8,
                       "beam_threshold": 25.0}
    save_manifest_json(bundle, data)
    return path


def _good_verdict(bundle: Path, wav: Path, cache: Path) -> Path:
    """Run once on the good model: its verdict file in ``cache`` (the cache the run created)."""
    _carry(bundle, GOOD_ARPA)
    run = run_cli("transcribe", str(wav), "--model", str(bundle), "--decoder", "lm", cache=cache)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    (entry,) = (cache / "lm-verdicts").iterdir()
    return entry


def _plant_ok_for_crashing_model(bundle: Path, wav: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A cache holding "ok" under the key of the crashing model the bundle now carries."""
    cache = tmp_path / "cache"
    good = _good_verdict(bundle, wav, cache)
    crashing = _carry(bundle, CRASHING)
    suffix = good.name.split("-", 1)[1]  # the part of the key that names the tokens and versions
    planted = good.with_name(f"{sha256_file(crashing)[:32]}-{suffix}")
    planted.write_text("ok\n")
    return cache, crashing


def _world_writable(cache: Path) -> None:
    (cache / "lm-verdicts").chmod(0o777)  # another user could have written the entry


def _symlinked(cache: Path) -> None:
    real = cache.parent / "elsewhere"
    shutil.move(cache / "lm-verdicts", real)
    (cache / "lm-verdicts").symlink_to(real)


def _owned_by_another_user(cache: Path) -> None:
    os.chown(cache / "lm-verdicts", 65534, 65534)
    for entry in (cache / "lm-verdicts").iterdir():
        os.chown(entry, 65534, 65534)


HOSTILE_CACHES = {"world_writable": _world_writable, "symlinked_directory": _symlinked}
if os.geteuid() == 0:  # chown needs root
    HOSTILE_CACHES["owned_by_another_user"] = _owned_by_another_user


@pytest.mark.parametrize("decoder", ["lm", "auto"])
@pytest.mark.parametrize("case", list(HOSTILE_CACHES))
def test_a_planted_ok_in_a_cache_others_can_write_is_ignored(bundle, wav, tmp_path, case, decoder):
    cache, crashing = _plant_ok_for_crashing_model(bundle, wav, tmp_path)
    HOSTILE_CACHES[case](cache)
    run = run_cli("transcribe", str(wav), "--model", str(bundle), "--decoder", decoder, cache=cache)
    one_line_error(run, str(crashing.resolve()), "expected 'ngram 1=COUNT'")  # validated, never loaded


def test_the_cache_folder_is_created_private(bundle, wav, tmp_path):
    entry = _good_verdict(bundle, wav, tmp_path / "cache")
    assert stat.S_IMODE(entry.parent.stat().st_mode) == 0o700
    assert entry.read_text() == "ok\n" and entry.stat().st_uid == os.geteuid()


def _fifo(entry: Path) -> None:
    entry.unlink()
    os.mkfifo(entry)


def _dev_zero(entry: Path) -> None:
    entry.unlink()
    entry.symlink_to("/dev/zero")


def _huge(entry: Path) -> None:
    os.truncate(entry, 4 << 30)  # sparse: "ok\n" and 4 GiB of zeros


@pytest.mark.parametrize("damage", [_fifo, _dev_zero, _huge], ids=["fifo", "symlink_to_dev_zero", "sparse_4_GiB"])
def test_a_cache_entry_that_is_not_a_small_regular_file_is_ignored(bundle, wav, tmp_path, damage):
    """The entry neither hangs the run nor is read without bound: the model is probed again and decodes."""
    cache = tmp_path / "cache"
    entry = _good_verdict(bundle, wav, cache)
    expected = run_cli("transcribe", str(wav), "--model", str(bundle), "--decoder", "lm", cache=cache).stdout
    damage(entry)
    run = run_cli("transcribe", str(wav), "--model", str(bundle), "--decoder", "lm", cache=cache)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert run.stdout == expected


SWAPPER = textwrap.dedent("""
    import os, sys, threading, time
    from pathlib import Path
    from i3d_edge.errors import BundleError
    from i3d_edge.manifest import load_manifest
    from i3d_edge.runtime.lm_probe import LmSlot

    bundle, good, bad, swaps = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    manifest = load_manifest(bundle)
    target = bundle / manifest.decoder.lm
    LmSlot(manifest).get()  # the good model's verdict is now known, in this process and on disk
    done = threading.Event()

    def swap():
        for i in range(swaps):  # hard links renamed over the model: it is always one whole file
            os.link(bad if i % 2 == 0 else good, f"{target}.swap")
            os.replace(f"{target}.swap", target)
            time.sleep(0.001)
        done.set()

    thread = threading.Thread(target=swap)
    thread.start()
    loaded = refused = 0
    while not done.is_set():
        try:
            LmSlot(manifest).get()
            loaded += 1
        except BundleError as exc:
            assert str(exc) == f"{target}: SHA-256 mismatch (file modified or corrupt)", exc
            refused += 1
    thread.join()
    print(loaded, refused)
""")


def test_swapping_the_model_while_it_loads_never_crashes(bundle, tmp_path):
    """Stress test (a bounded number of swaps): with "ok" known for the good model, the file is swapped
    with a crashing one every millisecond while the LM is loaded again and again. Each load gets the
    good model or a one-line hash mismatch; the process never dies of a signal."""
    _carry(bundle, GOOD_ARPA)
    good, bad = tmp_path / "good.arpa", tmp_path / "bad.arpa"
    good.write_text(GOOD_ARPA)
    bad.write_text(CRASHING)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "I3D_EDGE_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-c", SWAPPER, str(bundle), str(good), str(bad), "400"],
                          capture_output=True, text=True, timeout=300, env=env, check=False)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    loaded, refused = map(int, proc.stdout.split())
    assert loaded >= 1 and loaded + refused >= 2, proc.stdout
