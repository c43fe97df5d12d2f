"""Command-line arguments that could hang or exhaust a process (a loop of symlinks as a model or
checkpoint path, a huge thread count): one-line errors naming the cause.

Each case runs the real ``i3d-edge`` command in a child process with bounded address space and
time (``tests.conftest.run_cli``) and asserts the exit status, the single ``error:`` line naming the
file and the cause, and that no traceback is printed.
"""

from __future__ import annotations

import pytest

from i3d_edge.errors import ConfigError
from i3d_edge.runtime import Runtime
from tests.conftest import TINY, one_line_error, run_cli


def test_a_loop_of_symlinks_is_named_as_such(tmp_path, wav):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    line = one_line_error(run_cli("transcribe", str(wav), "--model", str(loop)), "Too many levels of symbolic links")
    assert str(loop) in line and "no such" not in line
    one_line_error(run_cli("export", str(loop), "-o", str(tmp_path / "out")), "cannot access the checkpoint",
                   "Too many levels of symbolic links")
    assert not (tmp_path / "out").exists()


def test_threads_are_bounded(make_bundle, wav):
    one_line_error(run_cli("transcribe", str(wav), "--model", str(make_bundle("global", 2, **TINY)), "--threads",
                       "100000"), "threads must be at most", "got 100000")
    with pytest.raises(ConfigError, match="threads must be at most"):
        Runtime(make_bundle("global", 2, **TINY), threads=100_000)
