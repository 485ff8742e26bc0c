"""Audio input: any file or microphone recording -> clean mono singing at the model rate.

Every problem with the input is reported as one exception type, `AudioInputError`, whose message is
written for the person who sang (the app shows it as is).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

MODEL_RATE = 16000
"""Sample rate of every voicerec model."""
MAX_SECONDS = 60.0
"""Longer input is cut to its first MAX_SECONDS of singing (after leading silence), not refused."""
MIN_VOICED_SECONDS = 3.0
"""Less singing than this is refused: no embedding or range estimate is meaningful from less."""
NOISY_BELOW_DB = 9.0
"""A recording whose loudest frames (95th percentile) are less than this above its quietest (10th) is mostly noise:
clean singing measures 13-60 dB (gtsinger-dev), real singing 5 dB above white noise about 8."""
TARGET_RMS_DBFS = -20.0
FRAME_SECONDS = 0.032
HOP_SECONDS = 0.010
_READ_LIMIT_SECONDS = 3 * MAX_SECONDS  # never decode more than this from a file
SILENT_BELOW = 1e-4
SILENT_MESSAGE = "The recording is silent: check that the microphone is on and sing louder."
CLIPPED_ABOVE = 0.001
"""A share of samples at full scale above this is reported as clipping."""


class AudioInputError(ValueError):
    """The input cannot be used; the message says why in words meant for the singer."""


@dataclass
class VoiceAudio:
    """Clean input: `samples` (float32 mono at `sampling_rate`) and where the voice is.

    `voiced` holds one flag per `hop_seconds` frame; `regions` the same as (start, end) seconds.
    `warnings` lists problems that did not stop analysis (clipping, cut to the cap, low level).
    """

    samples: np.ndarray
    sampling_rate: int
    voiced: np.ndarray
    regions: list[tuple[float, float]]
    hop_seconds: float = HOP_SECONDS
    warnings: list[str] = field(default_factory=list)
    offset: int = 0
    """Samples trimmed from the start of the (resampled) input."""
    gain: float = 1.0
    """The factor the input was multiplied by (loudness normalisation)."""

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sampling_rate

    @property
    def voiced_seconds(self) -> float:
        return float(self.voiced.sum()) * self.hop_seconds

    def voiced_samples(self) -> np.ndarray:
        """Only the voiced stretches, joined: what pitch and range analysis should look at."""
        parts = [self.samples[int(a * self.sampling_rate) : int(b * self.sampling_rate)] for a, b in self.regions]
        return np.concatenate(parts) if parts else self.samples[:0]


def _read_file(path: Path) -> tuple[np.ndarray, int]:
    if not path.exists():
        raise AudioInputError(f"File not found: {path}")
    if path.is_dir():
        raise AudioInputError(f"{path} is a folder, not an audio file.")
    if path.stat().st_size == 0:
        raise AudioInputError(f"{path.name} is empty (0 bytes).")
    try:
        info = sf.info(str(path))
        data, sr = sf.read(
            str(path), frames=int(info.samplerate * _READ_LIMIT_SECONDS), dtype="float32", always_2d=True
        )
    except Exception:  # libsndfile refused it: try the slower decoders librosa knows
        try:
            # librosa's fallback notice and audioread's deprecations are not the singer's concern
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", (UserWarning, FutureWarning, DeprecationWarning))
                data, sr = librosa.load(str(path), sr=None, mono=False, duration=_READ_LIMIT_SECONDS)
        except Exception as exc:
            raise AudioInputError(
                f"Could not read {path.name} as audio. Use a WAV, FLAC, OGG or MP3 recording."
            ) from exc
        data = np.atleast_2d(data).T
    return data, int(sr)


def _from_array(sr: int, array: np.ndarray) -> np.ndarray:
    """Microphone arrays come as int16/int32/float, shaped (samples,) or (samples, channels)."""
    array = np.asarray(array)
    if array.dtype.kind not in "iuf":
        raise AudioInputError(f"Audio samples must be numbers, got {array.dtype}.")
    if array.dtype.kind == "i":
        data = array.astype(np.float32) / float(np.iinfo(array.dtype).max + 1)
    elif array.dtype.kind == "u":
        info = np.iinfo(array.dtype)
        half = (info.max + 1) / 2
        data = (array.astype(np.float32) - half) / half
    else:
        data = array.astype(np.float32)
    if data.ndim == 1:
        data = data[:, None]
    elif data.ndim == 2:
        if data.shape[0] < data.shape[1] and data.shape[0] <= 8:
            data = data.T  # channels-first, as torchaudio and librosa keep it
    else:
        raise AudioInputError(f"Expected mono or multi-channel audio, got an array of shape {array.shape}.")
    return data


def frame_levels(x: np.ndarray, sr: int, center: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(dB, spectral flatness) of each `HOP_SECONDS` frame: what `prepare` decides from. With `center=False` the
    frames start at the signal's start (a live stream passes each block with its context already around it)."""
    frame, hop = int(FRAME_SECONDS * sr), int(HOP_SECONDS * sr)
    rms = librosa.feature.rms(y=x, frame_length=frame, hop_length=hop, center=center)[0]
    flatness = librosa.feature.spectral_flatness(y=x, n_fft=frame, hop_length=hop, center=center)[0]
    return 20 * np.log10(rms + 1e-10), flatness


