"""Audio input: every accepted form gives clean mono at the model rate; every bad input a clear message."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from voicerec import MAX_SECONDS, MODEL_RATE, AudioInputError, load_audio
from voicerec.audio.synth import VOICES, scale_melody, sing


def _check_clean(audio, expected_seconds: float) -> None:
    assert audio.sampling_rate == MODEL_RATE
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert abs(audio.seconds - expected_seconds) < 0.4
    rms = np.sqrt(np.mean(audio.samples[np.repeat(audio.voiced, 160)[: len(audio.samples)]] ** 2))
    assert -22 < 20 * np.log10(rms) < -18  # loudness-normalised to -20 dBFS over the voice
    assert audio.voiced_seconds > 0.8 * expected_seconds
    assert audio.regions and all(a < b for a, b in audio.regions)


@pytest.mark.parametrize(
    "fmt,subtype", [("wav", "PCM_16"), ("flac", "PCM_24"), ("ogg", "VORBIS"), ("mp3", "MPEG_LAYER_III")]
)
def test_reads_file_formats(tmp_path, singing, fmt, subtype):
    import librosa

    rate = 44100 if fmt != "mp3" else 48000
    x = librosa.resample(singing, orig_sr=16000, target_sr=rate)
    path = tmp_path / f"take.{fmt}"
    sf.write(path, np.stack([x, 0.5 * x], axis=1), rate, subtype=subtype)
    _check_clean(load_audio(path), len(singing) / 16000)


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("rate", [8000, 22050, 48000])
def test_microphone_tuples(singing, dtype, channels, rate):
    import librosa

    x = librosa.resample(singing, orig_sr=16000, target_sr=rate)
    if channels == 2:
        x = np.stack([x, x * 0.8], axis=1)
    if np.issubdtype(dtype, np.integer):
        x = (x * 0.9 * np.iinfo(dtype).max).astype(dtype)
    else:
        x = x.astype(dtype)
    audio = load_audio((rate, x))
    _check_clean(audio, len(singing) / 16000)


def test_leading_and_trailing_silence_trimmed(singing):
    padded = np.concatenate([np.zeros(32000, np.float32), singing, np.zeros(48000, np.float32)])
    audio = load_audio((16000, padded))
    assert abs(audio.seconds - len(singing) / 16000) < 0.2


def test_over_long_input_is_cut_to_cap():
    long = sing(scale_melody(57, n_notes=140, seconds=0.5, seed=3), VOICES["tenor"])  # 70 s
    audio = load_audio((16000, long))
    assert audio.seconds == pytest.approx(MAX_SECONDS, abs=0.05)
    assert any("first 60 s" in w for w in audio.warnings)


def test_clipping_is_reported(singing):
    clipped = np.clip(singing * 8, -1, 1)
    audio = load_audio((16000, clipped))
    assert any("clipped" in w for w in audio.warnings)


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p: (16000, np.zeros(0, np.float32)), "empty"),
        (lambda p: (16000, np.zeros(16000 * 5, np.float32)), "silent"),
        (lambda p: (16000, np.full(16000 * 5, np.nan, np.float32)), "NaN"),
        (lambda p: (16000, np.r_[np.ones(10), np.inf, np.zeros(16000)].astype(np.float32)), "NaN or infinity"),
        (lambda p: (16000, sing([(60.0, 1.0), (62.0, 1.0)])), "at least 3 s"),
        (lambda p: (16000, np.random.default_rng(0).standard_normal(16000 * 5).astype(np.float32) * 0.3), "No singing"),
        (lambda p: str(p / "missing.wav"), "not found"),
        (lambda p: _write(p / "notes.wav", b"these are my lyrics, not audio\n" * 50), "Could not read"),
        (lambda p: _write(p / "empty.wav", b""), "empty"),
        (lambda p: 12345, "Give a path"),
    ],
)
def test_bad_input_messages(tmp_path, make, message):
    with pytest.raises(AudioInputError, match=message):
        load_audio(make(tmp_path))


def _write(path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def test_heavy_noise_is_reported():
    clean = sing(scale_melody(50, n_notes=24, seconds=0.5, seed=1), VOICES["baritone"], sr=16000)
    power = np.mean(clean**2)
    t = np.arange(len(clean)) / 16000
    drone = sum(np.sin(2 * np.pi * f * t) for f in (110, 165, 220, 330)).astype(np.float32)  # steady backing
    drone *= np.sqrt(power / np.mean(drone**2))  # as loud as the voice: 0 dB signal-to-noise
    hiss = np.random.default_rng(0).standard_normal(len(clean)).astype(np.float32) * np.sqrt(2 * power)  # -3 dB

    assert not any("noisy" in w for w in load_audio((16000, clean + 0.03 * drone)).warnings)
    assert any("noisy" in w for w in load_audio((16000, clean + drone)).warnings)
    with pytest.raises(AudioInputError, match="very noisy"):
        load_audio((16000, clean + hiss))
