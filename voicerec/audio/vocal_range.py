"""A singer's comfortable range, tessitura and voice type from a pitch track, and how well a song fits them.

Every voiced 10 ms frame counts as 10 ms of singing, so percentiles of the frames' pitch are weighted by
duration: a note held for a second weighs a hundred times a passing 10 ms. The extremes of a recording are
cracks, scoops, and octave slips as often as real notes, so the *comfortable range* is the 5th..95th
percentile and the *tessitura* (where the voice spends most of its time) the 25th..75th.

Voice type. Pitch alone cannot tell a high male voice from a low female one (a tenor and an alto share most
of their notes), so when the recording itself is given, a cue of vocal-tract size joins it: the median fourth
formant (`voicerec.audio.formants`), higher for a shorter, typically female, vocal tract. Each cue counts in units of
the usual gap between men and women: about an octave in pitch, about 3 semitones (18 %) in formants, so one
semitone of F4 weighs as much as `FORMANT_WEIGHT` = 4 semitones of pitch. A voice is female when
median + 4 x (F4 in semitones above 3.8 kHz) is above `FEMALE_ABOVE_MIDI`; then the type is the nearest of the
three of that sex in `SUNG_CENTRES`. Untrained singers of everyday songs sing well below the classical
tessituras: gtsinger-dev's sopranos sing around E4, where the classical rule says alto, so the women's centres
sit `FEMALE_OFFSET` semitones below the classical ones. The two constants were fitted on gtsinger-dev's fold B
singers and pjs (not on the fold A singers, on which the README reports); with no basses in fold B, the men's
centres stay classical. Without the recording (`estimate_range(track)` alone) the type is the one whose
classical comfortable range is centred nearest the median pitch.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import librosa
import numpy as np

from . import accompaniment
from .formants import fourth_formant, harmonic_share
from .frame_cues import KnownFrames
from .input import MODEL_RATE, AudioInputError
from .pitch import PitchTrack

MIN_PITCHED_SECONDS = 2.0
"""Less clearly pitched singing than this gives no meaningful range."""
HELD_NOTE_SECONDS = 0.15
HELD_NOTE_SEMITONES = 1.5
"""A held note: at least `HELD_NOTE_SECONDS` of pitch inside this span (vibrato fits; a speaking voice glides
through its syllables and does not)."""
MIN_HARMONIC_SHARE = 0.001
"""A voice's overtones carry at least this share of its harmonic energy (lowest on the first 10 s of real singing
clips: 0.030 on gtsinger-dev's 54, 0.005 on mir1k-dev's 579, 0.34 on pjs's 98; a pure sine: 6e-8): below it, the
input is a pure tone, not a voice (`python -m training.evaluate_pitch --held-notes-only`)."""
STEADY_CENTS = 10.0
MAX_STEADY_SHARE = 0.8
"""No voice holds its pitch within `STEADY_CENTS` of one note for most of a recording (the same real singing
clips: at most 35 % of the voiced frames; a sine or a sawtooth: all of them): above this share, it is an electronic
tone."""
MIN_HELD_SECONDS = 1.5
"""Singing holds notes, speech does not: less time in held notes than this is refused as not singing. Set from
gtsinger-dev (the first 10 s of each of its 54 singing clips: 2.9 s or more, median 6.2 s) and synthetic speech-like
syllables (tests/test_bad_input.py: at most 0.6 s), then checked on pjs, first 10 s of each file: 95 of its 96 real
speech recordings that pass the loudness checks fall below (median 0.5 s), and 4 of its 98 songs do too (median
3.6 s; short syllabic songs), so those singers are asked for held notes."""
MIN_HELD_SHARE = 0.1
"""For input known to be singing (a catalog's songs, `estimate_range(..., known_singing=True)`), the speech check
above answers a question already answered, and refuses studio vocal stems whose stacked harmonies or doubled takes
the tracker follows only on a few solo notes (EDCAV's "What Have You Done To Me": 2.8 s of pitch, 1.2 s held).
What such input needs is that its pitch track be a melody: at least this share of the pitched frames lies in held
notes. Real singing clips, whole: at least 0.58 on gtsinger-dev's 54, 0.29 on a quarter of mir1k-dev's (144), 0.15
on pjs's 98; screamed metal vocals, where the tracker follows noise: 0.00-0.03."""
RANGE_PERCENTILES = (5.0, 95.0)
TESSITURA_PERCENTILES = (25.0, 75.0)
MAX_TRANSPOSE = 6

VOICE_TYPES: dict[str, tuple[int, int]] = {
    "bass": (40, 60),  # E2..C4
    "baritone": (43, 64),  # G2..E4
    "tenor": (48, 67),  # C3..G4
    "alto": (53, 72),  # F3..C5
    "mezzo-soprano": (57, 76),  # A3..E5
    "soprano": (60, 81),  # C4..A5
}
"""Typical comfortable (not extreme) range of each voice type, as MIDI notes (choral/classical conventions)."""
VOICE_CENTRES: dict[str, float] = {name: (lo + hi) / 2 for name, (lo, hi) in VOICE_TYPES.items()}
MALE_TYPES = ("bass", "baritone", "tenor")
FEMALE_TYPES = ("alto", "mezzo-soprano", "soprano")
FORMANT_REFERENCE_HZ = 3800.0
FORMANT_WEIGHT = 4.0
"""Semitones of pitch that one semitone of F4 is worth: men and women differ by ~12 in pitch, ~3 in formants."""
FEMALE_ABOVE_MIDI = 62.4
"""Boundary of median + FORMANT_WEIGHT x F4 semitones re FORMANT_REFERENCE_HZ; middle of the best interval on fold B."""
FEMALE_OFFSET = 6.4
"""Semitones below the classical centres that women of gtsinger-dev's fold B sing: puts the mezzo/soprano
boundary (classically 68.5) at 62.1, the middle of the best interval on those singers."""
SUNG_CENTRES: dict[str, float] = {
    name: VOICE_CENTRES[name] - (FEMALE_OFFSET if name in FEMALE_TYPES else 0.0) for name in VOICE_TYPES
}
"""Median pitch of each type in everyday singing, used with the formant cue."""


def note_name(midi: float) -> str:
    """The nearest equal-tempered note, sharps spelled with '#': 57 -> 'A3', 61.2 -> 'C#4'."""
    if not np.isfinite(midi):
        raise ValueError(f"No note name for {midi}.")
    return _note_name(int(round(float(midi))))


@functools.cache
def _note_name(midi: int) -> str:
    """librosa's spelling, kept once per note: a ranking names a few hundred notes, and librosa parses each."""
    return librosa.midi_to_note(midi, unicode=False)


def is_female(median_midi: float, fourth_formant_hz: float) -> bool:
    """Whether pitch and vocal-tract size together point to a female voice (see module doc)."""
    size = median_midi + FORMANT_WEIGHT * 12.0 * np.log2(fourth_formant_hz / FORMANT_REFERENCE_HZ)
    return bool(size > FEMALE_ABOVE_MIDI)


def voice_type(median_midi: float, fourth_formant_hz: float | None = None) -> str:
    """Voice type from the median sung pitch and, if known and finite, the median F4 (see module doc)."""
    if fourth_formant_hz is None or not np.isfinite(fourth_formant_hz):
        return min(VOICE_CENTRES, key=lambda name: abs(VOICE_CENTRES[name] - median_midi))
    types = FEMALE_TYPES if is_female(median_midi, fourth_formant_hz) else MALE_TYPES
    return min(types, key=lambda name: abs(SUNG_CENTRES[name] - median_midi))


@dataclass
class VocalRange:
    """A singer's comfortable range (low..high), tessitura and median pitch, as fractional MIDI numbers."""

    low: float
    high: float
    tessitura_low: float
    tessitura_high: float
    median: float
    voice_type: str
    voiced_seconds: float
    fourth_formant: float | None = None
    """Median F4 in Hz (the vocal-tract size cue), when the recording was given and it could be measured."""

    def to_dict(self) -> dict[str, float | str]:
        """JSON-able: the fields plus note names ('low_note': 'A2', ...)."""
        out: dict[str, float | str] = asdict(self)
        for key in ("low", "high", "tessitura_low", "tessitura_high", "median"):
            out[f"{key}_note"] = note_name(getattr(self, key))
        return out


def held_note_seconds(track: PitchTrack) -> float:
    """Seconds of voiced frames inside some window of `HELD_NOTE_SECONDS` whose pitch stays within
    `HELD_NOTE_SEMITONES`."""
    width = max(2, int(round(HELD_NOTE_SECONDS / track.hop_seconds)) + 1)
    midi = track.midi
    if len(midi) < width:
        return 0.0
    windows = np.lib.stride_tricks.sliding_window_view(midi, width)
    steady = np.all(np.isfinite(windows), axis=1)
    steady[steady] = np.ptp(windows[steady], axis=1) < HELD_NOTE_SEMITONES
    held = np.convolve(steady.astype(float), np.ones(width))[: len(midi)] > 0  # every frame of a steady window
    return float((held & track.voiced).sum() * track.hop_seconds)


def steady_share(track: PitchTrack) -> float:
    """Share of the voiced frames within `STEADY_CENTS` of the median pitch: near 1 only for an electronic tone."""
    midi = track.midi[track.voiced]
    return float(np.mean(np.abs(midi - np.median(midi)) < STEADY_CENTS / 100)) if midi.size else 0.0


def _music_behind(samples: np.ndarray | None, sr: int, track: PitchTrack, known: KnownFrames) -> None:
    """Raise the accompaniment advice if the recording that failed a singing check has music behind the voice: the
    music, not the singer, is why too little singing was found (`voicerec.audio.accompaniment`)."""
    if samples is not None and accompaniment.measure(samples, sr, track, known.music).detected:
        raise AudioInputError(accompaniment.advice())


def estimate_range(
    track: PitchTrack,
    samples: np.ndarray | None = None,
    sr: int = MODEL_RATE,
    known_singing: bool = False,
    known: KnownFrames | None = None,
) -> VocalRange:
    """Range, tessitura and voice type from the voiced frames of `track` (duration-weighted percentiles).

    `samples` (the recording `track` was measured on, at `sr`) add the formant cue to the voice type.
    `known_singing`: the caller knows it is singing (a catalog's songs), so the speech check gives way to
    `MIN_HELD_SHARE`; a person's recording keeps every check. `known`: frames whose cues were measured already
    (a live session's).
    """
    known = known or KnownFrames()
    midi = track.midi[track.voiced]
    seconds = float(midi.size * track.hop_seconds)
    if seconds < MIN_PITCHED_SECONDS:
        _music_behind(samples, sr, track, known)
        raise AudioInputError(
            f"Only {seconds:.1f} s of clearly pitched singing were found; sing held notes (vowels, not speech) "
            f"for at least {MIN_PITCHED_SECONDS:.0f} s, about 10 s works best."
        )
    not_voice = 'This sounds like {}, not a voice: sing a melody (words or "la la la") for about 10 s.'
    if samples is not None and harmonic_share(samples, sr, track, known.overtones) < MIN_HARMONIC_SHARE:
        raise AudioInputError(not_voice.format("a pure tone (a test tone or a whistle)"))
    if steady_share(track) > MAX_STEADY_SHARE:
        raise AudioInputError(not_voice.format("one unwavering electronic tone"))
    held = held_note_seconds(track)
    if held < (MIN_HELD_SHARE * seconds if known_singing else MIN_HELD_SECONDS):
        _music_behind(samples, sr, track, known)
        raise AudioInputError(
            f"Only {held:.1f} of its {seconds:.1f} s of pitch are held notes: the pitch track follows no melody "
            f"(screamed or heavily distorted vocals?), so it gives no range."
            if known_singing
            else f"Only {held:.1f} s of held notes were found: this sounds like speech rather than singing. Sing "
            f"a melody with held notes (vowels) for about 10 s."
        )
    low, t_low, median, t_high, high = np.percentile(
        midi, [RANGE_PERCENTILES[0], TESSITURA_PERCENTILES[0], 50.0, TESSITURA_PERCENTILES[1], RANGE_PERCENTILES[1]]
    )
    f4 = fourth_formant(samples, sr, track, known.formants) if samples is not None else float("nan")
    return VocalRange(
        low=float(low),
        high=float(high),
        tessitura_low=float(t_low),
        tessitura_high=float(t_high),
        median=float(median),
        voice_type=voice_type(float(median), f4),
        voiced_seconds=seconds,
        fourth_formant=float(f4) if np.isfinite(f4) else None,
    )


TRANSPOSITIONS = np.array(sorted(range(-MAX_TRANSPOSE, MAX_TRANSPOSE + 1), key=abs))
"""Key changes tried, smallest first, so that ties go to the smallest."""


def _outside(lo: np.ndarray, hi: np.ndarray, bound_lo: float, bound_hi: float) -> np.ndarray:
    """Semitones of [lo, hi] that fall outside [bound_lo, bound_hi]."""
    return np.maximum(0.0, bound_lo - lo) + np.maximum(0.0, hi - bound_hi)


def range_fits(
    song_low: np.ndarray,
    song_high: np.ndarray,
    song_tess_low: np.ndarray,
    song_tess_high: np.ndarray,
    singer: VocalRange,
) -> tuple[np.ndarray, np.ndarray]:
    """Per song, the transposition in -6..+6 semitones and the fit in 0..1 that best put it where the singer is
    comfortable: `range_fit` over arrays, all songs of a ranking's pool at once. A song without a range (NaN) gets
    no key change and a NaN fit."""
    shift = TRANSPOSITIONS[:, None]
    tess_low, tess_high = np.asarray(song_tess_low, float) + shift, np.asarray(song_tess_high, float) + shift
    song_centre = (tess_low + tess_high) / 2
    singer_centre = (singer.tessitura_low + singer.tessitura_high) / 2
    penalty = (
        _outside(tess_low, tess_high, singer.low, singer.high)
        + 0.5 * _outside(np.asarray(song_low, float) + shift, np.asarray(song_high, float) + shift, singer.low,
                         singer.high)
        + 0.25 * np.maximum(0.0, np.abs(song_centre - singer_centre) - 2.0)
    )  # fmt: skip
    best = np.argmax(penalty < np.nanmin(penalty, axis=0, initial=np.inf) + 1e-9, axis=0)  # smallest of the best
    return TRANSPOSITIONS[best], np.exp(-penalty[best, np.arange(penalty.shape[1])] / 4.0)


def range_fit(
    song_low: float, song_high: float, song_tess_low: float, song_tess_high: float, singer: VocalRange
) -> tuple[int, float]:
    """(transposition in -6..+6 semitones, fit in 0..1) that best puts the song where the singer is comfortable.

    The penalty of a transposition counts semitones of the song's tessitura outside the singer's comfortable
    range (weight 1), of its whole range outside it (weight 0.5, a few passing notes are bearable) and the
    distance between the two tessitura centres beyond 2 semitones (weight 0.25, which centres songs that fit
    anywhere); fit = exp(-penalty / 4), so 1 is a perfect fit and a tessitura 3 semitones too high gives about
    0.5. Ties go to the smallest key change: people like to sing a song in the key they know.
    """
    shifts, fits = range_fits(*([v] for v in (song_low, song_high, song_tess_low, song_tess_high)), singer)
    return int(shifts[0]), float(fits[0])
