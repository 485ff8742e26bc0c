"""Formant cue of vocal-tract size and the voice type it informs; the stated voice type (`voicerec.voice_type`).

Most tests make vowels independently of `voicerec.audio.synth`, the way a vocal tract does: a glottal pulse train
through a cascade of two-pole resonators, whose formants are exactly known. The last ones check the synthetic
singers the app's examples are made of.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

from examples.make_examples import CLIPS, SAMPLE_RATE, render
from voicerec.audio.formants import formant_frequencies, fourth_formant
from voicerec.audio.pitch import track_pitch
from voicerec.audio.synth import VOICES, VOWELS, midi_to_hz, scale_melody, sing
from voicerec.audio.vocal_range import FEMALE_TYPES, MALE_TYPES, estimate_range, is_female, voice_type
from voicerec.defaults import HUB_DIR
from voicerec.embeddings import weights_fingerprint
from voicerec.voice_type import (
    COMMIT_PROBABILITY,
    NEIGHBOUR_WORDS,
    SHIPPED,
    TIMBRE_WEIGHT,
    VoiceTypeClassifier,
    decide_voice_type,
    pitch_formant_logit,
)

SR = 16000
MALE_VOWELS = {  # F1..F4 (Hz) of an adult male vocal tract
    "a": (730, 1090, 2440, 3400),
    "e": (530, 1840, 2480, 3500),
    "o": (570, 840, 2410, 3400),
}
BANDWIDTHS = (80, 100, 150, 200)


def vowels(notes: list[float], scale: float = 1.0, seconds: float = 0.6, seed: int = 0) -> np.ndarray:
    """Each MIDI note sung on the next vowel; `scale` > 1 is a shorter vocal tract (all formants higher)."""
    rng = np.random.default_rng(seed)
    out = []
    for i, midi in enumerate(notes):
        n = int(seconds * SR)
        period = SR / float(midi_to_hz(midi))
        pulses = np.zeros(n)
        pulses[np.round(np.arange(0, n - 1, period)).astype(int)] = 1.0
        x = lfilter([1.0], [1.0, -0.95], pulses) + 0.01 * rng.standard_normal(n)  # glottal roll-off, breath
        for f, bw in zip(list(MALE_VOWELS.values())[i % len(MALE_VOWELS)], BANDWIDTHS, strict=True):
            r = np.exp(-np.pi * bw * scale / SR)
            x = lfilter([1.0 - r], [1.0, -2 * r * np.cos(2 * np.pi * f * scale / SR), r * r], x)
        out.append(x * np.hanning(n) ** 0.2)
    y = np.concatenate(out)
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


@pytest.mark.parametrize(("midi", "scale"), [(48.0, 1.0), (60.0, 1.0), (60.0, 1.18), (67.0, 1.18)])
def test_fourth_formant_is_found_at_low_and_high_pitch(midi: float, scale: float) -> None:
    x = vowels([midi, midi + 2, midi + 4], scale=scale)
    track = track_pitch(x, SR)
    measured = fourth_formant(x, SR, track)
    true_f4 = np.median([f[3] for f in MALE_VOWELS.values()]) * scale
    assert abs(measured / true_f4 - 1) < 0.06
    formants = formant_frequencies(x, SR, track)
    assert formants.shape[1] == 4 and np.all(np.diff(formants, axis=1)[np.isfinite(formants[:, 1:])] > 0)


def test_formant_cue_tells_a_tenor_from_an_alto_singing_the_same_notes() -> None:
    melody = [58.0, 60.0, 62.0, 60.0, 59.0, 61.0]  # around C4, where tenors and altos overlap
    types = {}
    for scale in (1.0, 1.18):  # an adult male vocal tract, and one 15 % shorter
        x = vowels(melody, scale=scale, seed=int(scale * 10))
        track = track_pitch(x, SR)
        pitch_only = estimate_range(track)
        both = estimate_range(track, x, SR)
        assert both.fourth_formant is not None and pitch_only.fourth_formant is None
        types[scale] = (pitch_only.voice_type, both.voice_type)
    assert types[1.0][0] == types[1.18][0]  # pitch alone gives both voices the same type
    assert types[1.0][1] in MALE_TYPES and types[1.18][1] in FEMALE_TYPES


def test_voice_type_rule() -> None:
    assert voice_type(50.0) == "bass" and voice_type(70.0) == "soprano"  # pitch only: classical centres
    assert voice_type(60.0, None) == voice_type(60.0, float("nan")) == voice_type(60.0)
    assert voice_type(60.0, 3300.0) == "tenor" and voice_type(60.0, 4400.0) == "mezzo-soprano"
    assert voice_type(66.0, 4400.0) == "soprano"  # everyday singing: a soprano around F#4
    # a higher F4 can only make a voice more female, and so can a higher pitch
    assert not is_female(62.0, 3000.0) and is_female(62.0, 4500.0)
    assert is_female(70.0, 3500.0) and not is_female(50.0, 4000.0)


@pytest.mark.parametrize("voice", ["baritone", "tenor", "alto", "mezzo"])
def test_synthetic_voices_show_their_vocal_tract_size(voice: str) -> None:
    """The F4 measured on `voicerec.audio.synth` singing is the preset's own (median over the vowels sung)."""
    tonic = {"baritone": 47, "tenor": 52, "alto": 55, "mezzo": 59}[voice]
    x = sing(scale_melody(tonic, n_notes=20, seconds=0.5, seed=7), VOICES[voice], SR, seed=7)
    true_f4 = np.median([f[3] for f, _ in VOWELS.values()]) * VOICES[voice].formant_scale
    assert abs(fourth_formant(x, SR, track_pitch(x, SR)) / true_f4 - 1) < 0.07


