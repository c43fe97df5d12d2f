"""Fixtures of the model tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import speechlike


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A tiny speech-like training corpus: six utterances of 0.6 to 1.6 s with digit-word transcripts."""
    import soundfile as sf

    root = tmp_path_factory.mktemp("corpus")
    (root / "audio").mkdir()
    texts = ["one two", "three", "four five six", "seven", "eight nine", "zero zero"]
    with open(root / "transcripts.tsv", "w", encoding="utf-8") as fh:
        for i, text in enumerate(texts):
            sf.write(root / "audio" / f"u{i}.wav", speechlike(0.6 + 0.2 * i, seed=i), 16000)
            fh.write(f"u{i}\t{text}\n")
    return root
