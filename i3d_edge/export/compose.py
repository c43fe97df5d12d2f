"""Bundle completion without torch: the full-depth monolithic graph composed from a bundle's own
graphs, and a missing int8 variant quantised with the export's settings (for benchmarks that
compare the runtime with one graph)."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import onnx
from onnx import compose, helper

from ..manifest import Variant, file_entry, load_manifest, role_of, write_manifest
from .quantize import INT8, quantize_int8

__all__ = ["complete_bundle", "compose_monolithic"]


def complete_bundle(src: Path, dst: Path, notes: list[str], log: Callable[[str], None] = lambda _m: None) -> Path:
    """``src`` itself when it has an int8 variant and monolithic graphs in both variants; else a
    copy at ``dst`` with the missing pieces derived without torch: int8 graphs quantised with the
    export's settings, monolithic graphs composed from the bundle's own graphs. Each addition is
    described in ``notes``."""
    manifest = load_manifest(src)  # a valid bundle to start from
    if "int8" in manifest.variants and all("monolithic" in v.graphs for v in manifest.variants.values()):
        return src
    log(f"{src}: completing the bundle for the benchmark in {dst}")
    shutil.copytree(src, dst)
    variants = dict(manifest.variants)
    if "int8" not in variants:
        (dst / "int8").mkdir(exist_ok=True)
        graphs = {key: f"int8/{Path(rel).name}" for key, rel in variants["fp32"].graphs.items() if key != "monolithic"}
        for key, rel in graphs.items():
            onnx.save(quantize_int8(onnx.load(dst / variants["fp32"].graphs[key]), key, role_of(key)), dst / rel)
        variants["int8"] = Variant("int8", dict(INT8), graphs)
        notes.append("int8 variant quantised by the bench with the export's settings (the bundle has none)")
    for name, variant in variants.items():
        if "monolithic" not in variant.graphs:
            out = f"{name}/monolithic.onnx"
            onnx.save(compose_monolithic(dst, variant.graphs, manifest.modules), dst / out)
            variants[name] = dataclasses.replace(variant, graphs={**variant.graphs, "monolithic": out})
            notes.append(f"{name} monolithic graph composed from the bundle's frontend, module and head graphs "
                         "(the bundle has no exported monolithic.onnx)")
    files = {**manifest.files,  # keeps non-graph files (the language model)
             **{rel: file_entry(dst / rel) for v in variants.values() for rel in v.graphs.values()}}
    write_manifest(dataclasses.replace(manifest, root=dst.resolve(), variants=variants, files=files))
    load_manifest(dst)
    return dst


def compose_monolithic(root: Path, graphs: Mapping[str, str], modules: Sequence[str]) -> Any:
    """One full-depth graph (features, features_lens -> log_probs, log_probs_lens) chained from a
    variant's frontend, its module graphs in the execution order ``modules`` (``Manifest.modules``)
    and the head (an onnx ModelProto)."""
    keys = ["frontend", *modules, "head"]
    nodes: list[Any] = []
    inits: list[Any] = []
    value_info: list[Any] = []
    opsets: dict[str, int] = {}
    ir_version = 0
    current = ""  # name of the hidden state tensor so far
    inputs: list[Any] = []
    outputs: list[Any] = []
    for i, key in enumerate(keys):
        prefix = f"g{i}_"
        model = compose.add_prefix(onnx.load(root / graphs[key]), prefix)
        ir_version = max(ir_version, model.ir_version)
        for imp in model.opset_import:
            opsets[imp.domain] = max(opsets.get(imp.domain, 0), imp.version)
        g = model.graph
        for inp in g.input:
            orig = inp.name[len(prefix):]
            source = {"x": current, "encoder_out": current}.get(orig, orig)  # features, features_lens, x_lens
            nodes.append(helper.make_node("Identity", [source], [inp.name], name=f"wire_{inp.name}"))
            if key == "frontend":
                vi = onnx.ValueInfoProto()
                vi.CopyFrom(inp)
                vi.name = orig
                inputs.append(vi)
        nodes.extend(g.node)
        inits.extend(g.initializer)
        value_info.extend(g.value_info)
        outs = {o.name[len(prefix):]: o for o in g.output}
        if key == "frontend":
            current = outs["x"].name
            nodes.append(helper.make_node("Identity", [outs["x_lens"].name], ["x_lens"], name="wire_x_lens"))
            lens_vi = onnx.ValueInfoProto()
            lens_vi.CopyFrom(outs["x_lens"])
            lens_vi.name = "log_probs_lens"
        elif key == "head":
            nodes.append(helper.make_node("Identity", [outs["log_probs"].name], ["log_probs"], name="out_log_probs"))
            nodes.append(helper.make_node("Identity", ["x_lens"], ["log_probs_lens"], name="out_lens"))
            vi = onnx.ValueInfoProto()
            vi.CopyFrom(outs["log_probs"])
            vi.name = "log_probs"
            outputs += [vi, lens_vi]
        else:
            current = outs["y"].name
    graph = helper.make_graph(nodes, "monolithic_composed", inputs, outputs, initializer=inits, value_info=value_info)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()])
    model.ir_version = ir_version
    return model
