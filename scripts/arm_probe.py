"""Transcribe ``samples/`` with the embedded default model and print one JSON object (used by
``check_aarch64.sh`` on the host and inside the emulated arm64 root, so both run the same code).

    python scripts/arm_probe.py [SAMPLES_DIR] [--repeats N]

Greedy decoding (the base install has no word LM), 1 thread, fp32 and int8. Reports the
machine, the library versions, the CPU features the kernel (or qemu) advertises (``AT_HWCAP``,
``AT_HWCAP2``) and, per precision and sample, the text and the median transcribe time.
"""

from __future__ import annotations

import ctypes
import json
import platform
import statistics
import sys
import time
from importlib.metadata import version
from pathlib import Path

# arm64 HWCAP / HWCAP2 bits (linux/arch/arm64/include/uapi/asm/hwcap.h) that matter to onnxruntime's kernels
_HWCAP = {1: "asimd", 20: "asimddp", 22: "sve", 9: "asimdhp", 3: "aes"}
_HWCAP2 = {1: "sve2", 13: "i8mm", 14: "bf16", 15: "dgh", 23: "sme", 9: "svei8mm"}


def arm_features() -> list[str]:
    """The arm64 extensions advertised to this process (empty on other machines)."""
    if platform.machine() not in ("aarch64", "arm64"):
        return []
    getauxval = ctypes.CDLL(None).getauxval
    getauxval.restype = ctypes.c_ulong
    hw, hw2 = getauxval(16), getauxval(26)  # AT_HWCAP, AT_HWCAP2
    return ([n for b, n in sorted(_HWCAP.items()) if hw >> b & 1]
            + [n for b, n in sorted(_HWCAP2.items()) if hw2 >> b & 1])


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    repeats = int(sys.argv[sys.argv.index("--repeats") + 1]) if "--repeats" in sys.argv else 1
    samples = Path(args[0]) if args else Path(__file__).resolve().parents[1] / "samples"
    t = time.perf_counter()
    from i3d_edge import Runtime

    out: dict = {"machine": platform.machine(), "python": platform.python_version(),
                 "versions": {d: version(d) for d in ("numpy", "onnxruntime", "soundfile", "soxr", "i3d-edge")},
                 "features": arm_features(), "import_s": time.perf_counter() - t, "precisions": {}}
    for precision in ("fp32", "int8"):
        t = time.perf_counter()
        rt = Runtime(precision=precision, threads=1, decoder="greedy")
        rows = {"load_s": time.perf_counter() - t, "samples": {}}
        for wav in sorted(samples.glob("*.wav")):
            times, text = [], ""
            for _ in range(repeats):
                t = time.perf_counter()
                result = rt.transcribe(wav)
                times.append(time.perf_counter() - t)
                text = result.text
            rows["samples"][wav.stem] = {"text": text, "seconds": statistics.median(times),
                                         "duration": result.duration}
        out["precisions"][precision] = rows
    print(json.dumps(out))


if __name__ == "__main__":
    main()
