#!/usr/bin/env bash
# Check the base install on emulated arm64: one command, on a Debian/Ubuntu x86-64 host, as root.
#
#   nice -n 15 scripts/check_aarch64.sh [-o benchmarks/ARM.md]
#
# 1. Builds (once; cached in $I3D_ARM_CACHE, default ~/.cache/i3d-edge-arm) an arm64 Debian
#    bookworm root with debootstrap, run through qemu-user (binfmt_misc, "F" flag, so the root
#    needs no copy of qemu). Installs qemu-user-static / debootstrap / binfmt-support with
#    apt-get when they are missing.
# 2. Installs the project's base install from this working tree into the root
#    (aarch64 wheels of numpy / onnxruntime / soundfile / soxr, fetched by the host's pip and
#    pinned to the versions of $I3D_X86_PYTHON so both sides run the same libraries; unpacked
#    into the root by the host's pip) plus pytest/hypothesis, used by the root's python3.
# 3. Per emulated CPU ($I3D_ARM_CPUS, default "cortex-a53 max,sme=off"): runs the torch-free
#    test files and transcribes samples/ at fp32 and int8.
# 4. Compares with the host: fp32 text must be identical; int8 text is scored against
#    samples/README.tsv (character error rate within 0.10 of the host's fp32 CER).
# 5. Writes the report (versions, emulated CPU and the extensions qemu advertised, timings as
#    emulated, outcome). Exit status 0 only when every check passed.
#
# Emulator quirks handled here (QEMU 7.2, Debian bookworm):
# - qemu-user passes the host's x86 /proc/cpuinfo through; onnxruntime's cpuinfo finds no arm
#   processor in it and crashes. Each run gets its own mount namespace with an arm64
#   /proc/cpuinfo (MIDR of the emulated core) bound over the real one, and /sys (without it
#   cpuinfo fails to initialise and onnxruntime warns that it cannot see the CPU's features).
# - the "max" CPU advertises SME; onnxruntime's SME int8 kernels then give garbage under
#   QEMU 7.2 ("eeee"), so the newest-extensions model is "max,sme=off" (SVE2, i8mm, bf16, dotprod
#   stay on). I3D_ARM_CPUS="max" keeps SME (the quirk was reported in issue #18).
#
# Environment: I3D_ARM_CACHE, I3D_ARM_CPUS, I3D_ARM_MIRROR (Debian mirror), I3D_X86_PYTHON
# (host interpreter with the project's dependencies; default: python3), I3D_ARM_TESTS (pytest
# arguments inside the root; default: the torch-free test files listed below).
set -euo pipefail

die() { echo "check_aarch64: $*" >&2; exit 2; }

repo="$(cd "$(dirname "$0")/.." && pwd)"
report="$repo/benchmarks/ARM.md"
while [ $# -gt 0 ]; do
  case "$1" in
    -o|--output) [ $# -ge 2 ] || die "$1 needs a file"; report="$(realpath -m "$2")"; shift 2 ;;
    -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
cache="${I3D_ARM_CACHE:-$HOME/.cache/i3d-edge-arm}"
cpus="${I3D_ARM_CPUS:-cortex-a53 max,sme=off}"
mirror="${I3D_ARM_MIRROR:-http://deb.debian.org/debian}"
x86py="${I3D_X86_PYTHON:-python3}"
# the test files that need neither torch nor an exported random bundle (the others skip without
# torch anyway, but collecting them costs minutes under emulation); I3D_ARM_TESTS=tests runs all
tests="${I3D_ARM_TESTS:-tests/test_features.py tests/test_audio.py tests/test_default_model.py tests/test_imports.py tests/test_properties.py}"
root="$cache/root"
site=/opt/i3d-edge-site  # the base install's packages inside the root (PYTHONPATH)

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot and mounts); run it with sudo"
[ "$(uname -m)" = x86_64 ] || die "expects an x86-64 host, this is $(uname -m)"
command -v "$x86py" >/dev/null || die "host python not found: $x86py (set I3D_X86_PYTHON)"
"$x86py" -c "import onnxruntime, numpy, soundfile, soxr" 2>/dev/null \
  || die "$x86py lacks the project's dependencies (set I3D_X86_PYTHON to the project's venv python)"

# --- 1. tools, binfmt, root -------------------------------------------------------------------
if ! command -v qemu-aarch64-static >/dev/null || ! command -v debootstrap >/dev/null \
   || ! command -v update-binfmts >/dev/null; then
  command -v apt-get >/dev/null || die "install qemu-user-static, debootstrap and binfmt-support first"
  echo "== installing qemu-user-static debootstrap binfmt-support"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q qemu-user-static debootstrap binfmt-support >/dev/null \
    || die "apt-get install qemu-user-static debootstrap binfmt-support failed"
