"""CPU-friendly, resumable I3D training: CTC + lambda * gate regulariser.

Schedule: linear LR warm-up then cosine decay; all gates held open for ``gate_warmup_steps``
(the I3D paper's advice on small data), then Gumbel-sigmoid gating with a straight-through
estimator and the regulariser (``gate_objective``, see :func:`gate_loss`), with the Gumbel
temperature annealed from ``temperature`` to ``temperature_end``. ``train_only="gates"`` trains
the gate predictor alone on top of a trained model (frontend, modules and head frozen, in eval
mode); ``reinit_gates`` restarts a saturated predictor from "every gate open".
``run_dir/last.pt`` is written every ``save_every`` steps and at the end; a rerun with the same
``run_dir`` resumes from it. ``run_dir/best.pt`` keeps the
checkpoint with the lowest dev CER. Progress goes to ``run_dir/train.log`` as JSON lines.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..config import FeatureConfig, ModelConfig
from ..ctc import greedy_decode
from ..errors import ConfigError
from ..scoring import score
from ..tokens import TokenTable
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .data import FeatureSet
from .i3d import I3DModel

__all__ = ["GATE_OBJECTIVES", "TrainConfig", "evaluate", "gate_diversity", "gate_loss", "reset_gate_predictor",
           "train"]

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
    """Optimisation settings (the model's dimensions live in ModelConfig)."""

    lr: float = 1.5e-3  # peak AdamW learning rate
    weight_decay: float = 1e-2
    warmup_steps: int = 800  # linear LR warm-up
    max_steps: int = 30_000  # cosine decay horizon and hard stop
    batch_frames: int = 24_000  # padded feature frames per batch (~240 s of audio)
    gate_warmup_steps: int = 2_000  # all gates open until this step
    gate_lambda: float = 2.0  # weight of the gate regulariser
    gate_target: float | None = 0.5  # executed fraction the regulariser pulls towards (None: minimise)
    gate_objective: str = "target"  # one of GATE_OBJECTIVES (target with gate_target None: expected)
    gate_diversity: float = 0.0  # weight of the across-batch gate-variance reward (0: off)
    gate_lr_scale: float = 1.0  # the gate predictor's learning rate relative to lr (slows saturation)
    temperature: float = 1.0  # Gumbel-sigmoid temperature when gating starts
    temperature_end: float | None = None  # anneal geometrically to this by max_steps (None: constant)
    train_only: str = "all"  # "all": every weight; "gates": only the gate predictor(s)
    reinit_gates: bool = False  # with --init: restart the gate predictor with every gate open
    grad_clip: float = 5.0
    eval_every: int = 250
    save_every: int = 100
    seed: int = 0
    specaugment: bool = True
    max_len: int = 2_000  # drop training utterances longer than this many frames (20 s)
    fit_to_time: bool = False  # rescale max/warm-up/gate-warm-up steps so the run ends at max_minutes
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes kept with the run

    def __post_init__(self) -> None:
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


def gate_loss(gate_probs: torch.Tensor, target: float | None, objective: str = "target") -> torch.Tensor:
    """Gate regulariser on (B, G) gate probabilities; see ``GATE_OBJECTIVES``."""
    if objective == "utterance":
        if target is None:
            raise ConfigError("the utterance objective needs a target")
        return (gate_probs.mean(1) - target).clamp(min=0.0).mean()  # (B,) -> scalar
    fraction = gate_probs.mean()
    if objective == "expected" or target is None:
        return fraction
    return (fraction - target).abs()


def gate_diversity(gate_probs: torch.Tensor) -> torch.Tensor:
    """Mean over gates of the across-batch variance of (B, G) gate probabilities: 0 when every
    utterance gets the same gates, at most 0.25 when each gate is open for half the batch."""
    if gate_probs.shape[0] < 2:
        return gate_probs.new_zeros(())
    return gate_probs.var(dim=0, unbiased=False).mean()


def temperature_at(step: int, cfg: TrainConfig) -> float:
    """Gumbel temperature: ``temperature`` when gating starts, geometric to ``temperature_end``."""
    if cfg.temperature_end is None:
        return cfg.temperature
    span = max(1, cfg.max_steps - cfg.gate_warmup_steps)
    progress = min(1.0, max(0.0, (step - cfg.gate_warmup_steps) / span))
    return cfg.temperature * (cfg.temperature_end / cfg.temperature) ** progress


def gate_parameters(model: I3DModel) -> list[torch.nn.Parameter]:
    """The gate predictor's parameters (global or local); empty for a vanilla model."""
    return [p for name, p in model.named_parameters() if name.startswith(("gate.", "local_gates."))]


def reset_gate_predictor(model: I3DModel, open_bias: float = 2.0) -> None:
    """Re-initialise the gate predictor(s): fresh hidden layer, zero output weights, every gate
    open with probability sigmoid(open_bias). A saturated predictor (p within 1e-4 of 0 or 1)
    has vanishing gradients; this gives gate training a live starting point."""
    predictors = [model.gate] if model.cfg.gates == "global" else list(getattr(model, "local_gates", []))
    for predictor in predictors:
        hidden, out = predictor.mlp[0], predictor.mlp[2]
        hidden.reset_parameters()
        torch.nn.init.zeros_(out.weight)
        torch.nn.init.constant_(out.bias, open_bias)


def _fit_schedule(cfg: TrainConfig, step: int, elapsed_s: float, budget_s: float,
                  steps_timed: int | None = None) -> TrainConfig:
    """Rescale the step schedule so that the run ends when ``budget_s`` is spent.

    ``steps_timed`` steps (default ``step``) took ``elapsed_s``; ``step`` is the current global
    step. A warm-up that has already ended is left where it was (a resumed run never reopens
    its gates)."""
    rate = (step if steps_timed is None else steps_timed) / max(elapsed_s, 1e-6)  # steps per second
    new_max = max(step + 1, int(step + (budget_s - elapsed_s) * rate * 0.97))
    scale = new_max / cfg.max_steps

    def rescaled(warmup: int) -> int:
        return warmup if warmup <= step else max(step, round(warmup * scale))

    return replace(cfg, max_steps=new_max, warmup_steps=max(1, rescaled(cfg.warmup_steps)),
                   gate_warmup_steps=rescaled(cfg.gate_warmup_steps), eval_every=max(50, (new_max - step) // 8))


def _frame_units(fcfg: FeatureConfig) -> tuple[int, int]:
    """(input frames per 10 ms, fewest input frames of one encoder frame): length limits are in 10 ms
    log-mel frames; waveform features have sample_rate / 100 samples per 10 ms."""
    if fcfg.kind == "waveform":
        return fcfg.sample_rate // 100, fcfg.min_samples
    return 1, 7


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


@torch.no_grad()
def evaluate(model: I3DModel, data: FeatureSet, fcfg: FeatureConfig, tokens: TokenTable,
             threshold: float | None = None, full_depth: bool = False, limit: int | None = None,
             module_mask: torch.Tensor | None = None) -> dict[str, float]:
    """Greedy-decoding CER/WER and mean executed fraction on a feature set (eval mode)."""
    was_training = model.training
    model.eval()
    refs, hyps = [], []
    executed = []
    count = 0
    device = next(model.parameters()).device
    unit, min_frames = _frame_units(fcfg)
    for idx in data.batches(16_000 * unit, None, min_frames=min_frames, max_len=10**12):
        if limit is not None and count >= limit:
            break
        x, lens, _, _ = (t.to(device) for t in data.collate(idx, fcfg, tokens))
        out = model(x, lens, threshold=threshold, full_depth=full_depth, module_mask=module_mask)
        executed.append(out.gates.sum(1).cpu())  # (B,) modules run per utterance
        log_probs = out.log_probs.float().cpu().numpy()
        for j, i in enumerate(idx):
            spans = greedy_decode(log_probs[j], int(out.lens[j]))
            hyps.append(tokens.decode(s.id for s in spans))
            refs.append(data.texts[i])
            count += 1
    model.train(was_training)
    counts = torch.cat(executed) if executed else torch.zeros(0)
    frac = float(counts.mean()) / model.cfg.n_gates if count else 0.0
    result = score(refs, hyps)
    return {"cer": result.cer, "wer": result.wer, "executed_fraction": frac, "utterances": count,
            "modules_std": float(counts.std(unbiased=False)) if count else 0.0,
            "distinct_counts": len(set(counts.tolist()))}


def train(
    run_dir: Path,
    train_corpora: list[Path],
    dev_corpora: list[Path],
    model_config: ModelConfig,
    cfg: TrainConfig,
    *,
    max_minutes: float | None = None,
    threads: int | None = None,
    device: str = "cpu",
    init: Path | None = None,
    jobs: int = 2,
    module_mask: list[int] | None = None,
    log: Any = print,
) -> Path:
    """Train (or resume) into ``run_dir``; returns the path of ``best.pt``.

    ``init`` starts a new run from another checkpoint's weights, dimensions and feature
    statistics (fresh optimiser and schedule). ``module_mask`` (0/1 per module) removes modules
    statically, for fine-tuning a pruned model. ``max_minutes`` with ``cfg.fit_to_time`` measures
    the step rate after a few steps and rescales the schedule to end on time.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    last = run_dir / "last.pt"
    tokens = TokenTable()
    fcfg = FeatureConfig(n_mels=model_config.n_mels)
    source = last if last.exists() else init  # its features and tokens (an imported model: waveform, own vocabulary)
    ckpt = load_checkpoint(source) if source is not None else None
    if ckpt is not None:
        fcfg, tokens = ckpt.feature_config, ckpt.tokens
    unit, min_frames = _frame_units(fcfg)
    train_set = FeatureSet.build(train_corpora, fcfg, run_dir / "cache", jobs=jobs)
    dev_set = FeatureSet.build(dev_corpora, fcfg, run_dir / "cache", jobs=jobs)
    if ckpt is not None and last.exists():
        model_config = ckpt.model_config
        model = I3DModel(model_config)
        model.load_state_dict(ckpt.state_dict)
        state = ckpt.train_state
        if not isinstance(state.get("train_config"), dict) or not isinstance(state.get("step"), int):
            raise ConfigError(f"{last}: cannot resume, the checkpoint holds no training state "
                              "(use another run directory, and --init to start from its weights)")
        known = {f.name for f in fields(TrainConfig)}
        cfg = TrainConfig(**{**{k: v for k, v in state["train_config"].items() if k in known},
                             "max_steps": cfg.max_steps})
        log(f"resuming {last} at step {state['step']}")
    elif ckpt is not None:
        model_config = ckpt.model_config
        model = I3DModel(model_config)
        model.load_state_dict(ckpt.state_dict)
        if cfg.reinit_gates:
            if model_config.gates == "none":
                raise ConfigError(f"{init}: --reinit-gates needs a model with a gate predictor")
            torch.manual_seed(cfg.seed)
            reset_gate_predictor(model)
        state = {"step": 0, "epoch": 0, "batch": 0, "best_cer": 1e9, "train_config": asdict(cfg),
                 "init": str(init)}
        log(f"initialised from {init}" + (" (gate predictor re-initialised, every gate open)"
                                           if cfg.reinit_gates else ""))
    else:
        mean, std = train_set.stats()
        fcfg = FeatureConfig(n_mels=model_config.n_mels, mean=tuple(mean), std=tuple(std))
        torch.manual_seed(cfg.seed)
        model = I3DModel(model_config)
        state = {"step": 0, "epoch": 0, "batch": 0, "best_cer": 1e9, "train_config": asdict(cfg)}
    if len(tokens) != model_config.vocab_size:
        raise ConfigError(f"vocab_size {model_config.vocab_size} does not match the {len(tokens)}-token table")
    model.temperature = cfg.temperature
    if module_mask is not None:
        if len(module_mask) != model_config.n_gates:
            raise ConfigError(f"module mask has {len(module_mask)} entries, the model {model_config.n_gates} modules")
        state["module_mask"] = [int(v) for v in module_mask]
    mask = torch.tensor(state["module_mask"], dtype=torch.float32, device=dev) if "module_mask" in state else None
    model.to(dev)
    trainable = list(model.parameters())
    if cfg.train_only == "gates":
        trainable = gate_parameters(model)
        if not trainable:
            raise ConfigError("train config: train_only='gates' needs a model with a gate predictor")
        for p in model.parameters():
            p.requires_grad_(False)
        for p in trainable:
            p.requires_grad_(True)
    gate_ids = {id(p) for p in gate_parameters(model)}
    groups = [{"params": [p for p in trainable if id(p) not in gate_ids], "lr_scale": 1.0},
              {"params": [p for p in trainable if id(p) in gate_ids], "lr_scale": cfg.gate_lr_scale}]
    opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr, weight_decay=cfg.weight_decay)
    if "optimizer" in state:
        opt.load_state_dict(state["optimizer"])
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params / 1e6:.2f}M parameters, {model_config.n_layers} layers, gates {model_config.gates}; "
        f"train {len(train_set)} utts ({train_set.lengths.sum() / unit / 360000:.1f} h), dev {len(dev_set)} utts")

    def snapshot() -> Checkpoint:
        state["optimizer"] = opt.state_dict()
        sd = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        return Checkpoint(model_config, fcfg, tokens, sd, train_state=state)

    def set_train_mode() -> None:
        model.train()
        if cfg.train_only == "gates":  # frozen parts run as at inference (no dropout)
            for part in (model.frontend, model.mha, model.ffn, model.head):
                part.eval()

    start = time.monotonic()
    logf = open(run_dir / "train.log", "a", encoding="utf-8")
    set_train_mode()
    step = first_step = state["step"]
    stop = False
    while step < cfg.max_steps and not stop:
        rng = np.random.default_rng(cfg.seed * 1000 + state["epoch"])
        batches = train_set.batches(cfg.batch_frames * unit, rng, min_frames=min_frames,
                                    max_len=cfg.max_len * unit)
        for k in range(state["batch"], len(batches)):
            gating = model_config.gates != "none" and step >= cfg.gate_warmup_steps
            for group in opt.param_groups:
                group["lr"] = lr_at(step, cfg) * group["lr_scale"]
            model.temperature = temperature_at(step, cfg)
            augment = rng if cfg.specaugment else None
            x, lens, targets, target_lens = (t.to(dev) for t in train_set.collate(batches[k], fcfg, tokens, augment))
            t0 = time.monotonic()
            out = model(x, lens, full_depth=not gating, module_mask=mask)
            ctc = F.ctc_loss(out.log_probs.transpose(0, 1), targets, out.lens, target_lens,
                             blank=0, reduction="mean", zero_infinity=True)
            reg = gate_loss(out.gate_probs, cfg.gate_target, cfg.gate_objective) if gating \
                else torch.zeros((), device=dev)
            diversity = gate_diversity(out.gate_probs) if gating and cfg.gate_diversity else torch.zeros((), device=dev)
            loss = ctc + cfg.gate_lambda * reg - cfg.gate_diversity * diversity
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            step += 1
            state.update(step=step, batch=k + 1)
            if cfg.fit_to_time and max_minutes and step == first_step + 30:
                cfg = _fit_schedule(cfg, step, time.monotonic() - start, max_minutes * 60, steps_timed=30)
                state["train_config"] = asdict(cfg)
                log(f"schedule fitted to {max_minutes} min: max_steps {cfg.max_steps}, "
                    f"gate warm-up {cfg.gate_warmup_steps}, lr warm-up {cfg.warmup_steps}")
            record = {"step": step, "epoch": state["epoch"], "loss": round(loss.item(), 4), "ctc": round(ctc.item(), 4),
                      "gate_reg": round(reg.item(), 4), "gate_var": round(diversity.item(), 5),
                      "gate_prob": round(out.gate_probs.mean().item(), 4),
                      "executed": round(out.gates.mean().item(), 4), "lr": round(lr_at(step, cfg), 6),
                      "executed_std": round(out.gates.sum(1).std(unbiased=False).item(), 3),
                      "temperature": round(model.temperature, 4),
                      "batch_utts": len(batches[k]), "step_s": round(time.monotonic() - t0, 2)}
            if step % 10 == 0:
                log(json.dumps(record))
            if step % cfg.eval_every == 0 or step == cfg.max_steps:
                metrics = evaluate(model, dev_set, fcfg, tokens, limit=300, module_mask=mask)
                set_train_mode()
                record["dev"] = metrics
                log(json.dumps({"step": step, "dev": metrics}))
                if metrics["cer"] < state["best_cer"]:
                    state["best_cer"] = metrics["cer"]
                    save_checkpoint(run_dir / "best.pt", snapshot())
            logf.write(json.dumps(record) + "\n")
            logf.flush()
            out_of_time = max_minutes is not None and (time.monotonic() - start) / 60 >= max_minutes
            if step % cfg.save_every == 0 or step >= cfg.max_steps or out_of_time:
                save_checkpoint(last, snapshot())
            if step >= cfg.max_steps or out_of_time:
                stop = True
                break
        else:
            state.update(epoch=state["epoch"] + 1, batch=0)
    save_checkpoint(last, snapshot())
    logf.close()
    if not (run_dir / "best.pt").exists():
        save_checkpoint(run_dir / "best.pt", snapshot())
    return run_dir / "best.pt"
