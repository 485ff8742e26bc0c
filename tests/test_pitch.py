"""Pitch tracking, vocal range, range fit and note adjustment on synthetic singing of known notes."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import librosa
import numpy as np
import pytest
import pyworld
from scipy.signal import resample_poly

from voicerec.audio.input import AudioInputError
from voicerec.audio.note_adjust import (
    REFERENCE_MIDI,
    _aperiodicity,
    _world_f0,
    adjust_to_reference,
    reference_shift,
    shift_for,
    shift_pitch,
)
from voicerec.audio.pitch import (
    DIO_CHANNELS_IN_OCTAVE,
    DIO_SPEED,
    PitchTrack,
    _fix_octaves,
    _periodicity,
    _refine,
    track_pitch,
)
from voicerec.audio.synth import VOICES, scale_melody, sing
from voicerec.audio.vocal_range import (
    MIN_HELD_SECONDS,
    VOICE_CENTRES,
    VocalRange,
    estimate_range,
    held_note_seconds,
    note_name,
    range_fit,
    range_fits,
)

SR = 16000


def note_truth(notes: list[tuple[float, float]], n_frames: int) -> np.ndarray:
    """Per-10-ms-frame MIDI of the held part of each note (NaN on glides, gaps and rests)."""
    truth, pos = np.full(n_frames, np.nan), 0.0
    for midi, dur in notes:
        truth[int(np.ceil((pos + 0.06) / 0.01)) : int((pos + dur - 0.07) / 0.01)] = midi
        pos += dur
    return truth


@pytest.mark.parametrize(("voice", "tonic"), [("bass", 40), ("soprano", 72)])
def test_tracker_is_accurate_without_octave_errors(voice: str, tonic: int) -> None:
    notes = scale_melody(tonic, n_notes=12, seconds=0.5, seed=4)  # bass E2..E3, soprano C5..C6
    x = sing(notes, replace(VOICES[voice], vibrato_cents=0.0), sr=SR, seed=1)
    track = track_pitch(x, SR)
    truth = note_truth(notes, len(track.f0))
    held = np.isfinite(truth)
    cents = (track.midi[held] - truth[held]) * 100
    assert np.mean(np.abs(np.nan_to_num(cents, nan=1e6)) < 50) > 0.95  # voiced and within 50 cents
    assert not np.any(np.abs(cents[np.isfinite(cents)]) > 600)  # no octave errors at all


@pytest.mark.parametrize(("voice", "tonic"), [("bass", 40), ("soprano", 72)])
def test_sparse_half_rate_refinement_is_as_accurate_as_stonemask(voice: str, tonic: int) -> None:
    """StoneMask on every second frame, at half the rate below 600 Hz (the soprano's top octave at the full rate),
    the frames between interpolated: the same voiced frames, no farther from the sung notes than full StoneMask."""
    notes = scale_melody(tonic, n_notes=12, seconds=0.5, seed=4)
    x = sing(notes, replace(VOICES[voice], vibrato_cents=0.0), sr=SR, seed=1).astype(np.float64)
    raw, times = pyworld.dio(
        x,
        SR,
        f0_floor=65.0,
        f0_ceil=1100.0,
        frame_period=10.0,
        speed=DIO_SPEED,
        channels_in_octave=DIO_CHANNELS_IN_OCTAVE,
    )
    full, sparse = pyworld.stonemask(x, raw, times, SR), _refine(x, SR, raw, times)
    assert np.array_equal(full > 0, sparse > 0)
    truth = note_truth(notes, len(times))
    held = np.isfinite(truth) & (full > 0)
    for quantile in (50, 95):
        error = [
            np.percentile(np.abs(librosa.hz_to_midi(f0[held]) - truth[held]) * 100, quantile) for f0 in (full, sparse)
        ]
        assert error[1] <= error[0] + 0.5


def test_tracker_follows_a_real_octave_leap_and_marks_silence_unvoiced() -> None:
    notes = [(48.0, 1.0), (float("nan"), 0.5), (60.0, 1.0), (48.0, 1.0)]
    track = track_pitch(sing(notes, VOICES["tenor"], sr=SR), SR)
    truth = note_truth(notes, len(track.f0))
    for midi in (48.0, 60.0):
        assert abs(np.nanmedian(track.midi[truth == midi]) - midi) < 0.5
    rest = slice(110, 140)  # inside the 0.5 s rest
    assert not track.voiced[rest].any()
    assert track.confidence[truth == 60.0].mean() > 0.8


def test_octave_fixing_keeps_a_brief_real_leap_and_fixes_a_doubling() -> None:
    notes = [(55.0, 0.8), (67.0, 0.2), (55.0, 0.8)]  # the octave note is shorter than half the context window
    x = sing(notes, replace(VOICES["tenor"], vibrato_cents=0.0), sr=SR)
    track = track_pitch(x, SR)
    truth = note_truth(notes, len(track.f0))
    assert abs(np.nanmedian(track.midi[truth == 67.0]) - 67.0) < 0.5
    # a doubling inside a held note (DIO's typical error) is folded back by the signal's periodicity
    doubled = np.nan_to_num(track.f0)
    doubled[30:36] *= 2
    x64 = x.astype(np.float64)
    confidence = _periodicity(x64, SR, track.times, doubled)
    fixed, _ = _fix_octaves(x64, SR, track.times, doubled, confidence, window=31)
    assert np.allclose(fixed[30:36], track.f0[30:36])


def test_voiced_mask_removes_frames() -> None:
    x = sing(scale_melody(55, n_notes=6, seed=2), VOICES["tenor"], sr=SR)
    full = track_pitch(x, SR)
    mask = np.ones(len(full.f0), dtype=bool)
    mask[: len(mask) // 2] = False
    half = track_pitch(x, SR, voiced=mask)
    assert not half.voiced[: len(mask) // 2].any()
    assert np.array_equal(half.voiced[len(mask) // 2 :], full.voiced[len(mask) // 2 :])


def test_range_and_tessitura_follow_the_sung_notes() -> None:
    notes = [(50.0, 0.3), (52.0, 1.0), (53.0, 1.5), (55.0, 1.5), (57.0, 1.0), (62.0, 0.3)]
    track = track_pitch(sing(notes, VOICES["baritone"], sr=SR), SR)
    vocal = estimate_range(track)
    assert 50.0 - 1 < vocal.low <= vocal.tessitura_low <= vocal.median <= vocal.tessitura_high <= vocal.high < 62.5
    assert abs(vocal.median - 54.0) < 1.1  # between 53 and 55, the two longest notes
    assert vocal.tessitura_low > 51.5 and vocal.tessitura_high < 56.5  # the brief extremes do not count
    assert vocal.high < 61.0  # a 0.3 s top note is not the comfortable top
    assert 3.0 < vocal.voiced_seconds < 5.6
    d = vocal.to_dict()
    assert d["median_note"] in ("F3", "F#3", "G3") and d["voice_type"] == vocal.voice_type


@pytest.mark.parametrize("voice", sorted(VOICES))
def test_voice_type_of_synthetic_voices(voice: str) -> None:
    expected = "mezzo-soprano" if voice == "mezzo" else voice
    tonic = int(round(VOICE_CENTRES[expected])) - 4  # the melody spans 0..12 above the tonic
    track = track_pitch(sing(scale_melody(tonic, n_notes=10, seconds=0.4, seed=5), VOICES[voice], sr=SR), SR)
    assert estimate_range(track).voice_type == expected


def test_note_name() -> None:
    assert note_name(57) == "A3" and note_name(61.2) == "C#4" and note_name(59.6) == "C4"
    with pytest.raises(ValueError):
        note_name(float("nan"))


def test_range_fit_picks_the_obvious_transposition() -> None:
    singer = VocalRange(
        low=48, high=64, tessitura_low=52, tessitura_high=59, median=55, voice_type="tenor", voiced_seconds=10
    )
    assert range_fit(49, 62, 52, 59, singer) == (0, 1.0)  # already a perfect fit: no key change
    shift, fit = range_fit(54, 67, 57, 64, singer)  # the same song 5 semitones higher
    assert shift == -3 and fit == pytest.approx(1.0)  # the smallest key change that centres it within 2
    shift, fit = range_fit(40, 54, 43, 50, singer)  # 9 semitones low: the best is +6, still imperfect
    assert shift == 6 and 0.0 < fit < 1.0
    assert range_fit(30, 80, 35, 75, singer)[1] < 0.01  # a song no transposition can fit


def test_range_fits_a_pool_as_each_song_alone_and_leaves_unknown_ranges_unfitted() -> None:
    singer = VocalRange(
        low=48, high=64, tessitura_low=52, tessitura_high=59, median=55, voice_type="tenor", voiced_seconds=10
    )
    songs = np.array([[49, 62, 52, 59], [54, 67, 57, 64], [np.nan, 70, 60, 66], [40, 54, 43, 50]], dtype=float)
    shifts, fits = range_fits(*songs.T, singer)
    assert list(shifts) == [0, -3, 0, 6]  # no key change for the song without a range
    known = [0, 1, 3]
    assert [range_fit(*row, singer) for row in songs[known]] == list(zip(shifts[known], fits[known], strict=True))
    assert np.isnan(fits[2])


def _envelope_db(x: np.ndarray) -> np.ndarray:
    """Mean LPC spectral envelope (dB, mean removed) of the voiced frames over 200..5000 Hz: the formants."""
    frames = librosa.util.frame(x.astype(np.float64), frame_length=512, hop_length=160).T
    voiced = np.flatnonzero(track_pitch(x, SR).voiced[: len(frames)])[::4]
    envelope = np.zeros(257)
    for frame in frames[voiced]:
        a = librosa.lpc(frame * np.hanning(512), order=16)
        envelope -= 20 * np.log10(np.abs(np.fft.rfft(a, 512)))
    freqs = np.fft.rfftfreq(512, 1 / SR)
    band = envelope[(freqs >= 200) & (freqs <= 5000)] / len(voiced)
    return band - band.mean()


def test_note_adjustment_hits_the_reference_and_keeps_formants() -> None:
    x = sing(scale_melody(50, n_notes=10, seconds=0.5, seed=6), VOICES["baritone"], sr=SR, vowels="a")
    track = track_pitch(x, SR)
    y, semitones = adjust_to_reference(x, SR, track)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert semitones == pytest.approx(REFERENCE_MIDI - np.nanmedian(track.midi))
    assert abs(np.nanmedian(track_pitch(y, SR).midi) - REFERENCE_MIDI) < 0.3
    # a naive shift (resampling, tape speed) moves the formants with the pitch; WORLD keeps them
    ratio = Fraction(2 ** (semitones / 12)).limit_denominator(100)
    naive = resample_poly(x, ratio.denominator, ratio.numerator)
    original = _envelope_db(x)
    kept = np.sqrt(np.mean((_envelope_db(y) - original) ** 2))
    moved = np.sqrt(np.mean((_envelope_db(naive) - original) ** 2))
    assert kept < 1.5 and moved > 3 * kept


@pytest.mark.parametrize("voice, tonic", [("bass", 43), ("tenor", 55), ("soprano", 69)])
def test_shift_rules_take_the_key_out_and_keep_or_move_the_register(voice: str, tonic: int) -> None:
    """"a3" moves the median onto A3; "nearest-a" onto the nearest A (at most 6 semitones, so a bass stays low and
    a soprano high); "cap:N" towards A3 by at most N."""
    x = sing(scale_melody(tonic, n_notes=8, seconds=0.5, seed=3), VOICES[voice], sr=SR, vowels="a")
    track = track_pitch(x, SR)
    median = float(np.median(track.midi[track.voiced]))
    assert median + reference_shift(track) == pytest.approx(REFERENCE_MIDI)
    nearest = reference_shift(track, "nearest-a")
    assert abs(nearest) <= 6 and (median + nearest - REFERENCE_MIDI) % 12 == pytest.approx(0, abs=1e-6)
    capped = reference_shift(track, "cap:4")
    assert abs(capped) <= 4 and np.sign(capped) == np.sign(REFERENCE_MIDI - median)
    assert abs(capped) == pytest.approx(min(4, abs(REFERENCE_MIDI - median)))
    with pytest.raises(ValueError, match="nearest-a"):
        shift_for(median, "half")


def test_shift_pitch_moves_pitch_by_the_requested_interval() -> None:
    x = sing([(60.0, 1.5)], VOICES["alto"], sr=SR)
    y = shift_pitch(x, SR, -5.0)
    assert abs(np.nanmedian(track_pitch(y, SR).midi) - 55.0) < 0.3


def test_shift_pitch_resynthesises_the_given_track() -> None:
    # the track's f0 is what WORLD resynthesises (no second tracking): a track two semitones high comes out high
    x = sing([(60.0, 1.5)], VOICES["alto"], sr=SR)
    track = track_pitch(x, SR)
    y = shift_pitch(x, SR, -5.0, replace(track, f0=track.f0 * 2 ** (2 / 12)))
    assert abs(np.nanmedian(track_pitch(y, SR).midi) - 57.0) < 0.3


def test_sparse_aperiodicity_follows_full_rate_d4c() -> None:
    x = sing(scale_melody(55, n_notes=6, seconds=0.4, seed=3), VOICES["tenor"], sr=SR)
    x = np.asarray(x, dtype=np.float64)
    f0, times = _world_f0(x, SR, None)
    full = pyworld.d4c(x, f0, times, SR, fft_size=512)
    sparse = _aperiodicity(x, SR, f0, times, 512)
    assert sparse.shape == full.shape
    assert np.array_equal(sparse[f0 == 0], full[f0 == 0])  # unvoiced frames exactly as D4C gives them
    assert np.mean(np.abs(sparse - full)[f0 > 0]) < 0.05


def test_too_little_pitch_is_a_clear_error() -> None:
    short = track_pitch(sing([(55.0, 1.0)], VOICES["tenor"], sr=SR), SR)
    with pytest.raises(AudioInputError, match="pitched singing"):
        estimate_range(short)
    silence = np.zeros(SR * 3, dtype=np.float32)
    with pytest.raises(AudioInputError, match="No sung pitch"):
        adjust_to_reference(silence, SR)
    with pytest.raises(AudioInputError):
        track_pitch(np.zeros(100, dtype=np.float32), SR)


def _track(midi: np.ndarray) -> PitchTrack:
    return PitchTrack(
        times=np.arange(len(midi)) * 0.01, f0=440.0 * 2 ** ((midi - 69) / 12), confidence=np.ones(len(midi))
    )


def test_held_notes_count_vibrato_but_not_gliding_speech() -> None:
    """Two seconds of notes with 55-cent vibrato are held; the same time gliding like a speaking voice (20
    semitones/s, turning every 0.3 s) is not, and a range is refused for it."""
    t = np.arange(200) * 0.01
    notes = 50 + 2 * (t >= 1.0) + 0.55 * np.sin(2 * np.pi * 5.5 * t)
    glide = 50 + 20 * np.abs(((t / 0.3) % 2) - 1) * 0.3
    assert held_note_seconds(_track(notes)) == pytest.approx(2.0, abs=0.02)
    assert held_note_seconds(_track(glide)) == 0.0
    gap = notes.copy()
    gap[95:105] = np.nan  # a breath: each side is still a held note
    assert held_note_seconds(_track(gap)) == pytest.approx(1.9, abs=0.02)
    with pytest.raises(AudioInputError, match="speech"):
        estimate_range(_track(np.concatenate([glide, glide])))
    assert held_note_seconds(_track(notes[:10])) == 0.0 < MIN_HELD_SECONDS  # shorter than one held note



def test_known_singing_needs_a_melody_not_enough_held_notes_to_pass_for_singing() -> None:
    """A studio stem whose tracker kept 1.2 s of held notes among 2.8 s of pitch (stacked harmonies between) is
    refused as speech from a person, but is a melody for a catalog (known_singing); pitch jumping about as a
    tracker following a scream's noise gives is refused both ways."""
    t = np.arange(40) * 0.01
    note = 57 + 0.4 * np.sin(2 * np.pi * 5.5 * t)
    glide = 55 + 20 * np.abs(((np.arange(40) * 0.01 / 0.3) % 2) - 1) * 0.3
    stem = np.concatenate([part for k in range(3) for part in (note + 2 * k, glide, np.full(10, np.nan))][:-1])
    stem = np.concatenate([stem, glide[:20]])
    track = _track(stem)
    assert 1.0 < held_note_seconds(track) < MIN_HELD_SECONDS and track.voiced.sum() * 0.01 > 2.0
    with pytest.raises(AudioInputError, match="speech"):
        estimate_range(track)
    sung = estimate_range(track, known_singing=True)
    assert 55 < sung.median < 62
    scream = _track(np.random.default_rng(0).uniform(50, 70, 600))
    for known in (False, True):
        with pytest.raises(AudioInputError, match="speech" if not known else "no melody"):
            estimate_range(scream, known_singing=known)

def test_tones_are_refused_as_not_a_voice_and_singing_is_not() -> None:
    """A pure sine and a buzz held at one exact pitch are refused; synthetic singing, even one held note, is not."""
    t = np.arange(10 * SR) / SR
    sine = (0.3 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)
    buzz = (0.3 * ((110.0 * t) % 1.0 - 0.5)).astype(np.float32)  # a sawtooth: rich in overtones, pitch unwavering
    for tone, message in ((sine, "pure tone"), (buzz, "electronic tone")):
        with pytest.raises(AudioInputError, match=f"{message}.*not a voice"):
            estimate_range(track_pitch(tone, SR), tone, SR)
    for x in (sing([(57.0, 6.0)], VOICES["tenor"], sr=SR), sing(scale_melody(64, 16, 0.5), VOICES["soprano"], sr=SR)):
        assert estimate_range(track_pitch(x, SR), x, SR).voiced_seconds > 2
