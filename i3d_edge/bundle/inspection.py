"""``inspect_bundle``: what a bundle holds, as one JSON-friendly dict (no torch; onnx when installed,
else the graphs' protobuf fields are read directly by :mod:`.onnx_wire`).

The manifest is validated by :func:`i3d_edge.manifest.load_manifest`, and every graph and the
language model are then checked exactly as the runtime checks them (its public
:func:`i3d_edge.runtime.check_bundle`), so a bundle the runtime would refuse is refused here with
the same one-line BundleError.
"""

from __future__ import annotations

import math
import os
from typing import Any

from ..errors import BundleError
from ..manifest import BUNDLE_FORMAT, BUNDLE_VERSION, Manifest, json_safe, load_manifest, role_of
from ..module_kinds import ARCHITECTURES
from ..runtime import check_bundle

__all__ = ["format_bytes", "inspect_bundle", "render_text", "verification_summary"]


def inspect_bundle(bundle: str | os.PathLike[str]) -> dict[str, Any]:
    """Graphs (sizes, parameter counts, opsets, interfaces, metadata) per variant, gate layout,
    threshold, quantisation, provenance and the verification report of the bundle at ``bundle``."""
    manifest = load_manifest(bundle)
    check_bundle(manifest)
    variants = {}
    for name, variant in manifest.variants.items():
        graphs = [_graph_info(manifest, key, rel) for key, rel in variant.graphs.items()]
        variants[name] = {
            "default": name == manifest.default_variant,
            "quantization": variant.quantization,
            "bytes": sum(g["bytes"] for g in graphs),
            "params": sum(g["params"] for g in graphs if g["role"] != "monolithic"),
            "graphs": graphs,
        }
    return {
        "bundle": str(manifest.root),
        "format": BUNDLE_FORMAT,  # load_manifest accepts no other
        "version": BUNDLE_VERSION,
        "model_config": manifest.model_config.to_dict(),
        "feature_config": manifest.feature_config.to_dict(),
        "tokens": list(manifest.tokens.tokens),
        "gates": {"predictor": manifest.predictor, "threshold": manifest.threshold,
                  "modules": list(manifest.modules)},
        "default_variant": manifest.default_variant,
        "variants": variants,
        "provenance": json_safe(manifest.provenance),
        "verification": json_safe(manifest.verification),
        "decoder": None if manifest.decoder is None else {
            **manifest.decoder.to_dict(), "bytes": manifest.verify(manifest.decoder.lm).stat().st_size,
            "ngram": manifest.lm_ngram},
    }


def _graph_info(manifest: Manifest, key: str, rel: str) -> dict[str, Any]:
    path = manifest.verify(rel)
    try:
        import onnx
    except ImportError:  # the base install: read the protobuf fields directly
        return {"key": key, "role": role_of(key), "file": rel, "bytes": path.stat().st_size,
                **_wire_summary(path)}
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf decode errors have no common base class
        raise BundleError(f"{path}: not a readable ONNX graph ({type(exc).__name__})") from None
    graph = model.graph
    return {
        "key": key,
        "role": role_of(key),
        "file": rel,
        "bytes": path.stat().st_size,
        "params": sum(math.prod(init.dims) for init in graph.initializer),
        "opset": next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None),
        "ir_version": model.ir_version,
        "inputs": [i.name for i in graph.input],
        "outputs": [o.name for o in graph.output],
        "nodes": len(graph.node),
        "metadata": {p.key: p.value for p in model.metadata_props},
    }


def _wire_summary(path: Any) -> dict[str, Any]:
    from .onnx_wire import graph_summary

    try:
        return graph_summary(path.read_bytes())
    except ValueError as exc:
        raise BundleError(f"{path}: not a readable ONNX graph ({exc})") from None


def format_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.2f} GB"


def verification_summary(report: dict[str, Any]) -> list[str]:
    """Status, then one line per variant: max abs diff per graph and end to end, gate agreement."""
    if report.get("status") != "passed":
        return [str(report.get("status", "none"))[:80]]
    try:
        return _passed(report)
    except (TypeError, KeyError, ValueError, AttributeError):  # a hand-edited report
        return ["passed (the report's details are unreadable)"]


def _passed(report: dict[str, Any]) -> list[str]:
    tol = report.get("tolerance")
    return [f"passed (fp32 within {tol:g} x max(1, largest reference value) of torch, per graph and end to end; "
            f"{len(report.get('inputs', []))} inputs)"] + [
        f"{name}: max abs diff per graph {v['graphs_max_abs_diff']:.2g}, end-to-end CTC log-probs "
        f"{v['end_to_end_max_abs_diff']:.2g}, gate decisions {100 * v['gate_agreement']:.2f}% identical"
        for name, v in report.get("variants", {}).items()
    ]


