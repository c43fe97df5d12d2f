"""What the runtime would refuse, asked without building a ``Runtime``: the public checks that the
torch-free bundle tools (inspection, LM attachment) run, so that they never reach into the
runtime's sessions, LM probe or options."""

from __future__ import annotations

from pathlib import Path

from ..manifest import Manifest
from ..tokens import TokenTable
from .decoding import lm_available
from .lm_probe import check_language_model, probe_language_model
from .options import DEFAULT_PROVIDERS
from .sessions import SessionPool

__all__ = ["check_bundle", "check_language_model_file"]


def check_bundle(manifest: Manifest) -> None:
    """Open every graph session (SHA-256, interface and probe run) of every variant and probe-load the
    language model (when flashlight-text is installed), as a Runtime would; raise its one-line error."""
    for variant in manifest.variants.values():
        SessionPool(manifest, variant, threads=1, providers=DEFAULT_PROVIDERS, eager=(), lazy=False)
    if manifest.decoder is not None and lm_available():
        probe_language_model(manifest, manifest.decoder.lm)


def check_language_model_file(path: Path, tokens: TokenTable) -> None:
    """Load the ARPA file at ``path`` as the runtime will load a bundle's LM over ``tokens`` (in a child
    process; nothing when flashlight-text is not installed); raise a one-line BundleError if it fails."""
    if lm_available():
        check_language_model(path, tokens)
