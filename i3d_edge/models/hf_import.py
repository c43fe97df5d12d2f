"""Import a Hugging Face CTC model (a local directory or a Hub model id) into an ordinary i3d-edge checkpoint.

Supported: ``Wav2Vec2ForCTC``, ``HubertForCTC`` and ``Data2VecAudioForCTC``, in the post-LN
("base") and pre-LN ("stable layer norm", large) layouts. The directory holds ``config.json``,
``model.safetensors`` (or a sharded ``model.safetensors.index.json``) or ``pytorch_model.bin``,
``vocab.json`` and the feature extractor's settings, in ``preprocessor_config.json`` and/or (as
transformers 5 saves a processor) the ``feature_extractor`` section of ``processor_config.json``.
A model id is fetched into the Hugging Face cache first (``hf_hub.py``). Nothing is executed: JSON
is parsed, safetensors read as data, ``.bin`` files loaded with ``torch.load(weights_only=True)``.

The result has a global gate predictor that opens every gate (last layer weight 0, bias +3:
p = 0.95 > 0.5), so the imported checkpoint transcribes exactly as the source model until its
gates are trained. Every expected weight's shape is checked against the config on the ``meta``
device before a real model is allocated.
"""

from __future__ import annotations

import json
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..config import FeatureConfig, ModelConfig, WaveformConfig
from ..errors import ConfigError, SourceModelError, first_line
from ..extras import install_hint
from ..limits import LIMITS
from ..manifest import check_token_text
from ..tokens import BLANK, SEPARATOR, TokenTable
from .checkpoint import Checkpoint, check_zip_records
from .i3d import I3DModel
from .wav2vec2 import fold_weight_norm

__all__ = ["SUPPORTED", "SourceModel", "import_hf_model", "read_source"]

# model_type -> (CTC class name, state-dict prefix of the base model)
SUPPORTED: dict[str, tuple[str, str]] = {
    "wav2vec2": ("Wav2Vec2ForCTC", "wav2vec2."),
    "hubert": ("HubertForCTC", "hubert."),
    "data2vec-audio": ("Data2VecAudioForCTC", "data2vec_audio."),
}
_MAX_JSON_BYTES = 10 * 1024 * 1024  # config / vocab / preprocessor files are small
_LIMITS = {"hidden_size": 16384, "intermediate_size": 65536, "num_hidden_layers": 512,
           "num_attention_heads": 1024, "vocab_size": 1_000_000}


@dataclass(frozen=True)
class SourceModel:
    """What the importer read from a directory, before conversion."""

    path: Path
    model_type: str
    config: dict[str, Any]
    vocab: dict[str, int]
    preprocessor: dict[str, Any]
    weights_file: str  # relative name of the weights (or index) file


def _fail(path: Path, cause: str) -> SourceModelError:
    return SourceModelError(f"{path}: {cause}")


def _read_json(path: Path, required: bool) -> Any:
    if not path.is_file():
        if required:
            raise _fail(path.parent, f"missing {path.name} (not a Hugging Face model directory)")
        return None
    try:
        if path.stat().st_size > _MAX_JSON_BYTES:
            raise _fail(path, "too large for a model's JSON file")
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise _fail(path, f"unreadable JSON ({first_line(exc, 120)})"
                    ) from None


# Settings of transformers' Wav2Vec2FeatureExtractor, as it writes them, and the check of each value;
# a setting not listed is an error (it might change the input in a way the import would not reproduce).
_FE_SETTINGS: dict[str, Any] = {
    "feature_extractor_type": lambda v: v == "Wav2Vec2FeatureExtractor",
    "feature_size": lambda v: v == 1,  # one value per sample: mono waveform
    "sampling_rate": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "do_normalize": lambda v: isinstance(v, bool),
    "return_attention_mask": lambda v: isinstance(v, bool),  # rows are computed as if alone: no effect
    "padding_value": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),  # idem
    "padding_side": lambda v: v in ("right", "left"),  # idem
    "processor_class": lambda v: isinstance(v, str),
}
_PROCESSOR_KEYS = ("processor_class", "auto_map")  # top-level keys of processor_config.json besides sections
_FE_FILES = ("preprocessor_config.json", "processor_config.json")