def _metadata_summary(graphs: list[dict[str, Any]]) -> str:
    """Which metadata_props keys every graph carries, and which graphs carry more."""
    common = set.intersection(*(set(g["metadata"]) for g in graphs))
    extra: dict[str, list[str]] = {}
    for g in graphs:
        more = ", ".join(k for k in g["metadata"] if k not in common)
        if more:
            extra.setdefault(more, []).append(g["role"])
    parts = [f"every graph: {', '.join(k for k in graphs[0]['metadata'] if k in common)}"]
    parts += [f"{', '.join(dict.fromkeys(keys))} also: {more}" for more, keys in extra.items()]
    return "; ".join(parts)


def render_text(info: dict[str, Any]) -> str:
    """The human-readable form of :func:`inspect_bundle`'s dict."""
    mc, fc, gates, prov = info["model_config"], info["feature_config"], info["gates"], info["provenance"]
    normalised = "normalised" if fc["mean"] or fc["std"] else "not normalised"
    lines = [
        f"bundle        {info['bundle']} ({info['format']} v{info['version']})",
        f"model         {mc['n_layers']} layers, d_model {mc['d_model']}, {mc['n_heads']} heads, "
        f"d_ff {mc['d_ff']}, vocab {mc['vocab_size']}"
        + (f"; {mc['arch']}: {', '.join(ARCHITECTURES[mc['arch']])} per layer" if "arch" in mc else ""),
        (f"features      {fc['n_mels']} log-mels at {fc['sample_rate']} Hz, hop {fc['hop_length']}, {normalised}"
         if fc.get("kind", "log_mel") == "log_mel" else
         f"features      raw waveform at {fc['sample_rate']} Hz, {fc['hop_length']} samples per frame, "
         f"{'normalised per utterance' if fc.get('do_normalize') else 'not normalised'}")
        + (f", {fc['edge_silence']:g} s of silence added at each end" if fc.get("edge_silence") else ""),
        f"gates         {gates['predictor']} predictor, threshold {gates['threshold']}, "
        f"{len(gates['modules'])} modules ({gates['modules'][0]} ... {gates['modules'][-1]})",
    ]
    for name, v in info["variants"].items():
        q = v["quantization"]
        how = "fp32 weights" if q is None else ", ".join(f"{k} {v}" for k, v in q.items() if k != "tool")
        lines.append(f"variant       {name}{' (default)' if v['default'] else ''}: {len(v['graphs'])} graphs, "
                     f"{format_bytes(v['bytes'])}, {v['params'] / 1e6:.2f}M params; {how}")
    dec = info.get("decoder")
    if dec:
        ngram = dec.get("ngram", {})
        size = (f"{ngram['order']}-gram, {ngram['vocab']} words, "
                if isinstance(ngram.get("order"), int) and isinstance(ngram.get("vocab"), int) else "")
        lines.append(f"decoder       word LM {dec['lm']} ({size}{format_bytes(dec['bytes'])}): lm_weight "
                     f"{dec['lm_weight']}, word_score {dec['word_score']}, beam {dec['beam_size']}")
    else:
        lines.append("decoder       greedy CTC (no language model)")
    for name, v in info["variants"].items():
        lines.append(f"\ngraphs [{name}]")
        lines.append(f"  {'key':14s} {'role':10s} {'size':>9s} {'params':>9s} opset  inputs -> outputs")
        for g in v["graphs"]:
            lines.append(f"  {g['key']:14s} {g['role']:10s} {format_bytes(g['bytes']):>9s} {g['params']:>9d} "
                         f"{g['opset']!s:>5s}  {', '.join(g['inputs'])} -> {', '.join(g['outputs'])}")
    source = prov.get("source_checkpoint") if isinstance(prov.get("source_checkpoint"), dict) else {}
    origin = (f"from {source['path']} (sha256 {source.get('sha256')})" if source.get("path")
              else "from an in-memory checkpoint")
    lines += [
        "",
        f"metadata      {_metadata_summary(info['variants'][info['default_variant']]['graphs'])}",
        "provenance    " + ", ".join(f"{k} {prov.get(k)}" for k in ("i3d_edge", "torch", "onnx", "onnxruntime",
                                                                       "onnxsim", "opset") if k in prov),
        f"              created {prov.get('created_utc')}, {origin}",
    ]
    summary = verification_summary(info["verification"])
    lines += [f"verification  {summary[0]}", *(f"              {line}" for line in summary[1:])]
    return "\n".join(lines)

