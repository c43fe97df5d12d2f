"""Torch-free tools on exported bundles, between the runtime and export: what a bundle holds
(:mod:`.inspection`, with :mod:`.onnx_wire` reading graphs without onnx), attaching a word language
model (:mod:`.language_model`) and SIGTERM handling for writers (:mod:`.signals`). They use the
runtime only through its public checks (``i3d_edge.runtime.check_bundle``) and never import torch.
"""