@pytest.mark.parametrize("voice", list(CLIPS))
def test_the_app_examples_get_their_own_voice_type(voice: str) -> None:
    """The example clips (rendered afresh by `examples/make_examples.py`) are typed as the voice that sang."""
    x = render(voice)
    assert estimate_range(track_pitch(x, SAMPLE_RATE), x, SAMPLE_RATE).voice_type == voice


def test_formants_of_singing_too_high_to_measure_are_left_to_pitch() -> None:
    """Above `MAX_F0_HZ` the harmonics are too sparse to show formants: no F4, and the type comes from pitch."""
    x = vowels([72.0, 74.0, 76.0], scale=1.18, seconds=1.0)  # C5..E5, 523-659 Hz
    track = track_pitch(x, SR)
    assert formant_frequencies(x, SR, track).shape[0] == 0 and np.isnan(fourth_formant(x, SR, track))
    vocal = estimate_range(track, x, SR)
    assert vocal.fourth_formant is None and vocal.voice_type == "soprano"


# --- the stated voice type: commits on clear evidence, hedges otherwise; the timbre classifier and its fallback


def _sung(voice: str, notes: list[float], seconds: float = 0.5):
    x = sing([(float(n), seconds) for n in notes], VOICES[voice], SR, seed=1)
    return estimate_range(track_pitch(x, SR), x, SR)


NARROW_BARITONE = [55, 57, 59, 57, 55, 57, 59, 60, 59, 57, 55, 57, 59, 57, 55, 53, 55, 57, 59, 57]  # G3..C4
HIGH_SOPRANO = [65, 67, 69, 71, 72, 74, 76, 77, 79, 77, 76, 74, 72, 71, 69, 67, 69, 72, 76, 79]  # F4..G5


def test_the_answer_commits_on_clear_evidence_and_hedges_on_a_narrow_melody() -> None:
    clear = decide_voice_type(_sung("soprano", HIGH_SOPRANO))
    assert clear.committed and clear.label == "soprano" and clear.text == "soprano" and clear.alternative is None
    assert clear.probabilities["soprano"] >= COMMIT_PROBABILITY and clear.female_probability > 0.99
    narrow = decide_voice_type(_sung("baritone", NARROW_BARITONE))
    assert not narrow.committed and narrow.label in MALE_TYPES and narrow.alternative in MALE_TYPES
    assert narrow.text == f"{narrow.label} — could be {narrow.alternative}. {NEIGHBOUR_WORDS}"
    assert narrow.probabilities[narrow.label] < COMMIT_PROBABILITY
    assert abs(sum(narrow.probabilities.values()) - 1) < 1e-9


def test_low_notes_make_a_bass_and_high_notes_rule_it_out() -> None:
    """The same man singing lower (down to E2) is called a bass; singing up to B4, a bass becomes unlikely."""
    low = decide_voice_type(_sung("bass", [40, 41, 43, 45, 47, 48, 47, 45, 43, 41, 40, 43, 45, 47, 48, 50]))
    assert low.committed and low.label == "bass"
    middle = decide_voice_type(_sung("tenor", NARROW_BARITONE))
    high = decide_voice_type(_sung("tenor", [n + 10 for n in NARROW_BARITONE]))  # F4..B4
    assert high.probabilities["bass"] < middle.probabilities["bass"] / 3
    assert high.label == "tenor"


def test_the_other_sex_is_named_when_it_is_not_ruled_out() -> None:
    """A voice whose sex is uncertain hedges with the other sex's likeliest type, not a neighbour of its own."""
    sung = _sung("baritone", NARROW_BARITONE)
    unsure = VoiceTypeClassifier(np.zeros(4), np.zeros(4), -pitch_formant_logit(sung) + 0.5, {"embedding": "timbre"})
    at_full_weight = SHIPPED.but(timbre_weight=1.0)
    answer = decide_voice_type(sung, {"timbre": np.ones(4)}, unsure, at_full_weight)  # log-odds 0.5: 62 % female
    assert answer.sex == "female" and not answer.committed and answer.alternative in MALE_TYPES