def _fe_section(path: Path, name: str) -> dict[str, Any] | None:
    """The feature-extractor settings in one of the files transformers writes, or None without the file:
    ``preprocessor_config.json`` (flat, transformers 4 and a saved feature extractor) or
    ``processor_config.json`` (a saved processor in transformers 5: a ``feature_extractor`` section)."""
    data = _read_json(path / name, False)
    if data is None:
        return None
    where = path / name
    if not isinstance(data, dict):
        raise _fail(where, "not a JSON object")
    if name == "processor_config.json":
        section = data.get("feature_extractor", {})
        if not isinstance(section, dict):
            raise _fail(where, "feature_extractor is not a JSON object")
        flat = {k: v for k, v in data.items() if k not in ("feature_extractor", "tokenizer", *_PROCESSOR_KEYS)}
        data = {**flat, **section}
        for key in set(flat) & set(section):
            if flat[key] != section[key]:
                raise _fail(where, f"contradictory {key}: {flat[key]!r} and {section[key]!r} in feature_extractor")
    for key, value in data.items():
        if key not in _FE_SETTINGS:
            raise _fail(where, f"unknown feature-extractor setting {key[:40]!r} (known: {', '.join(_FE_SETTINGS)})")
        if not _FE_SETTINGS[key](value):
            raise _fail(where, f"unsupported {key} {repr(value)[:40]}")
    return data


def read_feature_extractor(path: Path, do_normalize: bool | None = None) -> dict[str, Any]:
    """The feature-extractor settings of a model directory, from every file transformers writes them
    to; a setting the files give differently, or ``do_normalize`` (given by the user) against a file,
    is an error. Without any file, ``do_normalize`` must be given: it is never guessed."""
    found = [(name, section) for name in _FE_FILES if (section := _fe_section(path, name)) is not None]
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for name, section in found:
        for key, value in section.items():
            if key in merged and merged[key] != value:
                raise _fail(path, f"contradictory {key}: {merged[key]!r} in {origin[key]}, {value!r} in {name}")
            merged[key], origin[key] = value, name
    if not found and do_normalize is None:
        raise _fail(path, "no preprocessor_config.json or processor_config.json: whether the model expects "
                          "normalised audio is unknown (give --normalize or --no-normalize)")
    if do_normalize is not None:
        if found and merged.get("do_normalize", True) != do_normalize:
            raise _fail(path / origin.get("do_normalize", found[0][0]),
                        f"do_normalize is {merged.get('do_normalize', True)}, contradicting the "
                        f"{'--normalize' if do_normalize else '--no-normalize'} given")
        merged["do_normalize"] = do_normalize
    return merged


def read_source(src: str | Path, *, do_normalize: bool | None = None) -> SourceModel:
    """Check a directory's files and config; one-line :class:`SourceModelError` on any problem.
    ``do_normalize``: the user's answer where the directory has no feature-extractor settings."""
    path = Path(src)
    if not path.exists():
        raise _fail(path, "no such model directory")
    if not path.is_dir():
        raise _fail(path, "not a directory (expected a Hugging Face model directory)")
    config = _read_json(path / "config.json", True)
    if not isinstance(config, dict):
        raise _fail(path / "config.json", "not a JSON object")
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or model_type not in SUPPORTED:
        raise _fail(path / "config.json", f"unsupported model_type {str(model_type)[:40]!r} "
                    f"(supported: {', '.join(SUPPORTED)})")
    archs = config.get("architectures")
    ctc = SUPPORTED[model_type][0]
    if archs is not None and (not isinstance(archs, list) or ctc not in archs):
        raise _fail(path / "config.json", f"architectures {str(archs)[:80]} is not {ctc} "
                    "(only CTC speech recognition models can be imported)")
    for name in ("add_adapter", "conv_pos_batch_norm", "use_weighted_layer_sum"):
        if config.get(name):
            raise _fail(path / "config.json", f"{name} is not supported")
    vocab = _read_json(path / "vocab.json", True)
    if not isinstance(vocab, dict) or not vocab or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in vocab.items()):
        raise _fail(path / "vocab.json", "expected a JSON object of token -> id")
    if sorted(vocab.values()) != list(range(len(vocab))):
        raise _fail(path / "vocab.json", "token ids are not 0..N-1 without gaps or duplicates")
    pre = read_feature_extractor(path, do_normalize)
    for name in ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"):
        if (path / name).is_file():
            return SourceModel(path, model_type, config, vocab, pre, name)
    raise _fail(path, "missing model.safetensors or pytorch_model.bin (no weights)")


def _get(cfg: dict[str, Any], key: str, default: Any, kind: type | tuple[type, ...], where: Path) -> Any:
    value = cfg.get(key, default)
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise _fail(where, f"{key} has the wrong type ({type(value).__name__})")
    if key in _LIMITS and not 1 <= value <= _LIMITS[key]:
        raise _fail(where, f"{key} {value} is out of range (1..{_LIMITS[key]})")
    return value


