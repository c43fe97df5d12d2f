"""Reading a corpus directory (``corpus.py``): ``transcripts.tsv`` is read one bounded line at a time,
so a huge or sparse file is a one-line error in bounded memory, not gigabytes read at once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import soundfile as sf

from i3d_edge.corpus import MAX_LINE_CHARS, read_corpus
from i3d_edge.errors import CorpusError
from tests.conftest import one_line_error, run_cli, speechlike


@pytest.fixture
def corpus(tmp_path) -> Path:
    root = tmp_path / "corpus"
    (root / "audio").mkdir(parents=True)
    for utt in ("u1", "u2"):
        sf.write(root / "audio" / f"{utt}.wav", speechlike(0.8, seed=len(utt)), 16000)
    (root / "transcripts.tsv").write_text("u1\tone two\nno tab here\nu2\tthree\r\nu3\tno audio\n")
    return root


def test_lines_with_audio_are_read(corpus):
    assert read_corpus(corpus) == [("u1", corpus / "audio" / "u1.wav", "one two"),
                                   ("u2", corpus / "audio" / "u2.wav", "three")]


def test_a_sparse_6_gib_transcripts_file_is_one_line_in_bounded_memory(corpus, bundle):
    tsv = corpus / "transcripts.tsv"
    os.truncate(tsv, 6 << 30)  # the two good lines, then 6 GiB of holes: one endless line of NULs
    with pytest.raises(CorpusError) as info:
        read_corpus(corpus)
    assert str(info.value) == f"{tsv}: line 5 is longer than {MAX_LINE_CHARS} characters"
    one_line_error(run_cli("eval", str(corpus), "--model", str(bundle), memory_mb=1024),
                   f"{tsv}: line 5 is longer than {MAX_LINE_CHARS} characters")


def test_a_transcripts_file_that_is_not_utf8_is_one_line(corpus):
    (corpus / "transcripts.tsv").write_bytes(b"u1\tone\nu2\t\xff\xfe\n")
    with pytest.raises(CorpusError) as info:
        read_corpus(corpus)
    assert str(info.value) == f"{corpus / 'transcripts.tsv'}: not UTF-8 text"