def _dynamic_range_db(db: np.ndarray) -> float:
    """Loud minus quiet frames: how far the voice stands out of the background (low = heavy noise)."""
    db = db[db > db.max() - 80.0]
    return float(np.percentile(db, 95) - np.percentile(db, 10))


def _voiced_frames(db: np.ndarray, flatness: np.ndarray) -> np.ndarray:
    """Frames loud enough relative to the loudest, and tonal rather than noise-like (spectral flatness)."""
    loud = (db > db.max() - 35.0) & (db > -60.0)
    tonal = flatness < 0.25
    voiced = loud & tonal
    # close gaps shorter than 100 ms (consonants between sung vowels) and drop blips shorter than 50 ms
    voiced = _close_gaps(voiced, 10)
    return _drop_short(voiced, 5)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return list(zip(edges[0::2], edges[1::2], strict=True))


def _close_gaps(mask: np.ndarray, max_gap: int) -> np.ndarray:
    out = mask.copy()
    runs = _runs(~mask)
    for a, b in runs:
        if a > 0 and b < len(mask) and b - a <= max_gap:
            out[a:b] = True
    return out


def _drop_short(mask: np.ndarray, min_len: int) -> np.ndarray:
    out = mask.copy()
    for a, b in _runs(mask):
        if b - a < min_len:
            out[a:b] = False
    return out


def load_audio(source: str | Path | tuple[int, np.ndarray], sampling_rate: int = MODEL_RATE) -> VoiceAudio:
    """Read a path (wav, flac, ogg, mp3) or a `(sample_rate, array)` microphone tuple.

    Returns float32 mono at `sampling_rate`, loudness-normalised to -20 dBFS RMS over the voice, with
    leading and trailing silence trimmed, cut to MAX_SECONDS, and the voiced regions marked.
    Raises AudioInputError for empty, silent, unreadable, non-finite or too-short input.
    """
    if isinstance(source, (str, Path)):
        data, sr = _read_file(Path(source))
    elif isinstance(source, tuple) and len(source) == 2:
        sr, array = source
        if array is None:
            raise AudioInputError("No audio was recorded.")
        data = _from_array(int(sr), array)
    else:
        raise AudioInputError("Give a path to an audio file or a (sample_rate, samples) tuple from a microphone.")
    if sr <= 0:
        raise AudioInputError(f"Invalid sample rate: {sr}.")
    if data.size == 0 or data.shape[0] == 0:
        raise AudioInputError("The recording is empty.")
    if not np.all(np.isfinite(data)):
        raise AudioInputError("The recording contains invalid samples (NaN or infinity).")
    warnings = clipping_warnings(float(np.mean(np.abs(data) >= 0.999)))
    mono = data.mean(axis=1).astype(np.float32)
    if np.max(np.abs(mono)) < SILENT_BELOW:
        raise AudioInputError(SILENT_MESSAGE)
    if sr != sampling_rate:
        mono = librosa.resample(mono, orig_sr=sr, target_sr=sampling_rate, res_type="soxr_hq")
    return prepare(mono, sampling_rate, warnings)



