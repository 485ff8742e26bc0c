"""WORLD pseudo-singers: the warp moves formants, the f0 shift moves pitch, copies stay sample-aligned."""

from __future__ import annotations

import csv

import librosa
import numpy as np
import pytest
import soundfile as sf

from training.data import Clip, load_clips
from training.pseudo_singers import make_pseudo_singers, warp_frequency, world_analyse, world_render
from training.train_sscl import load_families
from training.views import ContrastiveViews
from voicerec.synth import VOICES, scale_melody, sing

SR = 16000


def _median_f0(x: np.ndarray) -> float:
    return float(np.median(librosa.yin(x, fmin=80, fmax=1000, sr=SR, frame_length=1024)))


@pytest.fixture(scope="module")
def phrase() -> np.ndarray:
    return sing(scale_melody(52, n_notes=6, seconds=0.4, seed=1), VOICES["tenor"], SR, seed=1)


def test_warp_moves_a_spectral_peak():
    bins = np.arange(513.0)
    envelope = np.exp(-0.5 * ((bins - 100.0) / 5.0) ** 2)[None].repeat(3, axis=0)
    for alpha in (0.85, 1.2):
        warped = warp_frequency(envelope, alpha)
        assert warped.shape == envelope.shape and warped.flags.c_contiguous
        assert np.argmax(warped[0]) == pytest.approx(100 * alpha, abs=1)


def test_world_render_moves_pitch_or_formants_only():
    note = sing([(57.0, 2.0)], VOICES["tenor"], SR)
    analysis = world_analyse(note, SR)
    plain = world_render(analysis, SR, len(note), 1.0, 0.0)
    higher = world_render(analysis, SR, len(note), 1.0, 3.0)
    assert len(plain) == len(higher) == len(note)
    assert 12 * np.log2(_median_f0(higher) / _median_f0(plain)) == pytest.approx(3.0, abs=0.3)
    short_tract = world_render(analysis, SR, len(note), 1.2, 0.0)
    long_tract = world_render(analysis, SR, len(note), 0.85, 0.0)
    assert 12 * np.log2(_median_f0(short_tract) / _median_f0(plain)) == pytest.approx(0.0, abs=0.3)
    # the resynthesis carries the warped envelope: its own mean log envelope matches the warped source's best
    source = np.log(analysis[1]).mean(0)
    for alpha, y in ((1.2, short_tract), (0.85, long_tract)):
        measured = np.log(world_analyse(y, SR)[1]).mean(0)
        warped = np.log(warp_frequency(analysis[1], alpha)).mean(0)
        assert np.abs(measured - warped).mean() < 0.5 * np.abs(measured - source).mean()


def test_pseudo_singer_families_feed_six_aligned_views(tmp_path, phrase):
    folder = tmp_path / "real"
    for name in ("alto", "bass"):
        (folder / name).mkdir(parents=True)
        sf.write(folder / name / "song.wav", phrase if name == "alto" else phrase[::-1].copy(), SR)
    clips = load_clips(folder)
    manifest = make_pseudo_singers(clips, tmp_path / "pseudo", per_singer=2, seed=0)
    with manifest.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * (1 + 2 * 2)  # per clip: the source repitched, and two voices with their repitched
    assert {r["singer"] for r in rows} == {"alto", "bass", "alto~w0", "alto~w1", "bass~w0", "bass~w1"}
    assert {r["kind"] for r in rows if r["variant"].startswith("r ")} == {"repitched"}

    everything, families = load_families(clips, [str(tmp_path / "pseudo")])
    assert len(everything) == 2 + 4 and len(families) == 6
    alto = families[0]
    assert set(alto.voices) == {"alto", "alto~w0", "alto~w1"} and set(alto.repitched) == set(alto.voices)
    assert all(len(a) == len(phrase) for a in [*alto.voices.values(), *alto.repitched.values()])

    views = ContrastiveViews(everything, seconds=1.0, length=4, seed=0, families=families)
    item = views[1]
    assert set(item) == {"query", "key", "pitched", "stretched", "warped", "repitched"}
    assert all(x.shape == (SR,) and np.isfinite(x.numpy()).all() for x in item.values())
    with pytest.raises(ValueError, match="WORLD copies"):
        ContrastiveViews([*everything, Clip(phrase, "other", "tenor")], 1.0, families=[*families, None])