fi
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || die "cannot mount binfmt_misc"
fi
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
grep -q '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null \
  || die "qemu-aarch64 is not registered with binfmt_misc (flag F needed); try: update-binfmts --enable qemu-aarch64"
qemu_version="$(qemu-aarch64-static --version | head -1)"

mkdir -p "$cache"
if [ ! -e "$root/.i3d-edge-ready" ]; then
  echo "== debootstrap arm64 bookworm into $root (once; 10+ minutes under emulation)"
  rm -rf "$cache/root.partial"
  debootstrap --arch=arm64 --variant=minbase --include=python3,ca-certificates \
    bookworm "$cache/root.partial" "$mirror" > "$cache/debootstrap.log" 2>&1 \
    || die "debootstrap failed; see $cache/debootstrap.log"
  rm -rf "$root"
  mv "$cache/root.partial" "$root"
  touch "$root/.i3d-edge-ready"
fi

# An arm64 /proc/cpuinfo for the emulated core (MIDR part number; onnxruntime reads it to
# pick micro-architecture kernels). Features follow the HWCAPs qemu advertises anyway.
cpuinfo_for() {  # $1: qemu cpu model -> path of a cpuinfo file
  local part implementer=0x41 features="fp asimd evtstrm crc32 cpuid" f="$cache/cpuinfo-${1//[^a-z0-9]/_}"
  case "$1" in
    cortex-a53*) part=0xd03 ;;
    cortex-a57*) part=0xd07 ;;
    cortex-a72*) part=0xd08 ;;
    cortex-a76*) part=0xd0b; features="$features asimddp" ;;
    neoverse-n1*) part=0xd0c; features="$features asimddp" ;;
    *) implementer=0x00; part=0x000; features="$features asimddp sve sve2 i8mm bf16" ;;  # max: "QEMU"
  esac
  : > "$f"
  for ((i = 0; i < $(nproc); i++)); do
    printf 'processor\t: %d\nBogoMIPS\t: 50.00\nFeatures\t: %s\nCPU implementer\t: %s\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: %s\nCPU revision\t: 0\n\n' \
      "$i" "$features" "$implementer" "$part" >> "$f"
  done
  echo "$f"
}

in_root() {  # $1: qemu cpu model, rest: command run in the root (private mounts, gone on exit)
  local cpu="$1"; shift
  local info; info="$(cpuinfo_for "$cpu")"
  unshare --mount --propagation private /bin/bash -c '
    set -e; r="$1"; info="$2"; cpu="$3"; shift 3
    mount -t proc proc "$r/proc"
    mount --bind "$info" "$r/proc/cpuinfo"
    mount --rbind /sys "$r/sys"  # cpuinfo reads the possible/present cpu lists here
    mount --rbind /dev "$r/dev"
    mount -t tmpfs tmpfs "$r/tmp"
    mount --bind "$REPO_SNAPSHOT" "$r/src"
    mount --bind "$WHEELS" "$r/wheels"
    cp /etc/resolv.conf "$r/etc/resolv.conf"
    exec chroot "$r" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 QEMU_CPU="$cpu" \
      PYTHONDONTWRITEBYTECODE=1 PYTHONPATH='"$site"' "$@"' _ "$root" "$info" "$cpu" "$@"
}

# --- 2. the working tree (tracked and untracked, not ignored) into the root --------------------
snapshot="$(mktemp -d "${TMPDIR:-/tmp}/i3d-arm-src.XXXXXX")"
trap 'rm -rf "$snapshot"' EXIT
(cd "$repo" && git ls-files -co --exclude-standard -z | xargs -0 -I{} find {} -maxdepth 0 -type f -print0 \
  | tar --null -T - -cf -) | tar -xf - -C "$snapshot"
mkdir -p "$root/src"
export REPO_SNAPSHOT="$snapshot"

