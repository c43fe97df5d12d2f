"""Frozen configuration dataclasses shared by training, export and runtime (no torch here).

One dataclass per concern, validated in one place (``__post_init__``). Checkpoints and bundle
manifests store them as plain dicts via :meth:`to_dict` / :meth:`from_dict`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import ConfigError
from .module_kinds import ARCHITECTURES

__all__ = [
    "CONFIG_VERSION",
    "GATE_OBJECTIVES",
    "SUBSAMPLING",
    "FeatureConfig",
    "GatePredictor",
    "ModelConfig",
    "TrainConfig",
    "WaveformConfig",
    "check_beam_size",
    "check_lm_weight",
    "check_threshold",
    "check_word_score",
    "encoder_lengths",
    "field_help",
]

CONFIG_VERSION = 1  # bump when a field changes meaning; readers refuse unknown versions
SUBSAMPLING = 4  # conv frontend reduces time by 4: one encoder frame per 4 feature frames

GatePredictor = Literal["global", "local", "none"]
Frontend = Literal["logmel", "waveform"]
Layout = Literal["pre_ln", "post_ln"]
Activation = Literal["relu", "gelu"]


# ---------------------------------------------------------------------------- shared settings
# One range check per setting that several objects carry (the model's default threshold, a
# bundle's manifest, RuntimeOptions; a bundle's decoder section and RuntimeOptions). Each returns
# the value as the type it must have. No float() before the range test: a huge int must not overflow.
def setting(default: Any, text: str) -> Any:
    """A field with its user-facing help (the CLI shows it; ``field_help``)."""
    return field(default=default, metadata={"help": text})


def field_help(cls: type, name: str) -> str:
    """The help text of dataclass field ``cls.name`` (RuntimeOptions, TrainConfig ...)."""
    return str(next(f for f in dataclasses.fields(cls) if f.name == name).metadata.get("help", ""))


def _number(value: Any, what: str, lo: float, hi: float, *, hi_open: bool = False) -> float:
    inside = isinstance(value, (int, float)) and not isinstance(value, bool) and lo <= value \
        and (value < hi if hi_open else value <= hi)
    if not inside:
        raise ConfigError(f"{what} must be in [{lo:g}, {hi:g}{')' if hi_open else ']'}, got {value!r}")
    return float(value)


def check_threshold(value: Any, what: str = "threshold") -> float:
    """A gate threshold: run a module when its gate probability > this; in [0, 1)."""
    return _number(value, what, 0.0, 1.0, hi_open=True)


def check_lm_weight(value: Any, what: str = "lm_weight") -> float:
    """Weight of the LM's log10 probability against the acoustic natural-log score; in [0, 1000]."""
    return _number(value, what, 0.0, 1e3)


def check_word_score(value: Any, what: str = "word_score") -> float:
    """Bonus per emitted word (counters the LM's preference for few words); in [-1000, 1000]."""
    return _number(value, what, -1e3, 1e3)


def check_beam_size(value: Any, what: str = "beam_size") -> int:
    """Hypotheses kept per frame of LM decoding; an integer in [1, 4096]."""
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 4096:
        raise ConfigError(f"{what} must be an integer in [1, 4096], got {value!r}")
    return value


