"""GE2E in the project: the same numbers as Resemblyzer, its preprocessing, and fine-tuning that keeps the
frozen layers."""

from __future__ import annotations

import importlib.util

import librosa
import numpy as np
import pytest
import torch

from voicerec import GE2EConfig, GE2EFeatureExtractor, GE2EModel
from voicerec.models.modeling_ge2e import window_starts
from voicerec.synth import VOICES, scale_melody, sing


def test_mel_matches_librosa(singing):
    """Resemblyzer's spectrogram is librosa's melspectrogram (power, Slaney, centred, 25 ms / 10 ms)."""
    fe = GE2EFeatureExtractor()
    clip = singing[:40000]
    ours = fe.mel_power(clip)
    theirs = librosa.feature.melspectrogram(y=clip, sr=16000, n_fft=400, hop_length=160, n_mels=40).T
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-6 * theirs.max())


def test_volume_only_raised():
    fe = GE2EFeatureExtractor()
    quiet = np.full(1600, 0.001, dtype=np.float32)
    loud = np.full(1600, 0.5, dtype=np.float32)
    assert 20 * np.log10(np.sqrt(np.mean(fe.raise_volume(quiet) ** 2))) == pytest.approx(-30, abs=0.01)
    np.testing.assert_array_equal(fe.raise_volume(loud), loud)


@pytest.mark.parametrize(
    ("frames", "expected"), [(100, [0]), (160, [0]), (240, [0, 77]), (300, [0, 77, 154]), (400, [0, 77, 154, 231])]
)
def test_window_starts(frames, expected):
    """Resemblyzer's partial slices at 1.3 windows a second (77 frames apart, last one kept if 75 % covered)."""
    assert window_starts(frames, 160, 77, 0.75) == expected


def test_batch_equals_single_clips(singing):
    torch.manual_seed(0)
    model = GE2EModel(GE2EConfig(hidden_size=16, num_layers=2, embedding_size=8)).eval()
    fe = GE2EFeatureExtractor()
    clips = [singing[:50000], singing[8000:20000], singing[:3000]]  # longer and shorter than one window
    with torch.no_grad():
        batched = model(**fe(clips, return_tensors="pt")).embeddings
        single = torch.cat([model(**fe(c, return_tensors="pt")).embeddings for c in clips])
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-5)


@pytest.mark.skipif(importlib.util.find_spec("resemblyzer") is None, reason="resemblyzer not installed")
@pytest.mark.parametrize("seconds", [1.0, 4.0, 11.3])
def test_reproduces_resemblyzer(seconds):
    """The converted weights and our preprocessing give Resemblyzer's own embedding of the same waveform."""
    from resemblyzer import VoiceEncoder
    from resemblyzer.audio import normalize_volume

    from training.export_ge2e import convert, resemblyzer_checkpoint

    notes = scale_melody(50, int(seconds / 0.5) + 1, 0.5, seed=3)
    wave = sing(notes, VOICES["tenor"], 16000)[: int(seconds * 16000)].astype(np.float32) * 0.05
    reference = VoiceEncoder("cpu", verbose=False).embed_utterance(normalize_volume(wave, -30, increase_only=True))
    model = convert(resemblyzer_checkpoint())
    with torch.no_grad():
        ours = model(**GE2EFeatureExtractor()(wave, return_tensors="pt")).embeddings[0].numpy()
    assert float(ours @ reference) >= 0.999


def test_finetuning_trains_the_projection_only(tmp_path):
    """A few MoCo steps on synthetic singers move the projection and leave GE2E's LSTM as it was."""
    from training.export_ge2e import export_encoder
    from training.finetune_ge2e import clip_states, train

    torch.manual_seed(0)
    init = tmp_path / "init"
    GE2EModel(GE2EConfig(hidden_size=16, num_layers=2, embedding_size=8)).save_pretrained(init)
    fe = GE2EFeatureExtractor()
    view_cfg = {"pitch_semitones": 3.0, "stretch_rates": [0.65, 1.7]}
    trunk = GE2EModel.from_pretrained(init).eval()
    clips = [clip_states(trunk, fe, sing(scale_melody(45 + 4 * i, 8, 0.5, seed=i), VOICES[v], 16000), v, view_cfg)
             for i, v in enumerate(["bass", "tenor", "alto"])]  # fmt: skip
    assert {len(c.pitched[3.0]) for c in clips} == {2}  # 4 s resampled 3 semitones up: two 1.6 s windows
    config = {"variant": "expression", "init": str(init), "views": view_cfg, "seed": 0,
              "train": {"steps": 5, "batch_size": 4, "lr": 0.01, "weight_decay": 0.0, "temperature": 0.07,
                        "momentum": 0.9, "queue_size": 16, "distill": 1.0}}  # fmt: skip
    model, log = train(config, clips)
    assert all(np.isfinite(row["loss"]) for row in log[:-1])
    for name, param in model.lstm.named_parameters():
        assert torch.equal(param, getattr(trunk.lstm, name)), name
    assert not torch.equal(model.linear.weight, trunk.linear.weight)
    assert model.config.variant == "expression"
    out = export_encoder(model, tmp_path / "out", config, log, "test")
    loaded = GE2EModel.from_pretrained(out)
    assert loaded.config.variant == "expression" and torch.equal(loaded.linear.weight, model.linear.weight)
