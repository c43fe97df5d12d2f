"""`i3d-edge import MODEL_ID`: a Hub model id resolves through the real ``huggingface_hub`` client.

Nothing of ours is mocked: the command runs in a fresh process with ``HF_ENDPOINT`` pointing at a
local HTTP server that answers as the Hub does (``/{repo}/resolve/{revision}/{file}``, with the
``X-Repo-Commit`` / ``ETag`` headers and ``X-Error-Code`` on a 404), and ``HF_HOME`` in a temporary
folder. Then ``HF_HUB_OFFLINE=1`` reads the cache that first run filled, and a cache laid out by
hand (``models--org--name/{refs,snapshots,blobs}``) is read with no server at all.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest

pytest.importorskip("torch", reason="importing models needs the [import] extra (torch)")
pytest.importorskip("transformers")
pytest.importorskip("huggingface_hub")

import torch

from i3d_edge.models.checkpoint import load_checkpoint
from i3d_edge.models.hf_import import import_hf_model
from tests.hf_models import build_hf_model

ROOT = Path(__file__).resolve().parents[2]
COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO = "acme/tiny-wav2vec2"


class FakeHub:
    """Serves model directories (repo id -> folder) at one commit, as the Hub's resolve endpoint does."""

    def __init__(self, repos: dict[str, Path]) -> None:
        self.repos, self.requests = repos, []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                self._answer(body=False)

            def do_GET(self) -> None:
                self._answer(body=True)

            def _answer(self, body: bool) -> None:
                hub.requests.append((self.command, self.path))
                parts = unquote(self.path.split("?")[0]).lstrip("/").split("/")
                if len(parts) < 5 or parts[2] != "resolve":
                    return self._error(404, "EntryNotFound")
                repo, revision, name = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
                if repo not in hub.repos:
                    return self._error(401, "RepoNotFound")
                if revision not in ("main", COMMIT):
                    return self._error(404, "RevisionNotFound")
                path = hub.repos[repo] / name
                if not path.is_file():
                    return self._error(404, "EntryNotFound", commit=True)
                data = path.read_bytes()
                self.send_response(200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def _error(self, status: int, code: str, commit: bool = False) -> None:
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                if commit:
                    self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("repo")
    build_hf_model("Wav2Vec2ForCTC", False, root / "model")
    return root / "model"


@pytest.fixture()
def hub(model_dir: Path, tmp_path: Path) -> Iterator[FakeHub]:
    both = tmp_path / "both"  # safetensors and a .bin: the safetensors file must be the one read
    shutil.copytree(model_dir, both)
    from safetensors.torch import load_file

    torch.save(load_file(str(model_dir / "model.safetensors")), both / "pytorch_model.bin")
    server = FakeHub({REPO: both})
    yield server
    server.close()


def _import(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_"))}
    return subprocess.run([sys.executable, "-m", "i3d_edge", "import", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd, env={**base, "PYTHONPATH": str(ROOT), "HF_HUB_DISABLE_TELEMETRY": "1",
                                                     **env})


def _same_weights(a: Path, b: Path) -> bool:
    x, y = load_checkpoint(a).state_dict, load_checkpoint(b).state_dict
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def test_model_id_downloads_into_the_cache_then_reads_it_offline(hub: FakeHub, model_dir: Path,
                                                                   tmp_path: Path) -> None:
    env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf_home")}
    proc = _import([REPO, "-o", "online.pt"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"({REPO} at {COMMIT[:12]})" in proc.stdout
    fetched = {path.rsplit("/", 1)[-1] for method, path in hub.requests if method == "GET"}
    assert {"config.json", "vocab.json", "preprocessor_config.json", "model.safetensors"} <= fetched
    assert not any("pytorch_model.bin" in path for _, path in hub.requests)  # safetensors preferred
    local = tmp_path / "local.pt"
    from i3d_edge.models.checkpoint import save_checkpoint

    save_checkpoint(local, import_hf_model(model_dir))
    assert _same_weights(tmp_path / "online.pt", local)
    info = load_checkpoint(tmp_path / "online.pt").train_state["imported_from"]
    assert (info["model_id"], info["commit"]) == (REPO, COMMIT)

    hub.close()  # the Hub is gone: the cache alone must do
    proc = _import([REPO, "-o", "offline.pt"], {**env, "HF_HUB_OFFLINE": "1"}, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert _same_weights(tmp_path / "offline.pt", local)


def test_a_hand_made_hub_cache_is_read_offline(model_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "hf_home" / "hub" / "models--acme--cached-model"
    snapshot = cache / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (cache / "refs").mkdir()
    (cache / "refs" / "main").write_text(COMMIT)
    (cache / "blobs").mkdir()
    for f in model_dir.iterdir():  # blobs by content hash, the snapshot's files linking to them
        blob = cache / "blobs" / hashlib.sha256(f.read_bytes()).hexdigest()
        shutil.copyfile(f, blob)
        (snapshot / f.name).symlink_to(os.path.relpath(blob, snapshot))
    env = {"HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}
    proc = _import(["acme/cached-model", "-o", "ckpt.pt"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    ckpt = load_checkpoint(tmp_path / "ckpt.pt")
    assert ckpt.train_state["imported_from"]["commit"] == COMMIT
    want = import_hf_model(model_dir).state_dict
    assert all(torch.equal(ckpt.state_dict[k], want[k]) for k in want)


@pytest.mark.parametrize(("args", "offline", "fragment"), [
    (["acme/not-there"], False, "acme/not-there: no such model on the Hugging Face Hub"),
    ([REPO, "--revision", "v9"], False, f"{REPO}@v9: the model has no revision 'v9'"),
    (["acme/never-downloaded"], True, "acme/never-downloaded: config.json is not in the Hugging Face cache and "
                                      "HF_HUB_OFFLINE is set"),
])
def test_hub_failures_are_one_line(hub: FakeHub, tmp_path: Path, args: list[str], offline: bool,
                                   fragment: str) -> None:
    env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf_home"), **({"HF_HUB_OFFLINE": "1"} if offline else {})}
    proc = _import([*args, "-o", "ckpt.pt"], env, tmp_path)
    assert proc.returncode == 1 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {fragment}"), proc.stderr
    assert not (tmp_path / "ckpt.pt").exists()
