"""ONNX Runtime sessions of one bundle variant: one options policy, verified, created once.

Every graph file is checked against its SHA-256 (:meth:`Manifest.verify`) right before its
session is created, and every session's input/output names against ``GRAPH_IO``. Sessions are
created at load, or (``lazy``) on first use under a lock, so memory grows only with the
modules an input actually needs. ``InferenceSession.run`` is thread-safe, so one pool serves
any number of threads.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import onnxruntime as ort

from ..errors import BundleError, ConfigError, first_line
from ..limits import LIMITS, thread_limit
from ..manifest import GRAPH_IO, Manifest, Variant, role_of
from .interface import check_interface

__all__ = ["SessionPool", "session_options"]


_ARENA_LOCK = threading.Lock()
_arena_registered = False


def _register_shared_arena() -> None:
    """Register the process-wide CPU arena that sessions opt into with ``session.use_env_allocators``."""
    global _arena_registered
    with _ARENA_LOCK:
        if not _arena_registered:
            info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
            ort.create_and_register_allocator(info, ort.OrtArenaCfg(0, -1, -1, -1))  # defaults: no limit
            _arena_registered = True


def session_options(threads: int | None) -> ort.SessionOptions:
    """The one SessionOptions policy of the runtime (see the module notes in ``__init__``)."""
    if threads is not None and threads > thread_limit():
        raise ConfigError(f"threads must be at most {thread_limit()} (this machine's cores x "
                          f"{LIMITS.threads_per_core}), got {threads}")
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or 0  # 0: onnxruntime picks (physical cores)
    so.inter_op_num_threads = 1  # graphs are small chains: no parallel branches to run
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Time length changes with every input: a memory pattern planned for one shape is useless
    # for the next, and caching one per shape only grows memory.
    so.enable_mem_pattern = False
    # Keep the CPU arena: the module loop reallocates same-sized activations every call and the
    # arena recycles them (measured ~30% faster on batches than plain malloc); its size is
    # bounded by the largest batch (segment length x batch size), and RSS stays flat over calls.
    so.enable_cpu_mem_arena = True
    # ONE arena for all sessions (registered once per process): a per-session arena keeps its
    # own peak, so ~28 module sessions held ~28 peaks (measured, 12 layers d_model 192, 10-min
    # file, batch 8: peak RSS 3.2 GB per-session vs 0.49 GB shared; forward 3-7% faster shared).
    _register_shared_arena()
    so.add_session_config_entry("session.use_env_allocators", "1")
    # Each session has its own intra-op pool; a pool that spins after its run steals the cores
    # from the next module's session (measured: 12 layers, 2 threads, 5 s of audio: ~30 ms
    # without spinning, ~950 ms with), so idle worker threads sleep.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3  # errors only: no optimizer chatter on stderr
    return so


class SessionPool:
    """The sessions of one variant, keyed by graph key (``frontend``, ``layer03.ffn`` ...)."""

    def __init__(self, manifest: Manifest, variant: Variant, *, threads: int | None,
                 providers: Sequence[str], eager: Iterable[str], lazy: bool) -> None:
        available = set(ort.get_available_providers())
        missing = [p for p in providers if p not in available]
        if missing:
            raise ConfigError(f"onnxruntime provider(s) not available: {', '.join(missing)} "
                              f"(available: {', '.join(sorted(available))})")
        self.manifest = manifest
        self.variant = variant
        self._options = session_options(threads)
        self._providers = list(providers)
        self._sessions: dict[str, ort.InferenceSession] = {}
        self._outputs = {key: list(GRAPH_IO[role_of(key)][1]) for key in variant.graphs}  # output names per graph
        self._lock = threading.Lock()  # guards lazy creation and the run counters
        self.runs: Counter[str] = Counter()  # graph key -> number of session runs
        self.created: Counter[str] = Counter()  # graph key -> sessions created (1 each, whatever the race)
        for key in (eager if lazy else variant.graphs):
            if key != "monolithic":  # the single-graph variant is for other consumers
                self._sessions[key] = self._create(key)

    @property
    def loaded(self) -> tuple[str, ...]:
        """Keys of the sessions created so far."""
        return tuple(self._sessions)

    def get(self, key: str) -> ort.InferenceSession:
        """The session of graph ``key``, created (once, under the lock) if it does not exist yet."""
        session = self._sessions.get(key)
        if session is None:
            with self._lock:
                session = self._sessions.get(key)
                if session is None:
                    session = self._sessions[key] = self._create(key)
        return session

    def run(self, key: str, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run graph ``key`` and count the run; returns its outputs in GRAPH_IO order."""
        result = (self._sessions.get(key) or self.get(key)).run(self._outputs[key], feeds)
        with self._lock:
            self.runs[key] += 1
        return result

    def _create(self, key: str) -> ort.InferenceSession:
        rel = self.variant.graphs.get(key)
        if rel is None:
            raise BundleError(f"{self.manifest.root}: variant {self.variant.name!r} has no {key!r} graph")
        path = self.manifest.verify(rel)
        for companion in self._companions(rel):  # external-data files of this graph
            self.manifest.verify(companion)
        try:
            session = ort.InferenceSession(str(path), self._options, providers=self._providers)
        except Exception as exc:  # onnxruntime raises its own exception types for bad graphs
            reason = first_line(exc)
            raise BundleError(f"{path}: onnxruntime cannot load this graph: {reason}") from None
        self._check_io(key, path, session)
        check_interface(key, path, session, self.manifest.model_config)  # dtype, rank, dims, a probe run
        self.created[key] += 1  # under the lock, or in __init__
        return session

    def _companions(self, rel: str) -> list[str]:
        return [f for f in self.manifest.files if f != rel and f.startswith(rel)]

    def _check_io(self, key: str, path: object, session: ort.InferenceSession) -> None:
        want_in, want_out = GRAPH_IO[role_of(key)]
        got_in = tuple(i.name for i in session.get_inputs())
        got_out = tuple(o.name for o in session.get_outputs())
        if set(got_in) != set(want_in) or set(got_out) != set(want_out):
            raise BundleError(f"{path}: graph interface {list(got_in)} -> {list(got_out)} does not match the "
                              f"manifest contract for {role_of(key)!r}: {list(want_in)} -> {list(want_out)}")
        cfg = self.manifest.model_config
        # static last dimension of every tensor whose width the contract fixes
        widths = {"features": cfg.n_mels, "x": cfg.d_model, "y": cfg.d_model, "encoder_out": cfg.d_model,
                  "log_probs": cfg.vocab_size, "gate_probs": cfg.n_gates if key == "gate" else len(cfg.layer_kinds)}
        for arg in (*session.get_inputs(), *session.get_outputs()):
            width, expected = (arg.shape[-1] if arg.shape else None), widths.get(arg.name)
            if expected is not None and isinstance(width, int) and width != expected:
                raise BundleError(f"{path}: {arg.name} has width {width}, the manifest's model needs {expected}")