def _act(cfg: dict[str, Any], key: str, where: Path) -> str:
    value = cfg.get(key, "gelu")
    if value not in ("gelu", "relu"):
        raise _fail(where, f"{key} {str(value)[:30]!r} is not supported (gelu or relu)")
    return str(value)


def convert_config(src: SourceModel) -> tuple[ModelConfig, FeatureConfig]:
    """The i3d-edge model and feature configs of a source model."""
    c, where = src.config, src.path / "config.json"
    conv_dim = _get(c, "conv_dim", [512] * 7, list, where)
    wave_args: dict[str, Any] = {
        "conv_dim": conv_dim,
        "conv_kernel": _get(c, "conv_kernel", [10, 3, 3, 3, 3, 2, 2], list, where),
        "conv_stride": _get(c, "conv_stride", [5, 2, 2, 2, 2, 2, 2], list, where),
        "conv_bias": _get(c, "conv_bias", False, bool, where),
        "activation": _act(c, "feat_extract_activation", where),
        "pos_conv_groups": _get(c, "num_conv_pos_embedding_groups", 16, int, where),
    }
    if len(conv_dim) > 32 or any(isinstance(v, int) and v > 16384 for v in conv_dim):
        raise _fail(where, "conv_dim is out of range")
    if src.model_type == "data2vec-audio":
        wave_args.update(conv_norm="layer", proj_norm=True, pos_conv="data2vec",
                         pos_conv_kernel=_get(c, "conv_pos_kernel_size", 19, int, where),
                         pos_conv_layers=_get(c, "num_conv_pos_embeddings", 5, int, where))
        layout = "post_ln"
    else:
        norm = c.get("feat_extract_norm", "group")
        if norm not in ("group", "layer"):
            raise _fail(where, f"feat_extract_norm {str(norm)[:30]!r} is not supported (group or layer)")
        wave_args.update(conv_norm=norm, pos_conv="wav2vec2",
                         pos_conv_kernel=_get(c, "num_conv_pos_embeddings", 128, int, where),
                         proj_norm=(_get(c, "feat_proj_layer_norm", True, bool, where)
                                    if src.model_type == "hubert" else True))
        layout = "pre_ln" if _get(c, "do_stable_layer_norm", False, bool, where) else "post_ln"
    dropout = _get(c, "hidden_dropout", 0.1, (int, float), where)
    try:
        wave = WaveformConfig(**wave_args)
        model_config = ModelConfig(
            n_mels=1,
            d_model=_get(c, "hidden_size", 768, int, where),
            n_heads=_get(c, "num_attention_heads", 12, int, where),
            d_ff=_get(c, "intermediate_size", 3072, int, where),
            n_layers=_get(c, "num_hidden_layers", 12, int, where),
            vocab_size=_get(c, "vocab_size", len(src.vocab), int, where),
            dropout=float(dropout) if 0.0 <= dropout < 1.0 else 0.1,
            gates="global",
            frontend="waveform", waveform=wave, layout=layout,  # type: ignore[arg-type]
            activation=_act(c, "hidden_act", where),  # type: ignore[arg-type]
            layer_norm_eps=float(_get(c, "layer_norm_eps", 1e-5, (int, float), where)),
        )
        rate = src.preprocessor.get("sampling_rate", 16000)  # transformers' defaults where a file omits them
        feature_config = FeatureConfig(
            sample_rate=rate, n_mels=1, n_fft=wave.receptive_field, win_length=wave.receptive_field,
            hop_length=wave.stride, f_min=0.0, f_max=rate / 2, kind="waveform",
            do_normalize=src.preprocessor.get("do_normalize", True))
        # what export, train and the runtime check when they read the checkpoint or bundle, checked now
        LIMITS.check_model(model_config)
        LIMITS.check_features(feature_config)
        LIMITS.check_frontend(model_config, feature_config)  # e.g. pos_conv_groups must divide hidden_size
        ModelConfig.from_dict(model_config.to_dict())
        FeatureConfig.from_dict(feature_config.to_dict())
    except ConfigError as exc:
        raise _fail(where, str(exc)) from None
    return model_config, feature_config


