"""Fixtures of the application tests."""

from __future__ import annotations

import pytest
import soundfile as sf

from tests.conftest import speechlike


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Four generated utterances (0.5 to 6 s) with transcripts: an evaluation corpus."""
    root = tmp_path_factory.mktemp("corpus")
    (root / "audio").mkdir()
    lines = []
    for i, seconds in enumerate([0.5, 1.5, 3.0, 6.0]):
        sf.write(root / "audio" / f"utt{i}.wav", speechlike(seconds, seed=i), 16000)
        lines.append(f"utt{i}\thello world number {i}")
    (root / "transcripts.tsv").write_text("\n".join(lines) + "\n")
    return root
