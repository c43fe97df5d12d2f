"""A bundle the user may not read (its directory, manifest or one graph) is a one-line error naming
the file, from ``transcribe`` and ``inspect``: never a traceback.

Root reads every file whatever its mode, so as root the commands run without the capabilities
that allow it (``setpriv``, util-linux), as an ordinary user would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import soundfile as sf

from tests.conftest import speechlike

SETPRIV = shutil.which("setpriv")
if os.geteuid() == 0 and SETPRIV is None:
    pytest.skip("running as root without setpriv: cannot drop the right to read every file", allow_module_level=True)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    prefix = [SETPRIV, "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 and SETPRIV else []
    return subprocess.run([*prefix, sys.executable, "-m", "i3d_edge", *args], capture_output=True, text=True,
                          timeout=300)


CAUSE = {  # the one line for each unreadable part: the file, what could not be done, the OS's reason
    "directory": "unreadable manifest (Permission denied)",
    "manifest": "unreadable manifest (Permission denied)",
    "graph": "cannot read the bundle file (Permission denied)",
}


@pytest.mark.parametrize("target", list(CAUSE))
def test_an_unreadable_bundle_is_one_line_naming_the_file(make_bundle, tmp_path, target):
    bundle = shutil.copytree(make_bundle("global", 2), tmp_path / "bundle")
    wav = tmp_path / "a.wav"
    sf.write(wav, speechlike(1.0), 16000, subtype="PCM_16")
    victim = {"directory": bundle, "manifest": bundle / "manifest.json",
              "graph": next((bundle / "fp32").glob("layer01.ffn*.onnx"))}[target]
    os.chmod(victim, 0)
    try:
        for args in (("transcribe", "-m", str(bundle), str(wav)), ("inspect", str(bundle))):
            result = _run(*args)
            lines = result.stderr.strip().splitlines()
            assert result.returncode == 1 and result.stdout == "", (args, result.stderr[-2000:])
            assert len(lines) == 1 and lines[0].startswith("error: "), (args, result.stderr[-2000:])
            named = victim / "manifest.json" if target == "directory" else victim  # a directory: its manifest
            assert lines[0] == f"error: {named}: {CAUSE[target]}", lines[0]
    finally:
        os.chmod(victim, 0o755 if victim.is_dir() else 0o644)
