"""PyTorch side of i3d-edge: the I3D model, training-time gating, losses, checkpoint I/O.

Importing this package imports torch; the runtime never does.
"""