def test_the_timbre_classifier_round_trips_and_moves_the_answer(tmp_path) -> None:
    direction = np.eye(8)[2]
    classifier = VoiceTypeClassifier(6.0 * direction, np.zeros(8), 0.0, {"embedding": "timbre",
                                     "encoder_fingerprint": "abc"})  # fmt: skip
    classifier.save_pretrained(tmp_path / "vt")
    loaded = VoiceTypeClassifier.from_pretrained(tmp_path / "vt")
    assert loaded.encoder_fingerprint == "abc" and loaded.embedding == "timbre"
    assert loaded.logit(direction) == pytest.approx(6.0, abs=1e-5) and loaded.logit(-direction) == pytest.approx(-6.0)
    sung = _sung("baritone", NARROW_BARITONE)
    alone = decide_voice_type(sung)
    female_timbre = decide_voice_type(sung, {"timbre": direction}, loaded)
    male_timbre = decide_voice_type(sung, {"timbre": -direction}, loaded)
    assert alone.method == "pitch and formants" and female_timbre.method.startswith("timbre classifier")
    assert male_timbre.female_probability < alone.female_probability < female_timbre.female_probability
    assert female_timbre.cues["timbre"] == pytest.approx(6.0 * TIMBRE_WEIGHT, abs=1e-5)
    unweighted = decide_voice_type(sung, {"timbre": direction}, loaded, SHIPPED.but(timbre_weight=0.0))
    assert unweighted.probabilities == pytest.approx(alone.probabilities)


def test_the_timbre_weight_is_lower_when_the_timbre_cue_repeats_the_pitch_cue() -> None:
    """Leave-singers-out choice of the timbre weight: a cue that only echoes pitch and formants (plus noise) gets
    less weight than one that knows what they miss."""
    from training.fit_voice_type import choose_timbre_weight, sex_log_loss

    rng = np.random.default_rng(0)
    singers = np.repeat(np.arange(40), 5).astype(str)
    female = np.repeat(rng.random(40) < 0.5, 5)
    truth = np.where(female, 1.0, -1.0) * 2 + rng.normal(0, 1, female.size)  # what the voice really says
    pitch = 0.5 * (truth + rng.normal(0, 2, female.size))  # a noisy, cautious sight of it
    echo = 2 * pitch + rng.normal(0, 1, female.size)  # the timbre cue learned from pitch-labelled singers
    independent = 0.5 * (truth + rng.normal(0, 2, female.size))  # another sight of the truth, its own noise
    assert choose_timbre_weight(pitch, echo, female, singers) < choose_timbre_weight(pitch, independent, female,
                                                                                     singers) == 1.0  # fmt: skip
    assert sex_log_loss(pitch, echo, 1.0, female, singers) > sex_log_loss(pitch, echo, 0.25, female, singers)


def test_the_shipped_classifier_reads_the_shipped_timbre_encoder() -> None:
    """hub/voicerec-voice-type was fitted on hub/voicerec-sscl-timbre's weights: after new encoder weights, refit
    it with `python -m training.fit_voice_type --data ../shared/data`."""
    classifier = VoiceTypeClassifier.from_pretrained(HUB_DIR / "voicerec-voice-type")
    assert classifier.coef.shape == classifier.mean.shape == (classifier.config["embedding_size"],)
    assert classifier.encoder_fingerprint == weights_fingerprint(HUB_DIR / "voicerec-sscl-timbre")
    assert (HUB_DIR / "voicerec-voice-type" / "README.md").read_text().count("CC BY-NC-SA 4.0") >= 1
    assert classifier.config["timbre_weight"] == TIMBRE_WEIGHT  # the fitted weight, copied into voice_type.py


def test_other_encoders_fall_back_to_pitch_and_formants(tiny_encoders, singing) -> None:
    """Tiny encoders (another size) cannot use the shipped classifier: the profile says so, and still has a type."""
    from voicerec.embeddings import Embedder
    from voicerec.recommender import load_voice_classifier

    embedder = Embedder.from_pretrained(**tiny_encoders)
    classifier, why = load_voice_classifier(None, embedder)
    assert classifier is None and "reads 256-d timbre" in why
    missing, why_missing = load_voice_classifier(HUB_DIR / "no-such-folder", embedder)
    assert missing is None and "no voice-type classifier" in why_missing
    from voicerec.recommender import Recommender

    profile = Recommender(embedder, _tiny_catalog(tiny_encoders), classifier, why).analyse((16000, singing))
    assert profile.voice is not None and profile.voice.method == "pitch and formants"
    assert profile.range.voice_type == profile.voice.label
    assert profile.to_dict()["voice"]["text"] == profile.voice.text
    assert any("pitch and formants only" in w for w in profile.warnings)


def _tiny_catalog(tiny_encoders):
    """A stand-in for a catalog: `Recommender.analyse` only checks the embedding sizes and loads the table."""
    from voicerec.embeddings import Embedder

    sizes = Embedder.from_pretrained(**tiny_encoders).dimensions

    class Stub:
        source, models = "stub", {}

        def matrix(self, name):
            return np.zeros((1, sizes[name] if name != "fused" else sum(sizes.values())), dtype=np.float32)

        def table(self):
            return None

    return Stub()