pins="$("$x86py" -c 'from importlib.metadata import version as v
print(" ".join(f"{d}=={v(d)}" for d in ("numpy", "onnxruntime", "soundfile", "soxr")))')"
# Wheels are fetched on the host (its pip configuration and network; pip under emulation is
# slow) and installed offline in the root: aarch64 binaries for the dependencies, the project
# itself built once from the snapshot.
export WHEELS="$cache/wheels"
mkdir -p "$WHEELS" "$root/wheels"
if [ "$(cat "$WHEELS/.pins" 2>/dev/null)" != "$pins" ]; then
echo "== fetching aarch64 wheels on the host ($pins)"
"$x86py" -m pip download -q --disable-pip-version-check --only-binary=:all: --python-version 3.11 \
  --implementation cp --abi cp311 --platform manylinux_2_28_aarch64 --platform manylinux_2_27_aarch64 \
  --platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64 --platform linux_aarch64 \
  -d "$WHEELS" $pins typer pytest pytest-timeout hypothesis > "$cache/download.log" 2>&1 \
  || die "pip download of the aarch64 wheels failed; see $cache/download.log"
echo "$pins" > "$WHEELS/.pins"
fi
rm -f "$WHEELS"/i3d_edge-*.whl
echo "== building the project wheel"
build_isolation=--no-build-isolation  # the host python's setuptools, when it has them
"$x86py" -c 'import setuptools, wheel' 2>/dev/null || build_isolation=
"$x86py" -m pip wheel -q --disable-pip-version-check --no-deps $build_isolation -w "$WHEELS" "$snapshot" > "$cache/wheel.log" 2>&1 \
  || die "could not build the project wheel from $repo; see $cache/wheel.log"
echo "== installing the base install into the arm64 root"
# pip on the host unpacks the aarch64 wheels into the root's site directory (natively: pip
# itself under emulation had installed 13 packages after 21 minutes on a loaded 2-core host); the root's python3
# (Debian's 3.11, the wheels' ABI) then imports them from there.
t0=$SECONDS
rm -rf "$root$site.partial"
"$x86py" -m pip install -q --disable-pip-version-check --no-index --find-links "$WHEELS" --only-binary=:all: \
  --python-version 3.11 --implementation cp --abi cp311 --platform manylinux_2_28_aarch64 \
  --platform manylinux_2_27_aarch64 --platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64 \
  --platform linux_aarch64 --no-compile --target "$root$site.partial" \
  "$(ls "$WHEELS"/i3d_edge-*.whl)" $pins pytest pytest-timeout hypothesis > "$cache/install.log" 2>&1 \
  || die "installing the wheels into the root failed; see $cache/install.log"
rm -rf "$root$site"
mv "$root$site.partial" "$root$site"
in_root cortex-a53 /usr/bin/python3 -c 'import i3d_edge, onnxruntime, soundfile, soxr' \
  || die "the base install does not import in the arm64 root"
install_s=$((SECONDS - t0))

# --- 3. host reference, then every emulated CPU ---------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/i3d-arm-out.XXXXXX")"
trap 'rm -rf "$snapshot" "$work"' EXIT
echo "== host transcripts ($x86py)"
(cd "$snapshot" && PYTHONPATH="$snapshot" "$x86py" scripts/arm_probe.py samples) > "$work/x86.json" \
  || die "host transcription failed"
uname -m > "$work/host-machine"
grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //' > "$work/host-cpu"
n=0
for cpu in $cpus; do
  n=$((n + 1))
  echo "== [$cpu] torch-free tests"
  t0=$SECONDS
  # tests run from a copy of the tree whose i3d_edge is the installed one (no source on sys.path)
  set +e
  in_root "$cpu" /bin/sh -c "cp -r /src/tests /src/samples /src/pyproject.toml /tmp/ && cd /tmp \
    && /usr/bin/python3 -m pytest -q -p no:cacheprovider -o addopts='' $tests 2>&1 | tail -n 15" > "$work/tests-$n.txt"
  echo $? > "$work/tests-$n.rc"
  set -e
  echo $((SECONDS - t0)) > "$work/tests-$n.seconds"
  tail -n 1 "$work/tests-$n.txt"
  echo "== [$cpu] transcribing samples/ at fp32 and int8"
  in_root "$cpu" /usr/bin/python3 /src/scripts/arm_probe.py /src/samples > "$work/arm-$n.json" 2> "$work/arm-$n.err" \
    || { echo "transcription failed under $cpu:"; tail -n 5 "$work/arm-$n.err"; echo '{}' > "$work/arm-$n.json"; }
  echo "$cpu" > "$work/cpu-$n"
done

# --- 4. compare and write the report ----------------------------------------------------------------
"$x86py" - "$work" "$n" "$report" "$qemu_version" "$install_s" "$repo" <<'EOF'
import json, os, sys, tempfile, time
from pathlib import Path

work, n, report, qemu, install_s, repo = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]), *sys.argv[4:]
refs = {}
for line in (Path(repo) / "samples" / "README.tsv").read_text().splitlines()[1:]:
    sid, text, *_ = line.split("\t")
    refs[sid] = text

