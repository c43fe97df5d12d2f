"""The ``i3d-edge`` command line: thin typer commands that parse, call the library, print.

Each command lives in its own module and imports heavy libraries (torch, onnxruntime) inside
the command body, so ``i3d-edge --help`` stays fast and torch-free.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from ..errors import I3dEdgeError
from . import _common
from .terminal import escape_controls

__all__ = ["app", "fail", "handle_errors", "main"]

app = typer.Typer(
    name="i3d-edge",
    cls=_common.Group,
    help="Export I3D dynamic-depth speech recognisers to ONNX and run them on CPU/ARM.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
) -> None:
    """Export I3D dynamic-depth speech recognisers to ONNX and run them on CPU/ARM."""
    if version:
        from .. import __version__

        typer.echo(__version__)
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()


F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print a one-line error to stderr and return the Exit to raise."""
    typer.echo(f"error: {escape_controls(message)}", err=True)
    return typer.Exit(code)


def handle_errors(func: F) -> F:
    """Turn the errors a user can cause into one line on stderr and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except I3dEdgeError as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None
        except MemoryError:
            raise fail("out of memory") from None
        except BrokenPipeError:  # stdout closed by its reader (`| head`): stop quietly
            raise _common.exit_quietly() from None
        except ImportError as exc:  # an optional extra that is not installed
            message = _common.missing_extra(exc)
            if message is None:
                raise
            raise fail(message) from None

    return wrapper  # type: ignore[return-value]


# Register the commands (each module only imports typer at import time; heavy work is lazy).
from . import analyze, bench, evaluate, export, import_model, init, lm, train, transcribe  # noqa: E402, F401


def main() -> None:
    try:
        app(prog_name="i3d-edge")  # also under `python -m i3d_edge`: messages name the command users type
    except BrokenPipeError:  # e.g. piped into `head`, outside a command
        _common.closed_stdout()


from . import listen  # noqa: E402, F401  (registers `listen`: live transcription)
