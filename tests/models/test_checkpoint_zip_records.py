"""Zip-format torch files whose records would unpack to far more than the file holds (a compressed
record declaring gigabytes) are refused in one line before ``torch.load`` allocates anything, by
``export``, ``train --init`` and ``import`` (``pytorch_model.bin``); honest compressed records load.

The CLI cases run the real ``i3d-edge`` command in a child process with bounded address space and
time (``tests.conftest.run_cli``).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from i3d_edge.errors import CheckpointError
from tests.conftest import TINY, one_line_error, run_cli

torch = pytest.importorskip("torch", reason="checkpoints need the [export] extra")

from i3d_edge.models.checkpoint import load_checkpoint  # noqa: E402

BOMB_BYTES = 1 << 30  # what the planted record declares and unpacks to: 1 GiB of zeros in about 1 MB


def _rezip(src: Path, dst: Path, *, bomb: bool = False, deflate: bool = False) -> Path:
    """Copy torch's zip archive ``src`` record by record; ``deflate`` compresses every record, ``bomb``
    adds a compressed record of BOMB_BYTES zeros beside the tensors."""
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(dst, "w") as new:
        prefix = old.namelist()[0].split("/")[0]
        for info in old.infolist():
            kind = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
            new.writestr(zipfile.ZipInfo(info.filename), old.read(info), compress_type=kind)
        if bomb:
            info = zipfile.ZipInfo(f"{prefix}/data/999")
            info.compress_type = zipfile.ZIP_DEFLATED
            with new.open(info, "w", force_zip64=True) as out:  # written in pieces: the test stays small
                block = bytes(1 << 24)
                for _ in range(BOMB_BYTES // len(block)):
                    out.write(block)
    return dst


@pytest.fixture(scope="module")
def bomb_checkpoint(make_checkpoint, tmp_path_factory) -> Path:
    return _rezip(make_checkpoint("global", 2, **TINY), tmp_path_factory.mktemp("bomb") / "bomb.pt", bomb=True)


def test_a_compressed_record_declaring_a_gigabyte_is_refused_in_one_line(bomb_checkpoint):
    assert bomb_checkpoint.stat().st_size < 8 << 20
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(bomb_checkpoint)
    message = str(info.value)
    assert message.startswith(f"{bomb_checkpoint}: zip record ") and "\n" not in message
    assert f" to {BOMB_BYTES} (more than 16 x; torch writes records uncompressed)" in message


@pytest.mark.parametrize("command", ["export", "train"])
def test_export_and_train_init_refuse_the_bomb_within_bounded_memory(bomb_checkpoint, tmp_path, command):
    args = (["export", str(bomb_checkpoint), "-o", str(tmp_path / "bundle")] if command == "export" else
            ["train", "--init", str(bomb_checkpoint), "-o", str(tmp_path / "run"), "--train", str(tmp_path),
             "--dev", str(tmp_path)])
    proc = run_cli(*args, memory_mb=1536)  # unpacking the record would need a GiB more than that
    line = one_line_error(proc, str(bomb_checkpoint), "would unpack")
    assert "out of memory" not in line
    assert not (tmp_path / "bundle").exists()


def test_a_pytorch_model_bin_with_a_bomb_is_refused_by_import(bomb_checkpoint, tmp_path):
    pytest.importorskip("transformers")
    from safetensors.torch import load_file

    from tests.hf_models import build_hf_model

    source = tmp_path / "hf"
    build_hf_model("Wav2Vec2ForCTC", False, source)
    torch.save(load_file(str(source / "model.safetensors")), tmp_path / "honest.bin")
    (source / "model.safetensors").unlink()
    _rezip(tmp_path / "honest.bin", source / "pytorch_model.bin", bomb=True)  # the real weights plus the bomb
    proc = run_cli("import", str(source), "-o", str(tmp_path / "imported.pt"))
    one_line_error(proc, str(source / "pytorch_model.bin"), "would unpack")
    assert not (tmp_path / "imported.pt").exists()


def test_a_checkpoint_with_honestly_compressed_records_still_loads(make_checkpoint, tmp_path):
    """Every record deflated (random weights barely shrink): within the ratio, inflated and counted, loaded."""
    source = make_checkpoint("global", 2, **TINY)
    packed = _rezip(source, tmp_path / "deflated.pt", deflate=True)
    with zipfile.ZipFile(packed) as archive:
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_DEFLATED}
    ckpt, reference = load_checkpoint(packed), load_checkpoint(source)
    assert ckpt.state_dict.keys() == reference.state_dict.keys()
    assert all(torch.equal(ckpt.state_dict[k], reference.state_dict[k]) for k in ckpt.state_dict)


def test_a_record_that_unpacks_to_less_than_it_declares_is_refused(make_checkpoint, tmp_path):
    """The declared size is checked against the bytes the record really inflates to."""
    packed = _rezip(make_checkpoint("global", 2, **TINY), tmp_path / "short.pt", deflate=True)
    with zipfile.ZipFile(packed) as archive:
        info = max(archive.infolist(), key=lambda i: i.file_size)
    raw = bytearray(packed.read_bytes())
    entry = raw.rfind(info.filename.encode()) - 46  # central directory header of the largest record
    assert raw[entry: entry + 4] == b"PK\x01\x02"
    declared = int.from_bytes(raw[entry + 24: entry + 28], "little")
    assert declared == info.file_size
    raw[entry + 24: entry + 28] = (declared + 4096).to_bytes(4, "little")  # claims 4 KiB more than it holds
    packed.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError) as refused:
        load_checkpoint(packed)
    assert str(refused.value) == (f"{packed}: zip record {info.filename} declares {declared + 4096} bytes but "
                                  f"unpacks to {declared}")