sys.path.insert(0, repo)  # the project's own scorer (pure Python)
from i3d_edge.scoring import edit_distance as edits

def cer(hyp: str, ref: str) -> float:
    return edits(hyp, ref) / max(len(ref), 1)

x86 = json.loads((work / "x86.json").read_text())
ok = True
lines = ["# i3d-edge on arm64 (emulated)", "",
         f"`scripts/check_aarch64.sh`, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC. Host: "
         f"{(work / 'host-cpu').read_text().strip()} ({(work / 'host-machine').read_text().strip()}), "
         f"{qemu}, Debian bookworm arm64 root (debootstrap, minbase), base install from the working tree "
         f"in {install_s} s (wheels fetched once and unpacked into the root by the host's pip).", ""]
sections = []
summary = ["| emulated CPU | extensions qemu advertised | torch-free tests | fp32 text = x86 | int8 vs reference |",
           "|---|---|---|---|---|"]
for i in range(1, n + 1):
    cpu = (work / f"cpu-{i}").read_text().strip()
    arm = json.loads((work / f"arm-{i}.json").read_text() or "{}")
    tests_rc = int((work / f"tests-{i}.rc").read_text())
    tests_txt = (work / f"tests-{i}.txt").read_text().strip().splitlines()
    tests_line = tests_txt[-1].strip("= ") if tests_txt else "no output"
    t_ok = tests_rc == 0
    if not arm:
        ok = False
        summary.append(f"| `{cpu}` | ? | {tests_line} | transcription failed | - |")
        continue
    fp_same, int8_ok = True, True
    rows = ["| sample | reference | x86 fp32 | arm64 fp32 | arm64 int8 (CER) | x86 fp32 CER | s fp32 / int8 (emulated) |",
            "|---|---|---|---|---|---|---|"]
    for sid, ref in refs.items():
        xf = x86["precisions"]["fp32"]["samples"][sid]["text"]
        af = arm["precisions"]["fp32"]["samples"][sid]
        ai = arm["precisions"]["int8"]["samples"][sid]
        same = af["text"] == xf
        good = cer(ai["text"], ref) <= cer(xf, ref) + 0.10
        fp_same &= same
        int8_ok &= good
        rows.append(f"| {sid} | {ref} | {xf} | {af['text']}{'' if same else ' **DIFFERS**'} | "
                    f"{ai['text']} ({cer(ai['text'], ref):.2f}){'' if good else ' **BAD**'} | {cer(xf, ref):.2f} | "
                    f"{af['seconds']:.2f} / {ai['seconds']:.2f} |")
    ok &= t_ok and fp_same and int8_ok
    feats = ", ".join(arm["features"]) or "-"
    summary.append(f"| `{cpu}` | {feats} | {tests_line}{'' if t_ok else ' **FAILED**'} | "
                   f"{'yes' if fp_same else '**no**'} | {'ok' if int8_ok else '**garbage**'} |")
    v = arm["versions"]
    sections += [f"## `QEMU_CPU={cpu}`", "",
                 f"Python {arm['python']}, " + ", ".join(f"{k} {val}" for k, val in v.items()) +
                 f". Import {arm['import_s']:.1f} s, fp32 `Runtime()` {arm['precisions']['fp32']['load_s']:.1f} s, "
                 f"int8 {arm['precisions']['int8']['load_s']:.1f} s; torch-free tests "
                 f"{(work / f'tests-{i}.seconds').read_text().strip()} s (all as emulated: qemu-user on a shared "
                 "x86 host, not the speed of an arm board).", "", *rows, "",
                 "```", *tests_txt[-4:], "```", ""]
xv = x86["versions"]
lines += ["Host reference: Python " + x86["python"] + ", " + ", ".join(f"{k} {val}" for k, val in xv.items()) +
          ". Greedy decoding, 1 thread, the embedded default model; int8 passes when its character error rate "
          "against `samples/README.tsv` is within 0.10 of the host's fp32 one.", "",
          f"**Outcome: {'PASS' if ok else 'FAIL'}**", "", *summary, "", *sections]
report.parent.mkdir(parents=True, exist_ok=True)
fd, tmp = tempfile.mkstemp(dir=report.parent, prefix=".arm-report-")
with os.fdopen(fd, "w") as f:
    f.write("\n".join(lines).rstrip() + "\n")
os.replace(tmp, report)
print(f"report: {report} ({'PASS' if ok else 'FAIL'})")
sys.exit(0 if ok else 1)
EOF
