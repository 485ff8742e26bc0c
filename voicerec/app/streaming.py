"""The page's live mode: the microphone's chunks go into one `voicerec.live.LiveSession` per browser tab, each
chunk answered with what the singer should see (pitch trace, current note, level, hints, the notes sung so far on
a keyboard), and Stop answered with the songs, from what the session already analysed.

Why a `Take` in `gr.State`: Gradio keeps one State value per tab (session hash), so singers at once never share a
session, and calls its delete callback when the tab is gone; the callback drops the audio and the LSTM states
(megabytes per minute) at once, while Gradio itself would keep a closed tab's values for an hour. A lock serialises
a tab's last chunk and its Stop, which Gradio may run at the same time.
"""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass, field

import numpy as np

from voicerec import MAX_SECONDS
from voicerec.audio.pitch import HOP_SECONDS
from voicerec.audio.range_test import MeasuredRange, RangeTest
from voicerec.live import MIN_NEW_FRAMES, PITCH_MARGIN, LiveSession, LiveUpdate
from voicerec.recommender import Recommendations, Recommender

LIVE_TAKES: weakref.WeakValueDictionary[int, Take] = weakref.WeakValueDictionary()
"""The takes holding a session in this process (id -> take): what the delete callback frees, and tests count."""

LOST_SECONDS = 1.0
LOST_SHARE = 0.15
"""A take whose audio received falls short of the time its chunks took to arrive by more than both is told so: Gradio
keeps only the newest unprocessed chunk of a stream, so a busy server loses audio, and the singer should know the
songs come from part of what they sang."""

SETTLE_SECONDS = (PITCH_MARGIN + MIN_NEW_FRAMES) * HOP_SECONDS
"""How far behind the newest frame a frame's pitch is final in a `LiveSession`."""


@dataclass
class Take:
    """One tab's live recording: its session, the last update shown, and what a range test measured."""

    session: LiveSession | None
    lock: threading.Lock = field(default_factory=threading.Lock)
    update: LiveUpdate | None = None
    chunks: int = 0
    started: float = field(default_factory=time.perf_counter)
    first_chunk: float | None = None
    last_chunk: float | None = None
    range_test: RangeTest | None = None
    fed_until: float = -1.0

    def __post_init__(self) -> None:
        LIVE_TAKES[id(self)] = self

    @property
    def stopping(self) -> bool:
        """Stop is pressed (or the take is over): what a chunk still brings is left to `finish`."""
        return self.finished or self.session.stopping

    @property
    def finished(self) -> bool:
        return self.session is None or self.session.finished is not None

    def push(self, rate: int, samples: np.ndarray) -> LiveUpdate | None:
        """Add a chunk; None once the take is over (a chunk can arrive after Stop) or at the length limit."""
        with self.lock:
            if self.finished or self.session.seconds >= MAX_SECONDS:
                return None
            self.update = self.session.push(rate, samples)
            self.chunks += 1
            self.last_chunk = time.perf_counter()
            if self.first_chunk is None:
                self.first_chunk = self.last_chunk - np.shape(samples)[0] / rate
            if self.range_test is not None:
                self._feed_range_test(self.update)
            return self.update

    @property
    def wall_seconds(self) -> float:
        """Seconds from the start of the first chunk to the arrival of the last: the audio received should span
        this much, if no chunk was lost on the way."""
        return 0.0 if self.first_chunk is None else self.last_chunk - self.first_chunk

    def _feed_range_test(self, update: LiveUpdate) -> None:
        """The range test gets each frame once, when settled: the live edge's frames are provisional, folded
        towards the recent notes, which a singer sliding an octave down has just left."""
        if not update.times.size:
            return
        settled = float(update.times[-1]) - SETTLE_SECONDS
        new = (update.times > self.fed_until) & (update.times <= settled)
        if np.any(new):
            self.range_test.feed(update.midi[new])
            self.fed_until = float(update.times[new][-1])

    def finish(self, top: int, weights: dict[str, float], languages: list[str] | None,
               measured_range: MeasuredRange | None) -> Recommendations:  # fmt: skip
        """The songs for the take, with a warning if part of it never arrived."""
        session = self.session
        if session is not None:  # before the lock: a chunk being pushed skips what is left of it
            session.stop()
        with self.lock:
            if self.session is None:
                raise RuntimeError("This take was dropped.")
            result = self.session.finish(top=top, weights=weights, measured_range=measured_range, languages=languages)
            lost = self.lost_seconds
            if lost > max(LOST_SECONDS, LOST_SHARE * self.wall_seconds):
                result.profile.warnings.append(
                    f"Only {self.session.seconds:.1f} s of the {self.wall_seconds:.1f} s you sang reached the server "
                    f"(it was busy): the songs come from what arrived. Sing again, or upload a recording."
                )
            return result

    @property
    def lost_seconds(self) -> float:
        """Seconds of the take that never arrived: the chunks' arrival span minus the audio received."""
        return max(0.0, self.wall_seconds - self.session.seconds) if self.session is not None else 0.0

    def rerank(self, top: int, weights: dict[str, float], languages: list[str] | None,
               measured_range: MeasuredRange | None) -> Recommendations | None:  # fmt: skip
        """The finished take's songs again with another measured range (no new analysis); None if not finished."""
        with self.lock:
            if self.session is None or self.session.finished is None:
                return None
            return self.session.rerank(measured_range, top=top, weights=weights, languages=languages)

    def close(self) -> None:
        """Drop the session (audio, pitch, LSTM states); the take stays a small empty shell."""
        with self.lock:
            self.session = None
            self.range_test = None
        LIVE_TAKES.pop(id(self), None)


def drop_take(take: Take | None) -> None:
    """gr.State's delete callback: the tab is gone (or its state expired), so its take is dropped."""
    if isinstance(take, Take):
        take.close()


def new_take(recommender: Recommender, range_test: RangeTest | None = None) -> Take:
    """A take for a new recording; with `range_test` (which its pitch feeds) it skips the encoder windows."""
    session = LiveSession(recommender)
    if range_test is not None:
        session.trunks = []  # no encoder windows while singing: a range test needs the pitch alone
    return Take(session, range_test=range_test)
