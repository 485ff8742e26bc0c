"""GE2E in the project: the same numbers as Resemblyzer, its preprocessing, and fine-tuning that keeps the
frozen layers."""

from __future__ import annotations

import importlib.util

import librosa
import numpy as np
import pytest
import torch

from voicerec import GE2EConfig, GE2EFeatureExtractor, GE2EModel
from voicerec.audio.synth import VOICES, scale_melody, sing
from voicerec.models.modeling_ge2e import window_starts


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
    assert all(c.note.shape == c.plain.shape for c in clips)  # the note-adjusted copy, read as the app reads it
    config = {"variant": "expression", "init": str(init), "views": view_cfg, "seed": 0,
              "train": {"steps": 5, "batch_size": 4, "lr": 0.01, "weight_decay": 0.0, "temperature": 0.07,
                        "momentum": 0.9, "queue_size": 16, "distill": 1.0, "wccn": 1.0}}  # fmt: skip
    model, log = train(config, clips)
    assert all(np.isfinite(row["loss"]) for row in log[:-1])
    for name, param in model.lstm.named_parameters():
        assert torch.equal(param, getattr(trunk.lstm, name)), name
    assert not torch.equal(model.linear.weight, trunk.linear.weight)
    assert model.config.variant == "expression"
    out = export_encoder(model, tmp_path / "out", config, log, "test")
    loaded = GE2EModel.from_pretrained(out)
    assert loaded.config.variant == "expression" and torch.equal(loaded.linear.weight, model.linear.weight)
    assert not torch.equal(model.whiten_matrix, torch.eye(8))  # the WCCN was fitted, and ships
    assert torch.equal(loaded.whiten_matrix, model.whiten_matrix) and torch.equal(loaded.whiten_mean, model.whiten_mean)


def _mean_log_mel(fe: GE2EFeatureExtractor, power: np.ndarray) -> np.ndarray:
    """The time-averaged log-mel spectrum of a steady note's middle second (no onsets, no alignment)."""
    mel = power @ fe.mel_filters
    return np.log(mel[50:150] + 1e-10).mean(0)


@pytest.mark.parametrize(("midi", "semitones"), [(50, 7), (62, -7)])
def test_shifted_harmonics_sound_like_the_same_voice_in_the_new_key(midi, semitones):
    """A held vowel shifted in the spectrogram is as close to the same synthetic voice singing the new note as the
    WORLD vocoder's resynthesis is, closer than the original note, and far closer than a resampled copy (which
    moves the formants with the pitch)."""
    from dataclasses import replace

    from voicerec.audio.note_adjust import shift_pitch
    from voicerec.audio.pitch import track_pitch

    fe = GE2EFeatureExtractor()
    voice = replace(VOICES["tenor"], vibrato_cents=0.0, jitter_cents=0.0)
    sung, target = (sing([(m, 2.0)], voice, vowels="a", seed=1) for m in (midi, midi + semitones))
    track = track_pitch(sung)
    shifted = fe.shift_harmonics(fe.power_spectrogram(sung), semitones, track.f0)
    vocoded = shift_pitch(sung, 16000, semitones, track)
    resampled = librosa.effects.pitch_shift(sung, sr=16000, n_steps=semitones)
    goal = _mean_log_mel(fe, fe.power_spectrogram(target))

    def distance(power: np.ndarray) -> float:
        return float(np.sqrt(np.mean((_mean_log_mel(fe, power) - goal) ** 2)))

    ours = distance(shifted)
    assert ours < 1.1 * distance(fe.power_spectrogram(vocoded))
    assert ours < 0.9 * distance(fe.power_spectrogram(sung))
    assert ours < 0.5 * distance(fe.power_spectrogram(resampled))


def test_no_shift_and_unvoiced_frames_leave_the_spectrogram_alone(singing):
    fe = GE2EFeatureExtractor()
    clip = singing[:32000]
    plain = fe(clip)["input_features"]
    np.testing.assert_array_equal(fe(clip, semitones=[0.0], f0=[None])["input_features"], plain)
    power = fe.power_spectrogram(clip)
    np.testing.assert_array_equal(fe.shift_harmonics(power, 5.0, np.full(len(power), np.nan)), power)
    with pytest.raises(ValueError, match="f0"):
        fe(clip, semitones=[3.0])


def test_top_layer_training_keeps_the_lower_layers_and_one_trunk_serves_both(tmp_path):
    """The split LSTM computes what the stacked one does; training the top layer from cached lower-layer outputs
    moves that layer only, and the `shared` expression encoder keeps the timbre encoder's LSTM, so the app still
    runs one LSTM for both."""
    from training.finetune_ge2e import LowerLayers, clip_states, map_states, split_lstm, top_states, train
    from voicerec.embeddings import shares_trunk

    torch.manual_seed(0)
    init = tmp_path / "init"
    GE2EModel(GE2EConfig(hidden_size=16, num_layers=3, embedding_size=8)).save_pretrained(init)
    fe = GE2EFeatureExtractor()
    trunk = GE2EModel.from_pretrained(init).eval()
    lower, top = split_lstm(trunk.lstm)
    x = torch.randn(3, 160, 40)
    with torch.no_grad():
        assert torch.allclose(top(lower(x)[0])[1][0][-1], trunk.window_states(x), atol=1e-6)
    view_cfg = {"pitch_semitones": 3.0, "stretch_rates": [0.65, 1.7]}
    encode = LowerLayers(trunk)
    inputs = [clip_states(trunk, fe, sing(scale_melody(45 + 4 * i, 8, 0.5, seed=i), VOICES[v], 16000), v, view_cfg,
                          encode=encode) for i, v in enumerate(["bass", "tenor", "alto"])]  # fmt: skip
    assert inputs[0].plain.shape[1:] == (160, 16) and inputs[0].plain.dtype == np.float16
    clips = [map_states(c, lambda s: top_states(top, s)) for c in inputs]
    direct = clip_states(trunk, fe, sing(scale_melody(45, 8, 0.5, seed=0), VOICES["bass"], 16000), "bass", view_cfg)
    assert np.allclose(clips[0].plain, direct.plain, atol=2e-3)  # float16 inputs: the same states
    config = {"variant": "timbre", "init": str(init), "views": view_cfg, "seed": 0,
              "train": {"steps": 4, "batch_size": 4, "lr": 0.01, "weight_decay": 0.0, "temperature": 0.07,
                        "momentum": 0.9, "queue_size": 16, "distill": 1.0, "wccn": 1.0,
                        "top_layer": "shared"}}  # fmt: skip
    timbre, log = train(config, clips, inputs)
    assert all(np.isfinite(row["loss"]) for row in log[:-1])
    params = dict(timbre.lstm.named_parameters())
    for name, param in trunk.lstm.named_parameters():
        assert torch.equal(param, params[name]) != name.endswith("_l2"), name  # only the top layer moved
    shared = [map_states(c, lambda s: top_states(split_lstm(timbre.lstm)[1], s)) for c in inputs]
    expression, _ = train(config | {"variant": "expression"}, shared, trunk=timbre)
    assert not torch.equal(expression.linear.weight, timbre.linear.weight)
    assert shares_trunk((timbre, fe), (expression, fe))
    with pytest.raises(ValueError, match="trunk"):
        train(config | {"variant": "expression"}, shared)
