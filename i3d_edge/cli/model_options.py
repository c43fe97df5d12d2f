"""The ModelConfig options shared by ``init`` and ``train``, declared once: their defaults and help
are :class:`~i3d_edge.config.ModelConfig`'s fields, and ModelConfig checks them (one line on error)."""

from __future__ import annotations

import typing
from typing import Any

from ..config import ModelConfig
from ..module_kinds import ARCHITECTURES
from ._common import from_field

__all__ = ["MODEL_OPTIONS", "config_option"]


def config_option(cls: type, name: str, flag: str, **extra: Any) -> tuple[Any, Any]:
    """(type, typer.Option) of config field ``cls.name``: its default and help are the field's."""
    kind = typing.get_type_hints(cls)[name]
    return (str if typing.get_origin(kind) is typing.Literal else kind), from_field(cls, name, flag, **extra)


# ModelConfig field -> its option, in the order of the help
MODEL_OPTIONS: dict[str, tuple[Any, Any]] = {
    **{name: config_option(ModelConfig, name, flag) for name, flag in (
        ("n_layers", "--layers"), ("d_model", "--d-model"), ("n_heads", "--heads"), ("d_ff", "--d-ff"))},
    "gates": config_option(ModelConfig, "gates", "--gates", metavar="global|local|none"),
    "arch": config_option(ModelConfig, "arch", "--arch", metavar="|".join(ARCHITECTURES)),
    "depthwise_kernel": config_option(ModelConfig, "depthwise_kernel", "--depthwise-kernel"),
}