def clipping_warnings(clipped_share: float) -> list[str]:
    """The warning for a share of clipped samples (|x| >= 0.999), if it is above CLIPPED_ABOVE."""
    if clipped_share <= CLIPPED_ABOVE:
        return []
    return [f"{clipped_share:.1%} of the samples are clipped: move away from the microphone or lower its gain."]


def prepare(
    mono: np.ndarray,
    sampling_rate: int,
    warnings: list[str],
    levels: tuple[np.ndarray, np.ndarray] | None = None,
) -> VoiceAudio:
    """The decisions `load_audio` takes over the whole recording (mono at the model rate): where the voice is, the
    silence trimmed, the loudness normalised. `levels` (`frame_levels(mono)`) may be given when already measured,
    as a live stream does block by block."""
    warnings = list(warnings)
    db, flatness = frame_levels(mono, sampling_rate) if levels is None else levels
    noisy = _dynamic_range_db(db) < NOISY_BELOW_DB
    noise_advice = "sing closer to the microphone, in a quieter room"
    voiced = _voiced_frames(db, flatness)
    if not voiced.any():
        raise AudioInputError("No singing was found in the recording: it sounds like silence or noise.")
    hop = int(HOP_SECONDS * sampling_rate)
    first, last = np.flatnonzero(voiced)[[0, -1]]
    start = first * hop
    end = min(len(mono), (last + 1) * hop + hop)
    cap = int(MAX_SECONDS * sampling_rate)
    if end - start > cap:
        warnings.append(f"Only the first {MAX_SECONDS:.0f} s of singing were used.")
        end = start + cap
    mono = mono[start:end]
    voiced = voiced[first : first + int(np.ceil((end - start) / hop))]
    voiced_seconds = voiced.sum() * HOP_SECONDS
    if voiced_seconds < MIN_VOICED_SECONDS:
        raise AudioInputError(
            f"Only {voiced_seconds:.1f} s of singing were found; please sing for at least "
            f"{MIN_VOICED_SECONDS:.0f} s (about 10 s works best)."
            + (f" The recording is very noisy: {noise_advice}." if noisy else "")
        )
    if noisy:
        warnings.append(f"The recording is noisy, so the results are less reliable: {noise_advice}.")
    sample_mask = np.zeros(len(mono), dtype=bool)
    flags = np.repeat(voiced, hop)[: len(mono)]
    sample_mask[: len(flags)] = flags
    rms = np.sqrt(np.mean(np.square(mono[sample_mask])) + 1e-12)
    level = 20 * np.log10(rms + 1e-12)
    if level < -50:
        warnings.append("The recording is very quiet: sing closer to the microphone.")
    gain = 10 ** (TARGET_RMS_DBFS / 20) / rms
    mono = mono * gain
    peak = float(np.max(np.abs(mono)))
    if peak > 0.99:
        mono = mono * (0.99 / peak)
        gain *= 0.99 / peak
    regions = [(a * HOP_SECONDS, b * HOP_SECONDS) for a, b in _runs(voiced)]
    return VoiceAudio(
        samples=mono.astype(np.float32), sampling_rate=sampling_rate, voiced=voiced, regions=regions, warnings=warnings,
        offset=int(start), gain=float(gain),
    )  # fmt: skip
