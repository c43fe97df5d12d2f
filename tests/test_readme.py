"""The README's torch-free commands work as written, and its links and those of the docs resolve.

The Quick start (shell and Python) and the "Folders, stdin and output files" lines run one by one
in a fresh folder that holds the samples, as a user runs them from the source folder; what they
print or write is compared with what :class:`~i3d_edge.Runtime` gives in this process. The Deploy
section has its own check (``tests/cli/test_readme_deploy.py``) and the live example its own
(``tests/apps/test_live.py``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from i3d_edge.runtime.runtime import DEFAULT_BUNDLE

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = [README, ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

needs_default_model = pytest.mark.skipif(not (DEFAULT_BUNDLE / "manifest.json").is_file(),
                                         reason="no default model embedded in this checkout")


def _section(title: str) -> str:
    """The README text under the heading ``title``, up to the next heading."""
    text = README.read_text(encoding="utf-8")
    heading = re.search(rf"^#+ {re.escape(title)}\n", text, re.M)
    assert heading is not None, f"README: no section {title!r}"
    rest = text[heading.end():]
    following = re.search(r"^##+ ", rest, re.M)
    return rest[: following.start()] if following else rest


def _block(title: str, lang: str) -> str:
    block = re.search(rf"```{lang}\n(.*?)```", _section(title), re.S)
    assert block is not None, f"README: no {lang} block under {title!r}"
    return block.group(1)


def _commands(title: str) -> list[str]:
    """The lines of the section's bash block, comments dropped."""
    lines = _block(title, "bash").replace("\\\n", " ").splitlines()
    return [re.sub(r"\s+#.*$", "", line).strip() for line in lines if line.strip()]


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{command}: exit {proc.returncode}\n{proc.stderr[-2000:]}"
    return proc


@pytest.fixture(scope="module")
def user_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("user")
    (folder / "samples").symlink_to(ROOT / "samples", target_is_directory=True)
    return folder


@pytest.fixture(scope="module")
def expected():
    """What the embedded model gives for each sample, in this process."""
    from i3d_edge import Runtime

    rt = Runtime()
    return {name: rt.transcribe(ROOT / "samples" / f"{name}.wav") for name in ("digit", "sample1", "sample2")}


@needs_default_model
def test_quick_start_commands(user_folder: Path, expected) -> None:
    lines = _commands("Quick start")
    assert [line.split()[:2] for line in lines] == [["i3d-edge", "transcribe"]] * 3 + [["i3d-edge", "inspect"]]
    listing = _run(["bash", "-c", lines[0]], user_folder).stdout.splitlines()
    assert listing == [f"samples/{name}.wav: {expected[name].text}" for name in ("digit", "sample1", "sample2")]
    record = json.loads(_run(["bash", "-c", lines[1]], user_folder).stdout)
    assert record["text"] == expected["sample1"].text
    assert [w["word"] for w in record["words"]] == expected["sample1"].text.split()
    _run(["bash", "-c", lines[2]], user_folder)
    srt = (user_folder / "sample2.srt").read_text(encoding="utf-8").splitlines()
    cue_text = [line for line in srt if line and not line.isdigit() and " --> " not in line]
    assert srt[0] == "1" and srt[1].startswith("00:00:")
    assert " ".join(cue_text).split() == expected["sample2"].text.split()
    card = _run(["bash", "-c", lines[3]], user_folder).stdout
    assert "global predictor, threshold 0.5, 24 modules" in card


@needs_default_model
def test_quick_start_python(user_folder: Path, expected) -> None:
    proc = _run([sys.executable, "-c", _block("Quick start", "python")], user_folder)
    first, tokens = proc.stdout.splitlines()
    r = expected["sample1"]
    assert first == f"{r.text} {r.modules_executed}/{r.modules_total} modules"
    assert [t for t, _, _ in eval(tokens)] == [tok.token for tok in r.tokens]


@needs_default_model
def test_folders_stdin_and_output_files(user_folder: Path, expected) -> None:
    write_all, skip_existing, from_stdin = _commands("Folders, stdin and output files")
    _run(["bash", "-c", write_all], user_folder)
    out = user_folder / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{name}.{ext}" for name in expected
                                                          for ext in ("txt", "json", "srt", "vtt", "tsv"))
    for name, result in expected.items():
        assert (out / f"{name}.txt").read_text(encoding="utf-8").strip() == result.text
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    _run(["bash", "-c", skip_existing], user_folder)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps  # nothing transcribed again
    record = json.loads(_run(["bash", "-c", from_stdin], user_folder).stdout)
    assert record["text"] == expected["digit"].text


def _anchors(markdown: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings."""
    headings = re.findall(r"^#+ (.*)$", re.sub(r"```.*?```", "", markdown.read_text(encoding="utf-8"), flags=re.S),
                          re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_resolve(doc: Path) -> None:
    """Every relative link names a file of the checkout and, with #, a heading of it."""
    text = re.sub(r"```.*?```", "", doc.read_text(encoding="utf-8"), flags=re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        if not dest.exists() or (anchor and dest.suffix == ".md" and anchor not in _anchors(dest)):
            broken.append(target)
    assert broken == []