def convert_tokens(src: SourceModel, vocab_size: int) -> tuple[TokenTable, list[int]]:
    """The token table (blank first, ``|`` as the word separator) and, per new index, the source
    index (the order of the CTC head's rows)."""
    where = src.path / "vocab.json"
    if len(src.vocab) != vocab_size:
        raise _fail(where, f"{len(src.vocab)} tokens but the config's vocab_size is {vocab_size}")
    by_id = sorted(src.vocab, key=src.vocab.__getitem__)  # token strings in source id order
    blank = _get(src.config, "pad_token_id", 0, int, src.path / "config.json")
    if not 0 <= blank < len(by_id):
        raise _fail(src.path / "config.json", f"pad_token_id {blank} (the CTC blank) is not a token id")
    delimiter = src.config.get("word_delimiter_token", "|")
    order = [blank, *(i for i in range(len(by_id)) if i != blank)]
    names = []
    for i in order:
        token = by_id[i]
        if i == blank:
            token = BLANK
        elif token == delimiter and SEPARATOR not in src.vocab:
            token = SEPARATOR
        names.append(token)
    try:
        table = TokenTable(tuple(names))
        check_token_text(table)  # a token "\n" would split one result into several output lines
        return table, order
    except ConfigError as exc:
        raise _fail(where, str(exc)) from None


def _load_file(src: SourceModel, name: str) -> dict[str, torch.Tensor]:
    path = src.path / name
    try:
        if name.endswith(".safetensors"):
            from safetensors.torch import load_file

            return load_file(str(path))
        check_zip_records(path, SourceModelError)  # a compressed record must not unpack to gigabytes
        with warnings.catch_warnings():  # e.g. "pickle protocol 4": the refusal below is the one message
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location="cpu", weights_only=True)
    except SourceModelError:
        raise
    except ModuleNotFoundError:
        raise _fail(path, f"reading safetensors needs the 'safetensors' package: {install_hint('import')}") from None
    except pickle.UnpicklingError:
        raise _fail(path, "refused: the file carries pickled Python objects, only tensors are loaded") from None
    except Exception as exc:  # damaged files raise many types
        raise _fail(path, f"corrupt or unreadable weights ({type(exc).__name__})") from None
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise _fail(path, "not a mapping of tensors")
    return data


def read_weights(src: SourceModel) -> dict[str, torch.Tensor]:
    """All tensors of the source model, by their Hugging Face names."""
    if src.weights_file != "model.safetensors.index.json":
        return _load_file(src, src.weights_file)
    index = _read_json(src.path / src.weights_file, True)
    shards = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(shards, dict) or not all(isinstance(v, str) for v in shards.values()):
        raise _fail(src.path / src.weights_file, "no weight_map")
    weights: dict[str, torch.Tensor] = {}
    for shard in sorted(set(shards.values())):
        if Path(shard).name != shard or not shard.endswith(".safetensors"):
            raise _fail(src.path / src.weights_file, f"shard name {shard[:60]!r} is not a file in the directory")
        if not (src.path / shard).is_file():
            raise _fail(src.path / shard, "missing weights shard")
        weights.update(_load_file(src, shard))
    return weights


def _take(weights: dict[str, torch.Tensor], key: str, src: SourceModel) -> torch.Tensor:
    if key not in weights:
        raise _fail(src.path / src.weights_file, f"missing weight {key!r}")
    if not weights[key].is_floating_point():  # complex would lose its imaginary part, integers are no weights
        raise _fail(src.path / src.weights_file, f"weight {key!r} is {weights[key].dtype}, not a real float tensor")
    return weights[key].to(torch.float32)


