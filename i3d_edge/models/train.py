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
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..config import GATE_OBJECTIVES, FeatureConfig, ModelConfig, TrainConfig
from ..ctc import greedy_decode
from ..errors import ConfigError, first_line
from ..scoring import score
from ..tokens import TokenTable
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .data import FeatureSet
from .i3d import I3DModel

__all__ = [
    "GATE_OBJECTIVES",
    "TrainConfig",
    "TrainState",
    "evaluate",
    "final_report",
    "fit_schedule",
    "gate_diversity",
    "gate_loss",
    "reset_gate_predictor",
    "train",
]

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
    for predictor in model.gate_predictors():
        hidden, out = predictor.layers
        hidden.reset_parameters()
        torch.nn.init.zeros_(out.weight)
        torch.nn.init.constant_(out.bias, open_bias)


def fit_schedule(cfg: TrainConfig, step: int, elapsed_s: float, budget_s: float,
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


@dataclass
class TrainState:
    """Where a run stands; saved in every checkpoint as ``train_state`` (the dict a resume reads)."""

    train_config: dict[str, Any]  # the TrainConfig in effect (fit_to_time may have rescaled it)
    step: int = 0
    epoch: int = 0
    batch: int = 0  # next batch of the epoch
    best_cer: float = 1e9  # lowest dev CER so far (best.pt)
    init: str | None = None  # the checkpoint a new run started from
    module_mask: list[int] | None = None  # 0/1 per module: modules removed statically
    optimizer: dict[str, Any] | None = None

    @classmethod
    def resume(cls, data: dict[str, Any], path: Path) -> TrainState:
        if not isinstance(data.get("train_config"), dict) or not isinstance(data.get("step"), int):
            raise ConfigError(f"{path}: cannot resume, the checkpoint holds no training state "
                              "(use another run directory, and --init to start from its weights)")
        known = {f.name for f in fields(cls)}
        state = cls(**{k: v for k, v in data.items() if k in known})
        state.check(path)
        return state

    def check(self, path: Path) -> None:
        """Raise a one-line ConfigError naming ``path`` unless every field has its type (a resumed
        checkpoint is untrusted: a string step or learning rate must not become a traceback)."""
        def bad(what: str) -> ConfigError:
            return ConfigError(f"{path}: cannot resume, the training state's {what}")

        for name in ("step", "epoch", "batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise bad(f"{name} is not a count ({str(value)[:40]!r})")
        if isinstance(self.best_cer, bool) or not isinstance(self.best_cer, (int, float)):
            raise bad(f"best_cer is not a number ({str(self.best_cer)[:40]!r})")
        if self.module_mask is not None and (not isinstance(self.module_mask, list) or not all(
                v in (0, 1) and not isinstance(v, bool) and isinstance(v, (int, float)) for v in self.module_mask)):
            raise bad("module_mask is not a list of 0/1 values")
        if self.optimizer is not None and not isinstance(self.optimizer, dict):
            raise bad("optimizer state is not a mapping")
        if self.init is not None and not isinstance(self.init, str):
            raise bad("init is not a path")

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def _start(run_dir: Path, model_config: ModelConfig, cfg: TrainConfig, fcfg: FeatureConfig, train_set: FeatureSet,
           ckpt: Checkpoint | None, init: Path | None, log: Any) -> tuple[I3DModel, FeatureConfig, TrainConfig,
                                                                         TrainState]:
    """The model, feature config, train config and state a run starts with: resumed from
    ``run_dir/last.pt``, initialised from ``init``'s weights, or new (feature statistics of the
    training set)."""
    last = run_dir / "last.pt"
    if ckpt is not None and last.exists():  # resume: the run's own config, the new max_steps
        state = TrainState.resume(ckpt.train_state, last)
        known = {f.name for f in fields(TrainConfig)}
        try:
            cfg = TrainConfig(**{**{k: v for k, v in state.train_config.items() if k in known},
                                 "max_steps": cfg.max_steps})
        except (TypeError, ValueError) as exc:  # e.g. a string learning rate (ConfigError is a ValueError)
            raise ConfigError(f"{last}: cannot resume, invalid train config ({first_line(exc)})") from None
        if state.module_mask is not None and len(state.module_mask) != model_config.n_gates:
            raise ConfigError(f"{last}: cannot resume, the module mask has {len(state.module_mask)} entries, the "
                              f"model {model_config.n_gates} modules")
        log(f"resuming {last} at step {state.step}")
        return ckpt.build_model(), fcfg, cfg, state
    if ckpt is not None:
        model = ckpt.build_model()
        if cfg.reinit_gates:
            if ckpt.model_config.gates == "none":
                raise ConfigError(f"{init}: --reinit-gates needs a model with a gate predictor")
            torch.manual_seed(cfg.seed)
            reset_gate_predictor(model)
        log(f"initialised from {init}" + (" (gate predictor re-initialised, every gate open)"
                                           if cfg.reinit_gates else ""))
        return model, fcfg, cfg, TrainState(asdict(cfg), init=str(init))
    mean, std = train_set.stats()
    fcfg = replace(fcfg, mean=tuple(mean), std=tuple(std))
    torch.manual_seed(cfg.seed)
    return I3DModel(model_config), fcfg, cfg, TrainState(asdict(cfg))


def _optimizer(model: I3DModel, cfg: TrainConfig, state: TrainState) -> torch.optim.Optimizer:
    """AdamW over the trainable parameters (the gate predictor alone with ``train_only="gates"``,
    the rest frozen), the gate predictor's group at ``gate_lr_scale``; resumed state loaded."""
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
    if state.optimizer is not None:
        try:
            opt.load_state_dict(state.optimizer)
        except (ValueError, KeyError, TypeError, IndexError, RuntimeError) as exc:  # groups or shapes that differ
            raise ConfigError(f"cannot resume, the optimizer state does not fit the model ({first_line(exc)})"
                              ) from None
    return opt


def _losses(model: I3DModel, batch: tuple[torch.Tensor, ...], cfg: TrainConfig, step: int,
            mask: torch.Tensor | None) -> tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forward one batch (x, lens, targets, target_lens): the model output, the total loss and its
    parts (CTC, gate regulariser, gate diversity; the gate terms are 0 during the gate warm-up)."""
    x, lens, targets, target_lens = batch
    gating = model.cfg.gates != "none" and step >= cfg.gate_warmup_steps
    out = model(x, lens, full_depth=not gating, module_mask=mask)
    ctc = F.ctc_loss(out.log_probs.transpose(0, 1), targets, out.lens, target_lens,
                     blank=0, reduction="mean", zero_infinity=True)
    zero = torch.zeros((), device=x.device)
    reg = gate_loss(out.gate_probs, cfg.gate_target, cfg.gate_objective) if gating else zero
    diversity = gate_diversity(out.gate_probs) if gating and cfg.gate_diversity else zero
    return out, ctc + cfg.gate_lambda * reg - cfg.gate_diversity * diversity, ctc, reg, diversity


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
    edge_silence: float | None = None,
    log: Any = print,
) -> Path:
    """Train (or resume) into ``run_dir``; returns the path of ``best.pt``.

    ``init`` starts a new run from another checkpoint's weights, dimensions and feature
    statistics (fresh optimiser and schedule). ``module_mask`` (0/1 per module) removes modules
    statically, for fine-tuning a pruned model. ``max_minutes`` with ``cfg.fit_to_time`` measures
    the step rate after a few steps and rescales the schedule to end on time. ``edge_silence``
    (seconds) replaces the feature config's for a new run (training pads every utterance so, and so
    does the runtime of the exported bundle); a resumed run keeps its own.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    last = run_dir / "last.pt"
    source = last if last.exists() else init  # its features and tokens (an imported model: waveform, own vocabulary)
    ckpt = load_checkpoint(source) if source is not None else None
    fcfg, tokens = (ckpt.feature_config, ckpt.tokens) if ckpt else (FeatureConfig(n_mels=model_config.n_mels),
                                                                    TokenTable())
    model_config = ckpt.model_config if ckpt else model_config
    if edge_silence is not None and edge_silence != fcfg.edge_silence:
        if source == last:
            raise ConfigError(f"{last}: cannot resume with edge silence {edge_silence} s, the run was started "
                              f"with {fcfg.edge_silence} s")
        fcfg = replace(fcfg, edge_silence=edge_silence)
    unit, min_frames = _frame_units(fcfg)
    train_set = FeatureSet.build(train_corpora, fcfg, run_dir / "cache", jobs=jobs)
    dev_set = FeatureSet.build(dev_corpora, fcfg, run_dir / "cache", jobs=jobs)
    if len(tokens) != model_config.vocab_size:
        raise ConfigError(f"vocab_size {model_config.vocab_size} does not match the {len(tokens)}-token table")
    model, fcfg, cfg, state = _start(run_dir, model_config, cfg, fcfg, train_set, ckpt, init, log)
    model.temperature = cfg.temperature
    if module_mask is not None:
        if len(module_mask) != model_config.n_gates:
            raise ConfigError(f"module mask has {len(module_mask)} entries, the model {model_config.n_gates} modules")
        state.module_mask = [int(v) for v in module_mask]
    mask = None if state.module_mask is None else torch.tensor(state.module_mask, dtype=torch.float32, device=dev)
    model.to(dev)
    try:
        opt = _optimizer(model, cfg, state)
    except ConfigError as exc:
        raise ConfigError(f"{last}: {exc}" if last.exists() else str(exc)) from None
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params / 1e6:.2f}M parameters, {model_config.n_layers} layers, gates {model_config.gates}; "
        f"train {len(train_set)} utts ({train_set.lengths.sum() / unit / 360000:.1f} h), dev {len(dev_set)} utts")

    def snapshot() -> Checkpoint:
        state.optimizer = opt.state_dict()
        sd = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        return Checkpoint(model_config, fcfg, tokens, sd, train_state=state.to_dict())

    def set_train_mode() -> None:
        model.train()
        if cfg.train_only == "gates":  # frozen parts run as at inference (no dropout)
            for part in (model.frontend, *model.by_kind.values(), model.head):
                part.eval()

    start = time.monotonic()
    logf = open(run_dir / "train.log", "a", encoding="utf-8")
    set_train_mode()
    step = first_step = state.step
    fitted = False  # the schedule has been fitted to max_minutes (fit_to_time)
    stop = False
    while step < cfg.max_steps and not stop:
        rng = np.random.default_rng(cfg.seed * 1000 + state.epoch)
        batches = train_set.batches(cfg.batch_frames * unit, rng, min_frames=min_frames,
                                    max_len=cfg.max_len * unit)
        for k in range(state.batch, len(batches)):
            for group in opt.param_groups:
                group["lr"] = lr_at(step, cfg) * group["lr_scale"]
            model.temperature = temperature_at(step, cfg)
            augment = rng if cfg.specaugment else None
            batch = tuple(t.to(dev) for t in train_set.collate(batches[k], fcfg, tokens, augment))
            t0 = time.monotonic()
            out, loss, ctc, reg, diversity = _losses(model, batch, cfg, step, mask)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            step += 1
            state.step, state.batch = step, k + 1
            timed, elapsed = step - first_step, time.monotonic() - start
            if cfg.fit_to_time and max_minutes and not fitted and timed >= 3 and \
                    (timed >= 30 or elapsed >= 0.1 * max_minutes * 60):  # 30 steps or a tenth of the time
                cfg = fit_schedule(cfg, step, elapsed, max_minutes * 60, steps_timed=timed)
                fitted = True
                state.train_config = asdict(cfg)
                log(f"schedule fitted to {max_minutes} min: max_steps {cfg.max_steps}, "
                    f"gate warm-up {cfg.gate_warmup_steps}, lr warm-up {cfg.warmup_steps}")
            record = {"step": step, "epoch": state.epoch, "loss": round(loss.item(), 4), "ctc": round(ctc.item(), 4),
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
                if metrics["cer"] < state.best_cer:
                    state.best_cer = metrics["cer"]
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
            state.epoch, state.batch = state.epoch + 1, 0
    save_checkpoint(last, snapshot())
    logf.close()
    if not (run_dir / "best.pt").exists():
        save_checkpoint(run_dir / "best.pt", snapshot())
    if model_config.gates != "none":
        log(final_report(model, dev_set, fcfg, tokens, run_dir, mask))
    return run_dir / "best.pt"


def final_report(model: I3DModel, dev_set: FeatureSet, fcfg: FeatureConfig, tokens: TokenTable, run_dir: Path,
                 mask: torch.Tensor | None) -> str:
    """What the gates learned, on the dev set (at most 300 utterances, as the evaluations during
    training): executed fraction and CER at the model's threshold against CER at full depth, for the
    final weights (last.pt); also written to ``run_dir/final.json``."""
    gated = evaluate(model, dev_set, fcfg, tokens, limit=300, module_mask=mask)
    full = evaluate(model, dev_set, fcfg, tokens, limit=300, full_depth=True, module_mask=mask)
    report = {"checkpoint": "last.pt", "threshold": model.cfg.gate_threshold, "utterances": gated["utterances"],
              "executed_fraction": gated["executed_fraction"], "cer": gated["cer"], "full_depth_cer": full["cer"]}
    (run_dir / "final.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return (f"last.pt on dev ({gated['utterances']} utterances): at threshold {model.cfg.gate_threshold:g} it runs "
            f"{100 * gated['executed_fraction']:.1f}% of the modules with CER {100 * gated['cer']:.2f}%; "
            f"at full depth CER {100 * full['cer']:.2f}%")
