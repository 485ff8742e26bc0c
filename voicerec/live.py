"""Live analysis: singing analysed while it arrives, so that the answer is ready when the singer stops.

    session = LiveSession(recommender)
    for rate, chunk in microphone:         # any chunk size, any rate, int or float samples
        update = session.push(rate, chunk)   # pitch, note, range so far, level, hints: what the page shows
    result = session.finish(top=10)          # the Recommendations Recommender.recommend gives for the whole take

What runs as the audio arrives, and why the sum is the batch result:
- resampling to the model rate: soxr's stream gives the same samples as the one-shot resampling `load_audio` does;
- the frame levels `load_audio` decides from (`frame_levels`): each frame reads 32 ms around it;
- the pitch before its octave fix (`local_pitch`): each frame depends on the audio near it, so blocks with
  `PITCH_CONTEXT` frames of context on the left and `PITCH_MARGIN` frames held back on the right give the frames
  the whole-recording track has (the frames near the trimmed start and end are redone at `finish`, where the
  batch track sees silence); the octave fix, which reads far, is redone over the whole track at `finish` (cheap);
- every finished 1.6 s encoder window through the LSTM as soon as its frames are final. Windows sit at fixed
  positions from the start of the singing, so the recording's windows are the stream's windows. Three figures of
  the whole recording enter the LSTM's input: the loudness gain (the mel power is not scale-free), and for the
  note-adjusted copy the shift to the reference note (from the median pitch) and the envelope's cepstral cut.
  Each window is computed with the running estimates and remembers them; when an estimate drifts past a
  tolerance (`GAIN_TOLERANCE_DB`, the cut exactly) the window is redone, a few per chunk while the singer sings,
  and at `finish` every window whose figures differ from the whole recording's, with the last windows, which read
  the end. The shift is the exception, because the median pitch keeps moving by tenths of a semitone to the last
  chunk (and jumps when it passes from one note to the next): the note-adjusted copy of each window is computed
  at the two points of a `SHIFT_STEP` grid around the running shift, and at `finish` its LSTM state is
  interpolated between the two around the final shift (clip cosine to the exact shift >= 0.9999 on synthetic
  voices, as the former 0.01-semitone tolerance gave), so a shift that stayed between the same grid points costs
  no LSTM pass; windows without both grid points are computed at the final shift itself. (Three grid points,
  the nearest and its neighbours, caught the final shift on 6 of 6 synthetic takes against 4 of 6, for 40 % more
  LSTM work while singing; at 4 singers on 2 cores that work is what delays the live updates.)
- the range's formant and overtone cues and the music check's energies of each settled pitched frame
  (`voicerec.audio.frame_cues`): each frame reads only the audio around it, so at `finish` they are gathered, and
  only the frames near the trimmed ends, or whose pitch moved since, are measured again. The formants read an
  11 kHz copy resampled as a stream (the same samples as the trimmed recording's resampling, away from its ends).
What is left for `finish`: the last chunk's frames, the windows above, the octave fix, gathering the range and
voice type, the mood embedding (TJAE normalises its input over the whole clip: a mood taken with the statistics of
the first 98 % of a take is at cosine 0.36 from the exact one, so nothing of it can be done early), and the search;
the mood pass starts as soon as the recording is trimmed (beside the final pitch track and then the LSTM), the
range and the music check run beside the LSTM (`embeddings.SIDE_WORK`). A chunk pushed once
Stop is pressed (`push(..., stopping=True)`, the page's last chunk) is only taken in: `finish` tracks its pitch and
runs its windows in one batch with the windows that read the end; a push already running when Stop is pressed
(`stop()`, from another thread) leaves its remaining stages to `finish` the same way.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np
import soxr
import torch

from .audio import accompaniment
from .audio.formants import (
    HARMONIC_FRAME_SECONDS,
    LPC_LENGTH,
    LPC_RATE,
    PRE_EMPHASIS,
    harmonic_frames,
    lpc_frames,
    lpc_starts,
)
from .audio.frame_cues import KnownFrames, Measured
from .audio.input import (
    FRAME_SECONDS,
    MODEL_RATE,
    NOISY_BELOW_DB,
    SILENT_BELOW,
    SILENT_MESSAGE,
    AudioInputError,
    VoiceAudio,
    _dynamic_range_db,
    _from_array,
    clipping_warnings,
    frame_levels,
    prepare,
)
from .audio.note_adjust import reference_shift
from .audio.pitch import HOP_SECONDS, PitchTrack, folded_track, local_pitch
from .audio.range_test import MeasuredRange
from .audio.vocal_range import VocalRange, note_name
from .embeddings import EMBEDDING_NAMES, SIDE_WORK, _unit
from .models.modeling_ge2e import GE2EModel, window_starts
from .recommender import Recommendations, Recommender, VoiceProfile
from .search.ranking import DEFAULT_RANGE_WEIGHT

HOP = int(HOP_SECONDS * MODEL_RATE)
PITCH_CONTEXT = 40
"""Frames of audio before the first new frame given to the tracker (DIO's filters reach about 20)."""
PITCH_MARGIN = 30
"""Frames at the live edge the tracker holds back: audio still to come changes them."""
FOLD_MARGIN = 20
"""Frames a window's end keeps from the last final frame, so that the octave fix around them is settled."""
EDGE_FRAMES = 40
"""Frames at the trimmed start and end of the recording tracked again at `finish` on the trimmed recording."""
GAIN_TOLERANCE_DB = 0.25
"""A window computed at a gain this close to the final one is kept: a whole clip at 0.25 dB from the gain has
embeddings at cosine 0.9995-0.9999 from the exact ones, the streamed takes (windows spread over the tolerance)
0.99987-0.99997 with the shift grid, the same top 10 on 6 synthetic voices. At 0.1 dB the windows redone as the
running loudness moved took a 15 s take to 660-980 LSTM window passes (three grid points), at 0.25 dB 400-570."""
SHIFT_STEP = 0.25
"""Semitones between the grid points the note-adjusted windows are computed at (see module doc)."""
FLOOR_TOLERANCE_DB = 1.0
"""The note adjustment's floor (100 dB under the clip's loudest bin) moves this little, or the window is redone."""
TRACE_SECONDS = 8.0
MUSIC_SECONDS = 5.0
"""The live hint about music behind the voice reads the last this many seconds, once a second."""
MIN_NEW_FRAMES = 10
PIECE_FRAMES = 80
"""Frames the LSTM runs at a time while singing, between looks at whether Stop was pressed: each call costs about
4 ms more at batch 1 and little at 2 or more, so pieces of 20 frames slowed every push by 10-14 ms (live updates
p50 0.060 -> 0.075 s) for a few milliseconds saved at Stop; two pieces keep part of the saving for little."""
LPC_EDGE = 128
"""Samples of the 11 kHz LPC signal at each trimmed end where the stream's resampling differs from the trimmed
recording's (the filter reads past the cut: about 100 samples above 1e-5): frames reaching them are fitted again."""
OVERTONE_REACH = int(HARMONIC_FRAME_SECONDS * MODEL_RATE) // 2


@dataclass
class LiveUpdate:
    """What the page shows after a chunk: the recent pitch (MIDI, NaN unvoiced, seconds since the start), the
    current note, how long each note was sung, the chunk's level and what to change, if anything."""

    times: np.ndarray
    midi: np.ndarray
    note: str | None
    cents: float | None
    note_seconds: dict[int, float]
    level_db: float
    peak: float
    hints: list[str]
    seconds: float
    sung_seconds: float


@dataclass
class _Window:
    """One encoder window's LSTM states and the recording-wide figures each was made with: the plain copy, and the
    note-adjusted copy at each shift computed (grid points, or the final shift)."""

    plain: torch.Tensor | None = None
    params: dict = field(default_factory=dict)
    notes: dict[float, tuple[torch.Tensor, dict]] = field(default_factory=dict)

    def note_state(self, shift: float) -> torch.Tensor:
        """The note-adjusted state at `shift`: computed there, or interpolated between the grid points around it."""
        if shift in self.notes:
            return self.notes[shift][0]
        low, high = _bracket(shift)
        weight = (shift - low) / SHIFT_STEP
        return (1 - weight) * self.notes[low][0] + weight * self.notes[high][0]


def _bracket(shift: float) -> tuple[float, float]:
    """The grid points around a shift (SHIFT_STEP apart)."""
    low = float(np.floor(shift / SHIFT_STEP) * SHIFT_STEP)
    return low, low + SHIFT_STEP




@dataclass
class _Trunk:
    """One LSTM and the encoders that project its states (the shipped timbre and expression share one)."""

    model: GE2EModel
    extractor: object
    heads: dict[str, GE2EModel]
    windows: dict[int, _Window] = field(default_factory=dict)


@dataclass
class _Cue:
    """One per-frame cue (`voicerec.audio.frame_cues`) measured while singing: rows by frame of the recording, and
    the f0 each was measured with (NaN: not measured)."""

    rows: np.ndarray
    f0: np.ndarray = field(default_factory=lambda: np.full(2000, np.nan))

    def put(self, frames: np.ndarray, f0: np.ndarray, rows: np.ndarray) -> None:
        if frames.size == 0:
            return
        if frames[-1] >= self.f0.size:
            size = max(2 * self.f0.size, int(frames[-1]) + 1)
            self.f0 = np.concatenate([self.f0, np.full(size - self.f0.size, np.nan)])
            self.rows = np.concatenate([self.rows, np.zeros((size - len(self.rows), *self.rows.shape[1:]))])
        self.f0[frames], self.rows[frames] = f0, rows

    def known(self, first: int, f0: np.ndarray, valid: np.ndarray, pitch: bool = True, scale: float = 1.0
              ) -> Measured:  # fmt: skip
        """The rows for a track starting at frame `first` with pitch `f0`, where `valid` (the frame read only audio
        the recording has) and, if the cue reads the `pitch`, it was measured with the track's f0."""
        frames = first + np.arange(f0.size)
        inside = frames < self.f0.size
        used = np.full(f0.size, np.nan)
        used[inside] = self.f0[frames[inside]]
        done = valid & ((used == f0) if pitch else np.isfinite(used))
        rows = np.zeros((f0.size, *self.rows.shape[1:]))
        rows[done] = self.rows[frames[done]] * scale
        return Measured(done, rows)


def _grow(buffer: np.ndarray, used: int, extra: int) -> np.ndarray:
    if used + extra <= buffer.size:
        return buffer
    out = np.zeros(max(2 * buffer.size, used + extra), dtype=buffer.dtype)
    out[:used] = buffer[:used]
    return out


class LiveSession:
    """One singer's take, analysed chunk by chunk (see module doc). Not thread-safe: one caller at a time."""

    def __init__(self, recommender: Recommender):
        self.recommender = recommender
        self.started = time.perf_counter()
        self._rate: int | None = None
        self._resampler = None
        self._y = np.zeros(MODEL_RATE * 20, dtype=np.float32)
        self._n = 0  # samples at the model rate
        self._raw_samples = 0
        self._raw_clipped = 0
        self._raw_peak = 0.0
        self._db = np.zeros(2000)
        self._flat = np.zeros(2000)
        self._levels = 0  # frames whose levels are final
        self._f0 = np.zeros(2000)
        self._conf = np.zeros(2000)
        self._parity = np.zeros(2000, dtype=np.int8)
        self._pitched = 0  # frames whose pitch (before the octave fix) is final
        self._tail: tuple[np.ndarray, np.ndarray] = (np.zeros(0), np.zeros(0))  # provisional frames after them
        self.estimate: VoiceAudio | None = None  # the recording-wide decisions on the audio so far
        self.finished: Recommendations | None = None
        self.sung_range: VocalRange | None = None
        self.trunks = self._trunks()
        self.stopping = False  # Stop is pressed: pushes take the audio in and leave its analysis to `finish`
        self.timings: dict[str, float] = {"push": 0.0, "lstm": 0.0}
        self.sequences = {"push": 0, "finish": 0}  # window copies run through an LSTM, while singing and at finish
        self._live: tuple[PitchTrack, int] = (PitchTrack(np.zeros(0), np.zeros(0), np.zeros(0)), 0)
        self._music_at = 0.0  # when the music hint was last decided (seconds of audio) and what it said
        self._music = False
        self._lpc = soxr.ResampleStream(MODEL_RATE, LPC_RATE, 1, dtype="float64", quality="HQ")
        self._y11 = np.zeros(LPC_RATE * 20)  # the recording at the LPC rate, not pre-emphasised
        self._n11 = 0
        self._cued = 0  # frames whose cues are measured
        self.cues = {"formants": _Cue(np.zeros((2000, 4))), "overtones": _Cue(np.zeros(2000)),
                     "music": _Cue(np.zeros((2000, 3)))}  # fmt: skip

    def _trunks(self) -> list[_Trunk]:
        """The GE2E encoders grouped by LSTM; empty if an encoder is not GE2E (then `finish` embeds as a batch)."""
        embedder = self.recommender.embedder
        (timbre, fx_t), (expression, fx_e) = embedder.models["timbre"], embedder.models["expression"]
        if not all(isinstance(m, GE2EModel) and hasattr(f, "shift_harmonics") for m, f in ((timbre, fx_t),
                                                                                            (expression, fx_e))):
            return []  # fmt: skip
        if embedder.shared_trunk:
            return [_Trunk(timbre, fx_t, {"timbre": timbre, "expression": expression})]
        return [_Trunk(timbre, fx_t, {"timbre": timbre}), _Trunk(expression, fx_e, {"expression": expression})]

    # ------------------------------------------------------------------------------------------- input

    @property
    def seconds(self) -> float:
        return self._n / MODEL_RATE

    def stop(self) -> None:
        """Stop is pressed (callable from another thread while a push runs): from now on pushes only take the
        audio in, and a push under way skips its stages still to come, since `finish` analyses what is left anyway
        and the work would only delay the answer (its windows run in `finish`'s own LSTM batch)."""
        self.stopping = True

    def push(self, rate: int, samples: np.ndarray, stopping: bool = False) -> LiveUpdate:
        """Add a chunk (`rate` Hz, shaped (samples,) or (samples, channels)) and analyse what it completes.
        `stopping`: Stop is pressed (as `stop()`), so the chunk is only taken in (its level shown) and `finish`
        analyses it with the rest."""
        start = time.perf_counter()
        self.stopping = self.stopping or stopping
        if self.finished is not None:
            raise RuntimeError("This take is finished: start a new LiveSession.")
        data = _from_array(int(rate), samples) if np.size(samples) else np.zeros((0, 1), np.float32)
        if not np.all(np.isfinite(data)):
            raise AudioInputError("The recording contains invalid samples (NaN or infinity).")
        if self._rate is None:
            self._rate = int(rate)
            if self._rate != MODEL_RATE:
                self._resampler = soxr.ResampleStream(self._rate, MODEL_RATE, 1, dtype="float32", quality="HQ")
        elif int(rate) != self._rate:
            raise AudioInputError(f"The sample rate changed during the recording ({self._rate} -> {rate} Hz).")
        self._raw_samples += data.size
        self._raw_clipped += int(np.count_nonzero(np.abs(data) >= 0.999))
        mono = data.mean(axis=1).astype(np.float32)
        if mono.size:
            self._raw_peak = max(self._raw_peak, float(np.max(np.abs(mono))))
        self._append(self._resampler.resample_chunk(mono) if self._resampler else mono)
        self._advance()
        update = self._update(mono)
        self.timings["push"] += time.perf_counter() - start
        return update

    def _append(self, y: np.ndarray, last: bool = False) -> None:
        self._y = _grow(self._y, self._n, y.size)
        self._y[self._n : self._n + y.size] = y
        self._n += y.size
        y11 = self._lpc.resample_chunk(y.astype(np.float64), last=last)
        self._y11 = _grow(self._y11, self._n11, y11.size)
        self._y11[self._n11 : self._n11 + y11.size] = y11
        self._n11 += y11.size

    def _frames_array(self, name: str, frames: int) -> np.ndarray:
        array = getattr(self, name)
        if frames > array.size:
            array = np.concatenate([array, np.zeros(max(array.size, frames - array.size), dtype=array.dtype)])
            setattr(self, name, array)
        return array

    def _measure_levels(self, upto: int, final: bool) -> None:
        """Levels of frames [self._levels, upto): each reads FRAME_SECONDS around its centre (zeros past the ends)."""
        if upto <= self._levels:
            return
        reach = int(FRAME_SECONDS * MODEL_RATE) // 2
        lo, hi = self._levels * HOP - reach, (upto - 1) * HOP + reach
        seg = self._y[max(0, lo) : min(hi, self._n)]
        seg = np.pad(seg, (max(0, -lo), hi - max(0, lo) - seg.size))
        db, flat = frame_levels(seg, MODEL_RATE, center=False)
        for name, values in (("_db", db), ("_flat", flat)):
            self._frames_array(name, upto)[self._levels : upto] = values[: upto - self._levels]
        self._levels = upto

    def _track_pitch(self, upto: int, parity: int, redo_from: int | None = None) -> None:
        """Final pitch (before the octave fix) for frames [from, upto), blocks starting on frames of `parity`
        (StoneMask refines every second frame, counted from the recording's start)."""
        first = self._pitched if redo_from is None else redo_from
        if upto - first < 1:
            return
        a = max(0, first - PITCH_CONTEXT)
        a -= (a - parity) % 2
        a = a + 2 if a < 0 else a
        a = min(a, first)
        end = min(self._n, (upto + PITCH_MARGIN) * HOP) if redo_from is not None else self._n
        times, f0, conf = local_pitch(self._y[a * HOP : end], MODEL_RATE)
        for name, values in (("_f0", f0), ("_conf", conf)):
            self._frames_array(name, upto)[first:upto] = values[first - a : upto - a]
        self._frames_array("_parity", upto)[first:upto] = parity
        if redo_from is None:
            self._pitched = upto
            self._tail = (np.arange(upto, a + len(f0)) * HOP_SECONDS, f0[upto - a :])

    def _advance(self, final: bool = False) -> None:
        """Everything the audio so far completes: levels, pitch, the recording-wide estimates, the frames' cues,
        encoder windows. At `finish` (`final`) and once Stop is pressed (`stopping`, checked before each stage) only
        the levels: `finish` decides the rest over the whole recording, and tracks the frames left untracked."""
        if final:
            self._measure_levels(1 + self._n // HOP, final=True)
            return
        self._measure_levels(max(0, (self._n - int(FRAME_SECONDS * MODEL_RATE)) // HOP), final=False)
        if self.stopping:
            return
        self._estimate()
        parity = (self.estimate.offset // HOP) % 2 if self.estimate else 0
        upto = self._n // HOP - PITCH_MARGIN
        if upto - self._pitched >= MIN_NEW_FRAMES and self._n >= 0.1 * MODEL_RATE:
            self._track_pitch(upto, parity)
        self._live = self.live_track()
        if self.stopping:
            return
        self._measure_cues()
        if self.estimate is not None and self.trunks and not self.stopping:
            self._windows()

    def _estimate(self) -> None:
        """`load_audio`'s decisions (where the singing starts, the loudness gain) on the audio so far."""
        frames = self._levels
        if frames < 2 or self._raw_peak < SILENT_BELOW:
            return
        levels = (self._db[:frames], self._flat[:frames])
        try:
            self.estimate = prepare(self._y[: (frames - 1) * HOP], MODEL_RATE, [], levels)
        except AudioInputError:  # not enough singing yet
            self.estimate = None

    # ------------------------------------------------------------------------------------------ pitch

    def live_track(self, upto: int | None = None) -> tuple[PitchTrack, int]:
        """The pitch of the recording so far (from the estimated start of the singing, final frames only, octave
        fixed over all of them) and that start, in frames."""
        first = self.estimate.offset // HOP if self.estimate else 0
        upto = self._pitched if upto is None else upto
        f0, conf = self._f0[first:upto], self._conf[first:upto]
        times = np.arange(f0.size) * HOP_SECONDS
        if f0.size == 0:
            return PitchTrack(times, f0, conf), first
        return folded_track(self._y[first * HOP : min(self._n, (upto + PITCH_MARGIN) * HOP)], MODEL_RATE, times, f0,
                            conf), first  # fmt: skip

    # ------------------------------------------------------------------------------------ frame cues

    def _measure_cues(self) -> None:
        """The range's and the music check's per-frame cues (`voicerec.audio.frame_cues`) of the pitched frames
        settled since the last chunk, on the audio as it came (the music energies are scaled by the gain at
        `finish`)."""
        track, first = self._live
        lo, hi = max(self._cued, first), first + track.f0.size - FOLD_MARGIN
        if hi - lo < MIN_NEW_FRAMES:
            return
        frames = np.arange(lo, hi)
        f0 = track.f0[frames - first]
        frames, f0 = frames[np.isfinite(f0)], f0[np.isfinite(f0)]
        self._cued = hi
        if frames.size == 0:
            return
        for name, reach, measure in (("overtones", OVERTONE_REACH, harmonic_frames),
                                     ("music", accompaniment.N_FFT // 2, accompaniment.frame_energies)):
            ok = frames * HOP >= reach
            if not ok.any() or int(frames[-1]) * HOP + reach > self._n:
                continue
            a = int(frames[ok][0]) * HOP - reach  # each frame reads `reach` samples either side of its centre
            segment = self._y[a : int(frames[-1]) * HOP + reach]
            self.cues[name].put(frames[ok], f0[ok], measure(segment, MODEL_RATE, frames[ok] * HOP - a, f0[ok]))
        starts = lpc_starts(frames * HOP_SECONDS)
        ok = (starts >= 1) & (starts + LPC_LENGTH <= self._n11)
        if ok.any():
            a = int(starts[ok][0]) - 1  # the sample before the first frame, for the pre-emphasis
            segment = self._y11[a : int(starts[ok][-1]) + LPC_LENGTH]
            emphasised = segment[1:] - PRE_EMPHASIS * segment[:-1]
            self.cues["formants"].put(frames[ok], f0[ok], lpc_frames(emphasised, starts[ok] - a - 1))

    def _known(self, audio: VoiceAudio, track: PitchTrack) -> KnownFrames:
        """The cues measured while singing that hold for the whole recording's track: frames that read only audio
        inside the trimmed recording, measured with their final pitch (the formants do not depend on it)."""
        first, size = audio.offset // HOP, audio.samples.size
        centres = np.arange(track.f0.size) * HOP
        starts = lpc_starts(track.times)
        size11 = int(np.ceil(size * LPC_RATE / MODEL_RATE))
        inside = lambda reach: (centres >= reach) & (centres + reach <= size)  # noqa: E731
        cue = self.cues
        return KnownFrames(
            formants=cue["formants"].known(first, track.f0, (starts >= LPC_EDGE) & (
                starts + LPC_LENGTH + LPC_EDGE <= size11), pitch=False),  # fmt: skip
            overtones=cue["overtones"].known(first, track.f0, inside(OVERTONE_REACH)),
            music=cue["music"].known(first, track.f0, inside(accompaniment.N_FFT // 2), scale=audio.gain**2),
        )

    # ---------------------------------------------------------------------------------------- windows

    def _params(self, trunk: _Trunk, audio: VoiceAudio, track: PitchTrack, gain: float) -> dict:
        voiced = track.f0[track.voiced]
        if voiced.size == 0:
            return {}
        return {"first": audio.offset // HOP, "gain": gain, "shift": reference_shift(track),
                "cut": trunk.extractor.envelope_cut(voiced)}  # fmt: skip

    def _with_tail(self, track: PitchTrack) -> PitchTrack:
        """The settled track and the provisional frames after it (folded next to it): the whole-take figures
        estimated from all the pitch heard so far, which the settled frames alone trail by about 0.5 s."""
        times, f0 = self._tail
        with np.errstate(invalid="ignore", divide="ignore"):
            midi = _fold_to_track(69.0 + 12.0 * np.log2(np.where(f0 > 0, f0, np.nan) / 440.0), track)
        f0 = np.concatenate([track.f0, 440.0 * 2.0 ** ((midi - 69.0) / 12.0)])
        return PitchTrack(np.arange(f0.size) * HOP_SECONDS, f0, np.zeros(f0.size))

    @staticmethod
    def _stale(used: dict | None, params: dict, end: int | None) -> bool:
        """Whether a state made with the figures `used` must be redone for these (None: not made yet)."""
        return (
            used is None
            or used["first"] != params["first"]
            or abs(20 * np.log10(used["gain"] / params["gain"])) > GAIN_TOLERANCE_DB
            or used["end"] is not None
            or (end is not None and used["reach"] > end - params["first"] * HOP)  # it read audio past the end
        )

    def _stale_note(self, entry: tuple[torch.Tensor, dict] | None, params: dict, floor: float, f0: np.ndarray,
                    end: int | None) -> bool:  # fmt: skip
        """Whether a note-adjusted state must be redone: the plain figures, and the cut, floor and f0 it moved."""
        if entry is None or self._stale(entry[1], params, end):
            return True
        used = entry[1]
        return (
            used["cut"] != params["cut"]
            or abs(10 * np.log10(used["floor"] / floor)) > FLOOR_TOLERANCE_DB
            or not np.array_equal(used["f0"] > 0, f0 > 0)
            or np.nanmax(np.abs(np.log2(np.where(f0 > 0, f0, 1) / np.where(used["f0"] > 0, used["f0"], 1)))) > 1e-3
        )

    def _power(self, trunk: _Trunk, first: int, start: int, frames: int, end: int | None) -> np.ndarray:
        """Power spectrogram of the frames [start, start + frames) of the recording that begins at frame `first`
        (zeros before it, and from sample `end` on if given), as the extractor takes it of the whole recording."""
        fx = trunk.extractor
        half = fx.n_fft // 2
        lo, hi = (first + start) * HOP - half, (first + start + frames - 1) * HOP + half
        clip_lo, clip_hi = first * HOP, self._n if end is None else end
        seg = np.zeros(hi - lo, dtype=np.float32)
        a, b = max(lo, clip_lo), min(hi, clip_hi)
        if b > a:
            seg[a - lo : b - lo] = self._y[a:b]
        x = torch.from_numpy(seg)
        spec = torch.stft(x, fx.n_fft, fx.hop_length, window=torch.hann_window(fx.n_fft), center=False,
                          return_complex=True).abs().square()  # fmt: skip
        return spec.T.numpy()

    def _windows(self, audio: VoiceAudio | None = None, track: PitchTrack | None = None, end: int | None = None,
                 gain: float | None = None) -> None:  # fmt: skip
        """Compute the complete windows not done yet and those gone stale, in one LSTM batch per trunk (every stale
        window at once: a window left stale while singing is redone at `finish`, where it costs the singer)."""
        audio = self.estimate if audio is None else audio
        if track is None:
            track, _ = self._live
            limit = track.f0.size - FOLD_MARGIN  # frames of the recording whose pitch is settled
        else:
            limit = None
        start = time.perf_counter()
        for trunk in self.trunks:
            cfg = trunk.model.config
            size, step = cfg.window_frames, trunk.model.window_step
            params = self._params(trunk, audio, track if limit is None else self._with_tail(track),
                                  audio.gain if gain is None else gain)  # fmt: skip
            if not params:
                continue
            if limit is None:
                valid = 1 + audio.samples.size // HOP
                starts = window_starts(valid, size, step, cfg.min_coverage)
            else:
                starts = list(range(0, max(0, limit - size + 1), step))
            f0_all = np.nan_to_num(track.f0, nan=0.0)
            bracket = _bracket(params["shift"])
            todo, redo = [], []
            for s in starts:
                f0 = np.pad(f0_all[s : s + size], (0, max(0, s + size - f0_all.size)))
                window = trunk.windows.get(s)
                if window is None:
                    todo.append((s, f0, True, [params["shift"]] if end is not None else list(bracket)))
                    continue
                floor = self._floor(trunk, window.params.get("max_power", 0.0), params["gain"])
                plain = window.plain is None or self._stale(window.params, params, end)
                fresh = {k for k, entry in window.notes.items() if not self._stale_note(entry, params, floor, f0, end)}
                if end is None:  # while singing: the grid points around the running shift
                    shifts = [k for k in bracket if k not in fresh]
                else:  # finish: interpolated if both grid points are fresh, else computed at the shift itself
                    shifts = [] if params["shift"] in fresh or set(bracket) <= fresh else [params["shift"]]
                if plain or shifts:
                    redo.append((s, f0, plain, shifts))
            jobs = todo + redo
            if end is None and self.stopping:  # Stop came during this push: `finish` runs them in its batch
                break
            if jobs and self._run(trunk, jobs, params, end):
                self.sequences["push" if end is None else "finish"] += sum(plain + len(k) for _, _, plain, k in jobs)
        self.timings["lstm"] += time.perf_counter() - start

    def _floor(self, trunk: _Trunk, max_power: float, gain: float) -> float:
        return max(gain**2 * max(max_power, self._max_power(trunk)), 1e-20) * 1e-10

    def _max_power(self, trunk: _Trunk) -> float:
        return max((w.params.get("max_power", 0.0) for w in trunk.windows.values()), default=0.0)

    def _run(self, trunk: _Trunk, jobs: list, params: dict, end: int | None) -> bool:
        """The windows' features (plain and note-adjusted copies as needed) through the trunk's LSTM at once; False
        if Stop was pressed meanwhile (nothing is kept: `finish` runs these windows in its own batch)."""
        fx, size = trunk.extractor, trunk.model.config.window_frames
        powers = {s: self._power(trunk, params["first"], s, size, end) for s, *_ in jobs}
        max_power = max(self._max_power(trunk), *(float(p.max()) for p in powers.values()))
        scale = np.float32(params["gain"] ** 2)
        floor = max(float(scale) * max_power, 1e-20) * 1e-10
        features, slots = [], []
        for s, f0, plain, shifts in jobs:
            power = powers[s] * scale
            if plain:
                features.append(power @ fx.mel_filters)
                slots.append((s, None))
            for shift in shifts:
                shifted = fx.shift_harmonics(power, shift, f0, cut=params["cut"], floor=floor)
                features.append((shifted @ fx.mel_filters).astype(np.float32))
                slots.append((s, shift))
        states = self._states(trunk.model, torch.from_numpy(np.stack(features).astype(np.float32)), end is None)
        if states is None:
            return False
        reach = lambda s: (s + size - 1) * HOP + fx.n_fft // 2  # noqa: E731 - last sample a window reads
        f0s = {s: f0 for s, f0, *_ in jobs}
        for (s, shift), state in zip(slots, states, strict=True):
            window = trunk.windows.setdefault(s, _Window())
            used = {"first": params["first"], "gain": params["gain"], "end": end, "reach": reach(s),
                    "max_power": float(powers[s].max())}  # fmt: skip
            if shift is None:
                window.plain, window.params = state, used
            else:
                window.notes[shift] = (state, used | {"cut": params["cut"], "f0": f0s[s], "floor": floor})
        return True

    def _states(self, model: GE2EModel, features: torch.Tensor, singing: bool) -> torch.Tensor | None:
        """The windows' LSTM states (`window_states`). While singing the LSTM runs `PIECE_FRAMES` at a time, its
        state carried, and gives up (None) once Stop is pressed: a push's windows would otherwise hold `finish` up
        for a whole pass of 160 steps."""
        with torch.inference_mode():
            if not singing:
                return model.window_states(features)
            state = None
            for a in range(0, features.shape[1], PIECE_FRAMES):
                if self.stopping:
                    return None
                _, state = model.lstm(features[:, a : a + PIECE_FRAMES], state)
            return state[0][-1]

    # --------------------------------------------------------------------------------------- finishing

    def finish(
        self,
        top: int = 10,
        weights: dict[str, float] | None = None,
        range_weight: float = DEFAULT_RANGE_WEIGHT,
        distinct_titles: bool = True,
        measured_range: MeasuredRange | None = None,
        languages: Collection[str] | None = None,
    ) -> Recommendations:
        """The take is over: what is left (see module doc), then the songs, as `Recommender.recommend` gives them."""
        start = time.perf_counter()
        if self._rate is None or self._raw_samples == 0:
            raise AudioInputError("No audio was recorded.")
        if self._resampler is not None:
            self._append(self._resampler.resample_chunk(np.zeros(0, np.float32), last=True), last=True)
            self._resampler = None
        if self._raw_peak < SILENT_BELOW:
            raise AudioInputError(SILENT_MESSAGE)
        timings: dict[str, float] = {}
        self._advance(final=True)
        levels = (self._db[: self._levels], self._flat[: self._levels])
        audio = prepare(self._y[: self._n], MODEL_RATE, clipping_warnings(self._raw_clipped / self._raw_samples),
                        levels)  # fmt: skip
        timings["load"] = time.perf_counter() - start
        # the mood reads the trimmed recording alone: it runs beside the pitch and the LSTM's last windows
        mood = SIDE_WORK.submit(self.recommender.embedder.timed_mood, audio.samples, timings) if self.trunks else None
        t = time.perf_counter()
        track = self._final_track(audio)
        timings["pitch"] = time.perf_counter() - t
        known = self._known(audio, track)
        profile = self.recommender.profile(audio, track, lambda: self._embeddings(audio, track, timings, mood),
                                           timings, known=known)  # fmt: skip
        self.sung_range = profile.range
        if measured_range is not None:
            profile.range = measured_range.apply(profile.range)
        self.finished = self.recommender.rank_profile(profile, start, top, weights, range_weight, distinct_titles,
                                                      languages)  # fmt: skip
        return self.finished

    def rerank(
        self,
        measured_range: MeasuredRange | None,
        top: int = 10,
        weights: dict[str, float] | None = None,
        range_weight: float = DEFAULT_RANGE_WEIGHT,
        distinct_titles: bool = True,
        languages: Collection[str] | None = None,
    ) -> Recommendations:
        """The finished take's songs again with another range (a range test taken after it): no new analysis."""
        if self.finished is None or self.sung_range is None:
            raise RuntimeError("Finish the take first.")
        old = self.finished.profile
        sung = self.sung_range if measured_range is None else measured_range.apply(self.sung_range)
        profile = VoiceProfile(sung, old.embeddings, old.track, old.seconds, old.voiced_seconds, old.warnings,
                               old.timings)  # fmt: skip
        self.finished = self.recommender.rank_profile(profile, time.perf_counter(), top, weights, range_weight,
                                                      distinct_titles, languages)  # fmt: skip
        return self.finished

    def _final_track(self, audio: VoiceAudio) -> PitchTrack:
        """The batch track of the trimmed recording: the stream's final frames in the middle, the frames near the
        trimmed start and end tracked on the trimmed recording itself, then the octave fix over all of them."""
        first = audio.offset // HOP
        x = audio.samples
        n = 1 + x.size // HOP
        if n <= 2 * EDGE_FRAMES + PITCH_MARGIN:
            times, f0, conf = local_pitch(x, MODEL_RATE)
            return folded_track(x, MODEL_RATE, times, f0, conf)
        f0, conf = np.zeros(n), np.zeros(n)
        times = np.arange(n) * HOP_SECONDS
        _, f, c = local_pitch(x[: (EDGE_FRAMES + PITCH_MARGIN) * HOP], MODEL_RATE)
        f0[:EDGE_FRAMES], conf[:EDGE_FRAMES] = f[:EDGE_FRAMES], c[:EDGE_FRAMES]
        # the end: its EDGE_FRAMES, and the frames not final yet (the last chunks'), in one pass on the trimmed end
        tail = max(EDGE_FRAMES, min(n - EDGE_FRAMES, self._pitched - first))
        a = max(0, tail - PITCH_CONTEXT)
        a -= a % 2
        _, f, c = local_pitch(x[a * HOP :], MODEL_RATE)
        f0[tail:], conf[tail:] = f[tail - a : n - a], c[tail - a : n - a]
        parity = first % 2
        middle = np.arange(first + EDGE_FRAMES, first + tail)
        stale = middle[self._parity[np.minimum(middle, self._parity.size - 1)] != parity]
        if stale.size:  # frames tracked with another start's anchors
            self._track_pitch(int(stale.max()) + 1, parity, redo_from=int(stale.min()))
        f0[EDGE_FRAMES:tail], conf[EDGE_FRAMES:tail] = self._f0[middle], self._conf[middle]
        return folded_track(x, MODEL_RATE, times, f0, conf)

    def _embeddings(self, audio: VoiceAudio, track: PitchTrack, timings: dict[str, float],
                    mood: Future | None) -> dict[str, np.ndarray]:  # fmt: skip
        if mood is None:
            return self.recommender.embedder.embed(audio, track, timings)
        start = time.perf_counter()
        out: dict[str, np.ndarray] = {}
        end = audio.offset + audio.samples.size
        for trunk in self.trunks:
            fx = trunk.extractor
            gain = audio.gain * _raise_factor(fx, audio.samples)
            self._windows(audio, track, end=end, gain=gain)
            cfg = trunk.model.config
            starts = window_starts(1 + audio.samples.size // HOP, cfg.window_frames, trunk.model.window_step,
                                   cfg.min_coverage)  # fmt: skip
            shift = reference_shift(track)
            plain = torch.stack([trunk.windows[s].plain for s in starts])
            note = torch.stack([trunk.windows[s].note_state(shift) for s in starts])
            counts = torch.tensor([len(starts)])
            with torch.inference_mode():
                for name, head in trunk.heads.items():
                    out[name] = _unit(head.pool(head.project(plain), counts).embeddings)[0]
                    out[f"{name}_note"] = _unit(head.pool(head.project(note), counts).embeddings)[0]
        timings["timbre+expression"] = time.perf_counter() - start
        out["mood"] = mood.result()
        return {name: out[name] for name in EMBEDDING_NAMES}

    # ---------------------------------------------------------------------------------------- display

    def _update(self, mono: np.ndarray) -> LiveUpdate:
        rms = float(np.sqrt(np.mean(np.square(mono, dtype=np.float64)))) if mono.size else 0.0
        level = 20 * np.log10(rms + 1e-10)
        peak = float(np.max(np.abs(mono))) if mono.size else 0.0
        track, first = self._live
        tail_times, tail_f0 = self._tail
        with np.errstate(invalid="ignore", divide="ignore"):
            tail = _fold_to_track(69.0 + 12.0 * np.log2(np.where(tail_f0 > 0, tail_f0, np.nan) / 440.0), track)
        midi = np.concatenate([track.midi, tail])
        times = np.concatenate([track.times + first * HOP_SECONDS, tail_times])
        recent = times >= times[-1] - TRACE_SECONDS if times.size else np.zeros(0, bool)
        note, cents = _current_note(midi)
        sung = midi[np.isfinite(midi)]
        counts = np.bincount(np.rint(sung).astype(int) - 20, minlength=1) if sung.size else np.zeros(0)
        note_seconds = {int(i + 20): float(c * HOP_SECONDS) for i, c in enumerate(counts) if c}
        return LiveUpdate(times[recent], midi[recent], note, cents, note_seconds, level, peak,
                          self._hints(level, mono), self.seconds, float(sung.size * HOP_SECONDS))  # fmt: skip

    def _hints(self, level: float, mono: np.ndarray) -> list[str]:
        hints = []
        if mono.size and np.mean(np.abs(mono) >= 0.999) > 0.001:
            hints.append("Clipping: move back from the microphone or lower its gain.")
        if self.seconds > 1.0 and level < -50:
            hints.append("Too quiet: sing louder or closer to the microphone.")
        if self._levels > 200 and _dynamic_range_db(self._db[: self._levels]) < NOISY_BELOW_DB:
            hints.append("Noisy: the voice hardly stands out of the background; find a quieter room.")
        if self.seconds >= MUSIC_SECONDS and self.seconds - self._music_at >= 1.0:
            self._music_at, self._music = self.seconds, self._music_behind()
        if self._music:
            hints.append("Music behind your voice: sing without it, or listen to it on headphones.")
        return hints

    def _music_behind(self) -> bool:
        """`accompaniment` on the last MUSIC_SECONDS of audio and of the live pitch track."""
        track, first = self._live
        start = max(first, self._n // HOP - int(MUSIC_SECONDS / HOP_SECONDS))
        part = slice(start - first, None)
        times = track.times[part] - (start - first) * HOP_SECONDS  # from the segment's start
        recent = PitchTrack(times, track.f0[part], track.confidence[part])
        return accompaniment.measure(self._y[start * HOP : self._n], MODEL_RATE, recent).detected


def _raise_factor(extractor, samples: np.ndarray) -> float:
    """The factor the GE2E extractor's `raise_volume` multiplies this clip by (1 unless it is very quiet)."""
    raised = extractor.raise_volume(samples)
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    return float(np.max(np.abs(raised)) / peak) if peak > 0 else 1.0


def _fold_to_track(midi: np.ndarray, track: PitchTrack) -> np.ndarray:
    """Provisional frames an octave away from the settled track's recent median moved next to it, for display."""
    settled = track.midi[track.voiced][-100:]
    if not settled.size:
        return midi
    ref = float(np.median(settled))
    k = np.round((midi - ref) / 12.0)
    near = np.isfinite(midi) & (k != 0) & (np.abs(midi - ref - 12 * k) < 3)
    out = midi.copy()
    out[near] -= 12 * k[near]
    return out


def _current_note(midi: np.ndarray, frames: int = 20) -> tuple[str | None, float | None]:
    """The note sung over the last `frames` frames (their median, so vibrato and a stray frame do not flicker it)."""
    last = midi[-frames:]
    last = last[np.isfinite(last)]
    if last.size < frames // 2:
        return None, None
    m = float(np.median(last))
    return note_name(m), 100 * (m - round(m))
