"""recipes/make_real_corpus.py: whole speakers held out, augmented copies that differ from the
recording and keep its transcript, evaluation-only corpora refused, a rerun that redoes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.recipes import load_recipe

SPEAKERS = ["spk_a", "spk_b", "spk_c", "spk_d"]


def fake_corpus(root: Path) -> dict[str, tuple[str, str]]:
    """4 speakers x 3 utterances of tones at 8 kHz (the recipe resamples to 16 kHz)."""
    (root / "audio").mkdir(parents=True)
    rng = np.random.default_rng(0)
    items = {}
    for s, spk in enumerate(SPEAKERS):
        for k in range(3):
            uid = f"{spk}_{k}"
            t = np.arange(int(8000 * (0.6 + 0.2 * k))) / 8000
            x = 0.3 * np.sin(2 * np.pi * (200 + 50 * s + 30 * k) * t) + 0.01 * rng.standard_normal(t.size)
            sf.write(root / "audio" / f"{uid}.ogg", x.astype(np.float32), 8000, format="OGG", subtype="VORBIS")
            items[uid] = (spk, f"Say {s}-{k}, Please!")
    (root / "transcripts.tsv").write_text("id\ttext\n" + "".join(f"{u}\t{t}\n" for u, (_, t) in items.items()))
    (root / "speakers.tsv").write_text("id\tspeaker\n" + "".join(f"{u}\t{s}\n" for u, (s, _) in items.items()))
    return items


def rows(tsv: Path) -> dict[str, str]:
    return dict(line.split("\t", 1) for line in tsv.read_text().splitlines() if line)


def test_real_corpus_holds_out_whole_speakers_and_augments_copies(tmp_path):
    recipe = load_recipe("make_real_corpus")
    items = fake_corpus(tmp_path / "learners")
    out = tmp_path / "out"
    assert recipe.main([str(out), "--real", f"{tmp_path / 'learners'}:1", "--copies", "2", "--jobs", "1"]) == 0
    summary = json.loads((out / "corpus.json").read_text())
    (dev_speaker,) = summary["dev_speakers"]["learners"]
    train, aug, dev = rows(out / "train/transcripts.tsv"), rows(out / "train_aug/transcripts.tsv"), \
        rows(out / "dev/transcripts.tsv")
    assert set(dev) == {u for u, (s, _) in items.items() if s == dev_speaker}
    assert set(train) == {u for u, (s, _) in items.items() if s != dev_speaker}
    assert set(aug) == {f"{u}-a{k}" for u in train for k in range(2)}
    assert rows(out / "dev_learners/transcripts.tsv") == dev
    for uid, (_, text) in items.items():  # normalised text: lower case, no punctuation, hyphen -> space
        expected = "say " + text.split()[1].rstrip(",").replace("-", " ") + " please"
        assert (dev if uid in dev else train)[uid] == expected
    for uid in train:
        clean, sr = sf.read(out / "train/audio" / f"{uid}.wav")
        assert sr == 16000
        for k in range(2):
            copy, _ = sf.read(out / "train_aug/audio" / f"{uid}-a{k}.wav")
            assert aug[f"{uid}-a{k}"] == train[uid]
            n = min(len(copy), len(clean))
            assert not np.allclose(copy[:n], clean[:n], atol=1e-3)  # every copy changes the audio (gain at least)
    meta = (out / "train_aug/meta.tsv").read_text().splitlines()[1:]
    assert len(meta) == len(aug) and all(line.split("\t")[2].startswith("speed") for line in meta)

    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")}
    assert recipe.main([str(out), "--real", f"{tmp_path / 'learners'}:1", "--copies", "2", "--jobs", "1"]) == 0
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")} == mtimes  # resumed: nothing re-rendered


@pytest.mark.parametrize("name", ["an4-test", "ljspeech-dev", "fsdd"])
def test_evaluation_only_corpora_are_refused(tmp_path, name, capsys):
    recipe = load_recipe("make_real_corpus")
    fake_corpus(tmp_path / name)
    with pytest.raises(SystemExit) as exc:
        recipe.main([str(tmp_path / "out"), "--real", str(tmp_path / name)])
    assert exc.value.code == 2
    assert "evaluation-only corpus, never trained on" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_every_augmentation_keeps_length_and_level(tmp_path):
    """Each channel condition alone: the output is about as long as the speed change makes it
    and peaks at the chosen gain."""
    recipe = load_recipe("make_real_corpus")
    src = tmp_path / "x.wav"
    t = np.arange(16000) / 16000
    sf.write(src, (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
    recipe._init(0)
    cases = [{"speed": 1.1}, {"speed": 1.0, "room": 3}, {"speed": 1.0, "phone": True},
             {"speed": 1.0, "codec": "mp3", "kbps": 16}, {"speed": 1.0, "codec": "opus", "kbps": 24},
             {"speed": 0.9, "noise": "pink", "snr": 5.0}, {"speed": 1.0, "noise": "babble", "snr": 10.0}]
    for k, aug in enumerate(cases):
        aug["gain_db"] = -6.0
        job = {"id": f"u{k}", "src": str(src), "out": str(tmp_path / "o" / f"u{k}.wav"), "aug": aug,
               "babble": [str(src)] * 3}
        _, seconds = recipe.render(job)
        y, _ = sf.read(job["out"])
        expected = 1.0 / aug["speed"]
        assert abs(seconds - expected) < 0.3 * expected, (aug, seconds)
        assert abs(np.max(np.abs(y)) - 0.95 * 10 ** (-6 / 20)) < 0.01, aug


def test_tempo_keeps_the_pitch_and_shortens_the_sound():
    recipe = load_recipe("make_real_corpus")
    t = np.arange(32000) / 16000
    tone = (0.5 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    fast = recipe.change_tempo(tone, 1.6)
    assert abs(len(fast) - len(tone) / 1.6) < 0.02 * len(tone)
    spectrum = np.abs(np.fft.rfft(fast[2000:-2000]))
    peak_hz = np.argmax(spectrum) * 16000 / (len(fast) - 4000)
    assert abs(peak_hz - 300) < 5  # a resampling speed-up would move it to 480 Hz


def test_trim_edges_drops_silence_only_at_the_edges():
    recipe = load_recipe("make_real_corpus")
    rng = np.random.default_rng(0)
    sound = 0.3 * rng.standard_normal(8000)
    x = np.concatenate([np.zeros(16000), sound, np.zeros(4000), sound, np.zeros(16000)]).astype(np.float32)
    y = recipe.trim_edges(x)
    assert 20000 <= len(y) <= 20000 + 4 * 320  # both sounds and the pause between them, a frame of margin
    assert np.abs(y).max() == np.abs(x).max()


def test_fast_copies_are_faster_keep_the_transcript_and_leave_the_other_copies_alone(tmp_path):
    recipe = load_recipe("make_real_corpus")
    fake_corpus(tmp_path / "learners")
    out = tmp_path / "out"
    base = [str(out), "--real", f"{tmp_path / 'learners'}:1", "--copies", "1", "--jobs", "1"]
    assert recipe.main(base) == 0
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")}
    assert recipe.main([*base, "--fast-copies", "2"]) == 0
    assert {p: p.stat().st_mtime_ns for p in before} == before  # train and train_aug: not re-rendered
    train, fast = rows(out / "train/transcripts.tsv"), rows(out / "train_fast/transcripts.tsv")
    assert set(fast) == {f"{u}-f{k}" for u in train for k in range(2)}
    meta = dict(line.split("\t")[::2] for line in (out / "train_fast/meta.tsv").read_text().splitlines()[1:])
    dry = 0
    for uid in train:
        clean = sf.info(str(out / "train/audio" / f"{uid}.wav")).frames
        for k in range(2):
            assert fast[f"{uid}-f{k}"] == train[uid]
            tempo = float(meta[f"{uid}-f{k}"].split("+")[1].removeprefix("tempo"))
            assert recipe.FAST_TEMPO[0] <= tempo <= recipe.FAST_TEMPO[1]
            frames = sf.info(str(out / "train_fast/audio" / f"{uid}-f{k}.wav")).frames
            if "room" not in meta[f"{uid}-f{k}"]:  # reverberation adds a tail
                dry += 1
                assert frames <= clean / tempo * 1.02 + 320
    assert dry >= 3
    assert json.loads((out / "corpus.json").read_text())["utterances"]["train_fast"] == 2 * len(train)