def _from_dict(cls: type, data: Any, what: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{what}: expected a mapping, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{what}: unknown field(s) {', '.join(repr(k)[:40] for k in unknown[:5])}")
    try:
        return cls(**data)
    except TypeError as exc:  # a missing required field
        raise ConfigError(f"{what}: {exc}") from None


def _positive_ints(values: Any, name: str) -> tuple[int, ...]:
    if not isinstance(values, (list, tuple)) or not values or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
        raise ConfigError(f"waveform config: {name} must be a non-empty list of positive integers")
    return tuple(values)


@dataclass(frozen=True)
class WaveformConfig:
    """Raw-waveform frontend of wav2vec2-style models (imported from Hugging Face).

    samples (B, N, 1) -> conv feature encoder (one Conv1d + norm + activation per entry of
    ``conv_dim``) -> LayerNorm + Linear feature projection -> + convolutional positional
    embedding -> (post-LN layout only) the encoder's LayerNorm.
    """

    conv_dim: tuple[int, ...] = (512,) * 7  # channels of each conv layer
    conv_kernel: tuple[int, ...] = (10, 3, 3, 3, 3, 2, 2)
    conv_stride: tuple[int, ...] = (5, 2, 2, 2, 2, 2, 2)  # product: samples per encoder frame
    conv_bias: bool = False
    conv_norm: Literal["group", "layer"] = "group"  # group: GroupNorm on layer 0 only; layer: LN on every layer
    activation: Activation = "gelu"  # of the conv layers and the positional convolution
    proj_norm: bool = True  # LayerNorm before the feature projection
    pos_conv: Literal["wav2vec2", "data2vec"] = "wav2vec2"  # one conv, or a stack of conv + LN(no affine)
    pos_conv_kernel: int = 128
    pos_conv_groups: int = 16
    pos_conv_layers: int = 1  # data2vec: number of stacked positional conv layers

    def __post_init__(self) -> None:
        for name in ("conv_dim", "conv_kernel", "conv_stride"):
            object.__setattr__(self, name, _positive_ints(getattr(self, name), name))
        if not len(self.conv_dim) == len(self.conv_kernel) == len(self.conv_stride):
            raise ConfigError("waveform config: conv_dim, conv_kernel and conv_stride differ in length")
        if self.conv_norm not in ("group", "layer"):
            raise ConfigError(f"waveform config: conv_norm must be group or layer, got {self.conv_norm!r}")
        if self.activation not in ("relu", "gelu"):
            raise ConfigError(f"waveform config: activation must be relu or gelu, got {self.activation!r}")
        if self.pos_conv not in ("wav2vec2", "data2vec"):
            raise ConfigError(f"waveform config: pos_conv must be wav2vec2 or data2vec, got {self.pos_conv!r}")
        for name in ("pos_conv_kernel", "pos_conv_groups", "pos_conv_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"waveform config: {name} must be a positive integer, got {value!r}")
        for name in ("conv_bias", "proj_norm"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"waveform config: {name} must be true or false")

    @property
    def receptive_field(self) -> int:
        """Samples needed for one encoder frame (400 for wav2vec2)."""
        field_ = 1
        for k, s in zip(reversed(self.conv_kernel), reversed(self.conv_stride), strict=True):
            field_ = (field_ - 1) * s + k
        return field_

    @property
    def stride(self) -> int:
        """Samples per encoder frame (320 for wav2vec2)."""
        return math.prod(self.conv_stride)

    def output_lengths(self, n_samples: Any) -> Any:
        """Encoder frames of ``n_samples`` samples (ints or integer numpy arrays), as Hugging Face's
        ``_get_feat_extract_output_lengths``; < 1 when shorter than the receptive field."""
        for k, s in zip(self.conv_kernel, self.conv_stride, strict=True):
            n_samples = (n_samples - k) // s + 1
        return n_samples

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for name in ("conv_dim", "conv_kernel", "conv_stride"):
            data[name] = list(data[name])
        return data

    @classmethod
    def from_dict(cls, data: Any) -> WaveformConfig:
        return _from_dict(cls, data, "waveform config")


@dataclass(frozen=True)
class ModelConfig:
    """Dimensions of an I3D CTC encoder; the checkpoint carries its own copy."""

    n_mels: int = 80  # input feature dimension
    d_model: int = setting(192, "Encoder width D.")
    n_heads: int = setting(4, "Attention heads (must divide the width).")
    d_ff: int = setting(768, "Hidden size of each feed-forward module.")
    n_layers: int = setting(12, "Encoder layers N, each with one gated module per kind of its architecture "
                                "(transformer: MHA and FFN, 2N gates).")
    conv_channels: int = 64  # channels of the two stride-2 conv subsampling layers
    vocab_size: int = 29  # CTC output size, blank included (index 0)
    dropout: float = 0.1  # dropout in attention weights and module outputs (training only)
    gates: GatePredictor = setting(  # noqa: RUF009 (a dataclasses.field, as everywhere here)
        "global", "Gate predictor: global (all 2N gates up front), local (one per layer) or none (a vanilla model).")
    gate_hidden: int = 64  # hidden width of the gate predictor MLP
    gate_threshold: float = 0.5  # default inference threshold: run a module when p > this
    # Imported (wav2vec2-style) models; the defaults are the native log-mel I3D model.
    frontend: Frontend = "logmel"  # logmel: ConvFrontend on (B, T, n_mels); waveform: samples (B, N, 1)
    waveform: WaveformConfig | None = None  # the waveform frontend (frontend == "waveform" only)
    layout: Layout = "pre_ln"  # pre_ln: y = x + f(LN(x)); post_ln: y = LN(x + f(x)); both: skipped = x
    activation: Activation = "relu"  # of the FFN hidden layer
    layer_norm_eps: float = 1e-5  # of the encoder's LayerNorms
    arch: str = setting("transformer", "Layer shape: transformer (MHA, FFN), conformer (MHA, convolution, FFN) or "
                                       "conformer-macaron (half-step FFN, MHA, convolution, half-step FFN).")
    depthwise_kernel: int = setting(15, "Conformer: kernel of the depthwise convolution over time (odd).")

    def __post_init__(self) -> None:
        if not isinstance(self.arch, str) or self.arch not in ARCHITECTURES:
            raise ConfigError(f"model config: arch must be one of {', '.join(ARCHITECTURES)}, got {self.arch!r}")
        k = self.depthwise_kernel
        if not isinstance(k, int) or isinstance(k, bool) or k < 1 or k % 2 == 0:
            raise ConfigError(f"model config: depthwise_kernel must be an odd positive integer, got {k!r}")
        if isinstance(self.waveform, dict):
            object.__setattr__(self, "waveform", WaveformConfig.from_dict(self.waveform))
        if self.waveform is not None and not isinstance(self.waveform, WaveformConfig):
            raise ConfigError(f"model config: waveform must be an object or null, got {type(self.waveform).__name__}")
        if self.frontend not in ("logmel", "waveform"):
            raise ConfigError(f"model config: frontend must be logmel or waveform, got {self.frontend!r}")
        if (self.frontend == "waveform") != isinstance(self.waveform, WaveformConfig):
            raise ConfigError("model config: a waveform frontend needs a waveform config, and only it")
        if self.frontend == "waveform" and self.n_mels != 1:
            raise ConfigError("model config: a waveform frontend reads one value per sample (n_mels 1)")
        if self.layout not in ("pre_ln", "post_ln"):
            raise ConfigError(f"model config: layout must be pre_ln or post_ln, got {self.layout!r}")
        if self.activation not in ("relu", "gelu"):
            raise ConfigError(f"model config: activation must be relu or gelu, got {self.activation!r}")
        if (not isinstance(self.layer_norm_eps, (int, float)) or isinstance(self.layer_norm_eps, bool)
                or not 0.0 < self.layer_norm_eps < 1.0):
            raise ConfigError("model config: layer_norm_eps must be in (0, 1)")
        for name in ("n_mels", "d_model", "n_heads", "d_ff", "n_layers", "conv_channels",
                     "vocab_size", "gate_hidden"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"model config: {name} must be a positive integer, got {value!r}")
        if self.d_model % self.n_heads or ((self.d_model // self.n_heads) % 2 and self.frontend == "logmel"):
            raise ConfigError(
                f"model config: d_model {self.d_model} must split into {self.n_heads} heads "
                "of even size")
        if self.d_model % 2 and self.frontend == "logmel":
            raise ConfigError("model config: d_model must be even (sinusoidal positions)")
        if self.vocab_size < 2:
            raise ConfigError("model config: vocab_size must be >= 2 (blank + one token)")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model config: dropout must be in [0, 1), got {self.dropout}")
        if self.gates not in ("global", "local", "none"):
            raise ConfigError(
                f"model config: gates must be global, local or none, got {self.gates!r}")
        object.__setattr__(self, "gate_threshold", check_threshold(self.gate_threshold, "model config: gate_threshold"))

    @property
    def layer_kinds(self) -> tuple[str, ...]:
        """The module kinds of one layer, in execution order (``module_kinds.ARCHITECTURES``)."""
        return ARCHITECTURES[self.arch]

    @property
    def n_gates(self) -> int:
        """Number of gated modules (one per kind per layer), also for vanilla models."""
        return len(self.layer_kinds) * self.n_layers

    @property
    def module_names(self) -> tuple[str, ...]:
        """Execution order of the gated modules: layer00.mha, layer00.ffn, layer01.mha, ..."""
        return tuple(f"layer{i:02d}.{kind}" for i in range(self.n_layers) for kind in self.layer_kinds)

    def encoder_lengths(self, feature_lengths: Any) -> Any:
        """Encoder frames of ``feature_lengths`` input frames (log-mel) or samples (waveform)."""
        if self.waveform is not None:
            return self.waveform.output_lengths(feature_lengths)
        return encoder_lengths(feature_lengths)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if self.waveform is not None:
            data["waveform"] = self.waveform.to_dict()
        if (data["arch"], data["depthwise_kernel"]) == ("transformer", 15):
            del data["arch"], data["depthwise_kernel"]  # a transformer as before conformers: older releases read it
        return data

    @classmethod
    def from_dict(cls, data: Any) -> ModelConfig:
        return _from_dict(cls, data, "model config")


@dataclass(frozen=True)
class FeatureConfig:
    """Log-mel front end settings and the global normalisation statistics."""

    sample_rate: int = 16000  # Hz; audio is resampled to this
    n_mels: int = 80  # mel bands
    n_fft: int = 512  # FFT size (>= win_length)
    win_length: int = 400  # 25 ms analysis window (samples)
    hop_length: int = 160  # 10 ms hop (samples)
    f_min: float = 20.0  # lowest mel filter edge (Hz)
    f_max: float = 7600.0  # highest mel filter edge (Hz), <= sample_rate / 2
    mean: tuple[float, ...] = field(default_factory=tuple)  # per-band mean, () = no shift
    std: tuple[float, ...] = field(default_factory=tuple)  # per-band std, () = no scaling
    # "waveform": the features are the samples themselves, (N, 1); win_length is then the model's
    # receptive field and hop_length its stride (samples per encoder frame); n_mels is 1.
    kind: Literal["log_mel", "waveform"] = "log_mel"
    do_normalize: bool = False  # waveform: zero mean, unit variance per utterance (HF feature extractor)
    # Seconds of digital silence put before and after every segment the runtime transcribes (and every
    # training utterance) before its features: a model trained on recordings with margins reads audio
    # cut at the word (FSDD's takes, a VAD's segment) better with them. Token times exclude it.
    edge_silence: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("log_mel", "waveform"):
            raise ConfigError(f"feature config: kind must be log_mel or waveform, got {self.kind!r}")
        if not isinstance(self.do_normalize, bool) or (self.do_normalize and self.kind != "waveform"):
            raise ConfigError("feature config: do_normalize is a true/false setting of waveform features")
        if self.kind == "waveform" and (self.n_mels != 1 or self.mean or self.std):
            raise ConfigError("feature config: waveform features have n_mels 1 and no mean/std")
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        for name in ("sample_rate", "n_mels", "n_fft", "win_length", "hop_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"feature config: {name} must be a positive integer, got {value!r}")
        if self.win_length > self.n_fft:
            raise ConfigError("feature config: win_length must be <= n_fft")
        if not 0.0 <= self.f_min < self.f_max <= self.sample_rate / 2:
            raise ConfigError("feature config: need 0 <= f_min < f_max <= sample_rate / 2")
        for name in ("mean", "std"):
            values = getattr(self, name)
            if values and len(values) != self.n_mels:
                raise ConfigError(f"feature config: {name} has {len(values)} values, expected {self.n_mels}")
        if any(not math.isfinite(v) for v in self.mean + self.std):
            raise ConfigError("feature config: mean and std values must be finite numbers")
        if any(not (v > 0.0) for v in self.std):
            raise ConfigError("feature config: std values must be > 0")
        if (not isinstance(self.edge_silence, int | float) or isinstance(self.edge_silence, bool)
                or not 0.0 <= self.edge_silence <= 1.0):
            raise ConfigError(f"feature config: edge_silence must be 0-1 seconds, got {self.edge_silence!r}")
        object.__setattr__(self, "edge_silence", float(self.edge_silence))

    @property
    def min_samples(self) -> int:
        """Shortest input (samples) giving one encoder frame: 7 feature frames (waveform: the
        receptive field)."""
        if self.kind == "waveform":
            return self.win_length
        return self.win_length + 6 * self.hop_length

    @property
    def encoder_frame_seconds(self) -> float:
        """Seconds between encoder frames (CTC outputs)."""
        return (1 if self.kind == "waveform" else SUBSAMPLING) * self.hop_length / self.sample_rate

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["mean"] = list(self.mean)
        data["std"] = list(self.std)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> FeatureConfig:
        return _from_dict(cls, data, "feature config")


# ---------------------------------------------------------------------------- training
# target: |batch mean p - gate_target| (one fixed subset satisfies it: gates tend to become static);
# expected: mean p, the paper's form: every executed module costs lambda, whatever the input;
# utterance: mean over utterances of max(0, p_u - gate_target): each utterance pays only for the
#   compute it spends above the budget.
GATE_OBJECTIVES = ("target", "expected", "utterance")
# Each of these is minimised by one fixed subset of modules as well as by input-dependent gates, and
# in practice (benchmarks/DEPTH.md) the predictor falls into a fixed subset. ``gate_diversity`` adds
# the variance reward of Bengio et al. (2015, "Conditional computation in neural networks for faster
# models", L_v): minus the mean over gates of the across-batch variance of the gate probabilities,
# which is zero for a fixed subset and grows as gates open for some inputs and close for others.


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (the model's dimensions live in ModelConfig), carried in checkpoints."""

    lr: float = setting(1.5e-3, "Peak AdamW learning rate.")
    weight_decay: float = 1e-2
    warmup_steps: int = setting(800, "Linear learning-rate warm-up steps.")
    max_steps: int = setting(30_000, "Steps: the cosine decay horizon and the hard stop.")
    batch_frames: int = setting(24_000, "Padded feature frames per batch (24,000: about 240 s of audio).")
    gate_warmup_steps: int = setting(2_000, "Steps with every gate open before the gates learn.")
    gate_lambda: float = setting(2.0, "Weight of the gate regulariser.")
    gate_target: float | None = setting(0.5, "Executed fraction the regulariser pulls towards, or the "
                                              "per-utterance budget of the utterance objective (0: minimise).")
    gate_objective: str = setting("target", "Gate regulariser: |batch mean - target| (target), the expected "
                                             "executed fraction as in the I3D paper (expected), or each "
                                             "utterance's fraction above the target (utterance).")
    gate_diversity: float = setting(0.0, "Weight of a reward for gates that differ between the utterances of "
                                          "a batch (0: off).")
    gate_lr_scale: float = setting(1.0, "Learning rate of the gate predictor relative to the learning rate.")
    temperature: float = setting(1.0, "Gumbel-sigmoid temperature when gating starts.")
    temperature_end: float | None = setting(None, "Anneal the temperature geometrically to this by the last "
                                                   "step (0: constant).")
    train_only: str = setting("all", "all: every weight; gates: only the gate predictor of a trained model "
                                      "(the rest frozen).")
    reinit_gates: bool = setting(False, "Restart the gate predictor of the initial checkpoint with every gate "
                                         "open (a saturated predictor does not learn).")
    grad_clip: float = 5.0
    eval_every: int = 250
    save_every: int = 100
    seed: int = setting(0, "Random seed.")
    specaugment: bool = setting(True, "SpecAugment time and frequency masks on training batches.")
    max_len: int = 2_000  # drop training utterances longer than this many frames (20 s)
    fit_to_time: bool = setting(False, "Rescale the step schedule so that the run ends at its time limit.")
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes kept with the run

    def __post_init__(self) -> None:
        for name in ("gate_target", "temperature_end"):  # 0 means none (minimise / constant), as on the CLI
            if getattr(self, name) == 0:
                object.__setattr__(self, name, None)
        if self.lr <= 0 or self.max_steps < 1 or self.batch_frames < 100:
            raise ConfigError("train config: lr > 0, max_steps >= 1 and batch_frames >= 100 are required")
        if self.gate_target is not None and not 0.0 < self.gate_target <= 1.0:
            raise ConfigError("train config: gate_target must be in (0, 1]")
        if self.gate_objective not in GATE_OBJECTIVES:
            raise ConfigError(f"train config: gate_objective must be one of {', '.join(GATE_OBJECTIVES)}, "
                              f"got {self.gate_objective!r}")
        if self.gate_objective == "utterance" and self.gate_target is None:
            raise ConfigError("train config: the utterance objective needs a gate_target (the per-utterance budget)")
        if self.train_only not in ("all", "gates"):
            raise ConfigError(f"train config: train_only must be 'all' or 'gates', got {self.train_only!r}")
        if not 0.0 < self.gate_lr_scale <= 100.0:
            raise ConfigError("train config: gate_lr_scale must be in (0, 100]")
        if not 0.0 <= self.gate_diversity <= 100.0:
            raise ConfigError("train config: gate_diversity must be in [0, 100]")
        for t in (self.temperature, self.temperature_end):
            if t is not None and not 0.0 < t <= 100.0:
                raise ConfigError("train config: temperatures must be in (0, 100]")


def encoder_lengths(feature_lengths: Any) -> Any:
    """Encoder frames after the x4 conv subsampling (two kernel-3 stride-2 convs).

    Works on ints and on integer numpy arrays; torch and ONNX graphs use the same formula.
    """
    return ((feature_lengths - 1) // 2 - 1) // 2
