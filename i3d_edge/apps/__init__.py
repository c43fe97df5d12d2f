"""Applications built on the shared contracts and the runtime: corpus evaluation (``i3d-edge eval``),
gate analysis (``i3d-edge analyze``) and the benchmark (``i3d-edge bench``)."""