def convert_state_dict(src: SourceModel, cfg: ModelConfig, weights: dict[str, torch.Tensor],
                       order: list[int]) -> dict[str, torch.Tensor]:
    """Hugging Face names -> I3DModel names (without the gate predictor)."""
    assert cfg.waveform is not None
    base = SUPPORTED[src.model_type][1]
    if not any(k.startswith(base) for k in weights):  # a bare base model saved without its prefix
        base = ""
    w = lambda key: _take(weights, base + key, src)  # noqa: E731
    sd: dict[str, torch.Tensor] = {}
    for i in range(len(cfg.waveform.conv_dim)):
        hf = f"feature_extractor.conv_layers.{i}."
        sd[f"frontend.conv_layers.{i}.conv.weight"] = w(hf + "conv.weight")
        if cfg.waveform.conv_bias:
            sd[f"frontend.conv_layers.{i}.conv.bias"] = w(hf + "conv.bias")
        if cfg.waveform.conv_norm == "layer" or i == 0:
            for p in ("weight", "bias"):
                sd[f"frontend.conv_layers.{i}.norm.{p}"] = w(hf + f"layer_norm.{p}")
    for p in ("weight", "bias"):
        if cfg.waveform.proj_norm:
            sd[f"frontend.proj_norm.{p}"] = w(f"feature_projection.layer_norm.{p}")
        sd[f"frontend.proj.{p}"] = w(f"feature_projection.projection.{p}")
        sd[f"{'frontend.norm' if cfg.layout == 'post_ln' else 'head.norm'}.{p}"] = w(f"encoder.layer_norm.{p}")
    if cfg.waveform.pos_conv == "data2vec":
        for j in range(cfg.waveform.pos_conv_layers):
            for p in ("weight", "bias"):
                sd[f"frontend.pos_conv.{j}.conv.{p}"] = w(f"encoder.pos_conv_embed.layers.{j}.conv.{p}")
    else:
        pc = "encoder.pos_conv_embed.conv."
        pairs = [("parametrizations.weight.original0", "parametrizations.weight.original1"),
                 ("weight_g", "weight_v")]
        for g, v in pairs:
            if base + pc + g in weights:
                sd["frontend.pos_conv.0.conv.weight"] = fold_weight_norm(w(pc + g), w(pc + v))
                break
        else:
            sd["frontend.pos_conv.0.conv.weight"] = w(pc + "weight")
        sd["frontend.pos_conv.0.conv.bias"] = w(pc + "bias")
    for i in range(cfg.n_layers):
        hf = f"encoder.layers.{i}."
        for p in ("weight", "bias"):
            sd[f"mha.{i}.qkv.{p}"] = torch.cat([w(hf + f"attention.{n}_proj.{p}") for n in "qkv"])
            sd[f"mha.{i}.proj.{p}"] = w(hf + f"attention.out_proj.{p}")
            sd[f"mha.{i}.norm.{p}"] = w(hf + f"layer_norm.{p}")
            sd[f"ffn.{i}.norm.{p}"] = w(hf + f"final_layer_norm.{p}")
            sd[f"ffn.{i}.fc1.{p}"] = w(hf + f"feed_forward.intermediate_dense.{p}")
            sd[f"ffn.{i}.fc2.{p}"] = w(hf + f"feed_forward.output_dense.{p}")
    rows = torch.tensor(order)
    sd["head.linear.weight"] = _take(weights, "lm_head.weight", src)[rows]
    sd["head.linear.bias"] = _take(weights, "lm_head.bias", src)[rows]
    return sd


def _check_shapes(src: SourceModel, cfg: ModelConfig, sd: dict[str, torch.Tensor]) -> None:
    """Every converted tensor against the model's parameter shapes, without allocating the model."""
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in I3DModel(cfg).state_dict().items() if not k.startswith("gate.")}
    missing = sorted(set(expected) - set(sd))
    if missing:  # a converter bug rather than a user error, but still one line
        raise _fail(src.path, f"cannot map weight(s) {', '.join(missing[:3])}")
    for key, shape in expected.items():
        if tuple(sd[key].shape) != shape:
            raise _fail(src.path / src.weights_file, f"weight for {key} has shape {tuple(sd[key].shape)}, "
                        f"the config implies {shape}")
        if not bool(torch.isfinite(sd[key]).all()):
            raise _fail(src.path / src.weights_file, f"weight for {key} has NaN or Inf values")


def import_hf_model(src: str | Path, *, seed: int = 0, revision: str | None = None,
                    do_normalize: bool | None = None) -> Checkpoint:
    """Read a Hugging Face CTC model (a local directory, or a Hub model id resolved through
    ``huggingface_hub`` and its cache) and return an i3d-edge checkpoint with open gates.

    Everything export, training and the runtime would refuse is refused here, before the weights
    are read. ``do_normalize`` answers for a model without feature-extractor settings (and must agree
    with them where there are some)."""
    from .hf_hub import download_model, looks_like_model_id

    if revision is not None and not looks_like_model_id(str(src)):
        raise _fail(Path(src), "a revision is for Hub model ids, not a local directory")
    hub: dict[str, str] = {}
    if looks_like_model_id(str(src)):
        model_id, src = str(src), download_model(str(src), revision)
        hub = {"model_id": model_id, "revision": revision or "main", "commit": src.name}
    source = read_source(src, do_normalize=do_normalize)
    model_config, feature_config = convert_config(source)
    tokens, order = convert_tokens(source, model_config.vocab_size)
    weights = read_weights(source)
    sd = convert_state_dict(source, model_config, weights, order)
    del weights
    _check_shapes(source, model_config, sd)
    torch.manual_seed(seed)
    model = I3DModel(model_config)  # gate predictor: every gate open (last layer 0, bias +3)
    model.load_state_dict({**model.state_dict(), **sd})
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    n_params = sum(v.numel() for v in sd.values())
    provenance = {"imported_from": {"path": str(source.path.resolve()), "model_type": source.model_type,
                                    "class": SUPPORTED[source.model_type][0], "layout": model_config.layout,
                                    "parameters": n_params, "blank_source_id": order[0], **hub}}
    return Checkpoint(model_config, feature_config, tokens, state, train_state=provenance)
