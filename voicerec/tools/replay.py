"""A live take replayed over HTTP exactly as the page streams it from a microphone (Gradio 6.31's browser client).

What Chromium sends for `gr.Audio(sources=["microphone"], streaming=True)` with `.stream(..., stream_every=S)` and
`.stop_recording(...)` (recorded from Chromium with a fake microphone, every request logged):
- on page load: a session hash of its own and `GET gradio_api/heartbeat/{session_hash}`, held open for the tab's life
  (its end drops the session's state);
- Record: the microphone's start event, if the page has one (`.start_recording`), joins the queue
  (`POST gradio_api/queue/join`); the recording goes on without waiting for it;
- every S seconds the recorder (a WAV MediaRecorder) hands over S seconds of 16-bit PCM, which the page uploads
  (`POST gradio_api/upload`) as `audio.wav`: the first hand-over's 44-byte header (RIFF and data sizes 0xFFFFFFF7
  and 0xFFFFFFD3, "unknown length") and the PCM;
- the first chunk starts the event: `POST gradio_api/queue/join` {data, event_data (the file), fn_index,
  trigger_id, session_hash} gives the event id, and `GET gradio_api/queue/data?session_hash=...` streams the
  session's server-sent events; each later chunk goes to `POST gradio_api/stream/{event_id}` {fn_index, data,
  event_data, session_hash}, and its update comes back as a `process_streaming` message;
- while a chunk's update has not come back (the event is "pending"), new hand-overs are held and sent together, as
  one file, at the next hand-over;
- Stop: `POST gradio_api/stream/{event_id}/close` and the stop event joins the queue with the last chunk's file as
  the audio input; audio after the last hand-over, and chunks held at that moment, are never sent.

`PageSession.take` replays one take in real time and measures what the singer sees: for each chunk, the seconds
from the hand-over of its audio to the update that shows it, and from Stop (pressed at the last hand-over, whose
upload and send are in the figure) to the stop event's answer. `replay` runs several singers at once, each in its
own session, as separate tabs would.
"""

from __future__ import annotations

import json
import queue
import random
import string
import struct
import threading
import time
from dataclasses import dataclass, field

import httpx
import numpy as np

UNKNOWN_SIZES = (0xFFFFFFF7, 0xFFFFFFD3)
"""The RIFF and data chunk sizes in the recorder's header: it does not know the length when it writes it."""


def wav_header(rate: int, channels: int = 1) -> bytes:
    """The 44-byte header the browser's WAV recorder writes before the first chunk (16-bit PCM, length unknown)."""
    fmt = struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * 2 * channels, 2 * channels, 16)
    riff, data = UNKNOWN_SIZES
    return b"RIFF" + struct.pack("<I", riff) + b"WAVE" + b"fmt " + fmt + b"data" + struct.pack("<I", data)


@dataclass
class Take:
    """What one take showed its singer: per chunk, seconds from the hand-over of its audio to the update that
    showed it (NaN if none came); seconds from Stop to the answer; files sent; the answer's outputs or the error."""

    singer: int
    started: float
    latencies: list[float]
    stop_to_answer: float
    files_sent: int
    answer: list | None = None
    error: str | None = None


@dataclass
class _Events:
    """The session's server-sent events, read on a thread: (receive time, message) per message, in order."""

    messages: queue.Queue = field(default_factory=queue.Queue)
    awaiting: set[str] = field(default_factory=set)  # events joined and not completed
    reader: threading.Thread | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class PageSession:
    """One browser tab on the page at `url`: its session hash, heartbeat and event stream (see module doc)."""

    def __init__(self, url: str, chunk_api: str = "live_chunk", stop_api: str = "live_stop",
                 start_api: str = "live_start", timeout: float = 120):  # fmt: skip
        self.url = url.rstrip("/") + "/"
        self.http = httpx.Client(base_url=self.url + "gradio_api/", timeout=timeout)
        config = self.http.get(self.url + "config").raise_for_status().json()
        self.components = {c["id"]: c for c in config["components"]}
        endpoints = {d.get("api_name"): d for d in config["dependencies"]}
        missing = [name for name in (chunk_api, stop_api) if name not in endpoints]
        if missing:
            raise RuntimeError(f"The page at {url} has no {', '.join(missing)} event: is live mode wired?")
        self.chunk_event, self.stop_event = endpoints[chunk_api], endpoints[stop_api]
        self.start_event = endpoints.get(start_api)
        self.every = float(self.chunk_event.get("stream_every") or 0.5)
        self.session_hash = "".join(random.choices(string.ascii_lowercase + string.digits, k=11))
        self._events = _Events()
        self._closed = threading.Event()
        self._beat_http = httpx.Client(base_url=self.http.base_url, timeout=None)
        self._heartbeat = threading.Thread(target=self._beat, daemon=True)
        self._heartbeat.start()

    # ------------------------------------------------------------------------------------------- transport

    def _beat(self) -> None:
        try:
            with self._beat_http.stream("GET", f"heartbeat/{self.session_hash}") as stream:
                for _ in stream.iter_lines():
                    if self._closed.is_set():
                        return
        except httpx.HTTPError:
            return  # closed with the tab

    def _read(self) -> None:
        """The session's event stream, reopened while events are awaited (the server ends it when none is)."""
        events = self._events
        while True:
            with self.http.stream("GET", "queue/data", params={"session_hash": self.session_hash}, timeout=None) as s:
                for line in s.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    message = json.loads(line[5:])
                    events.messages.put((time.perf_counter(), message))
                    if message.get("msg") == "process_completed":
                        with events.lock:
                            events.awaiting.discard(message.get("event_id"))
                    if message.get("msg") == "close_stream":
                        break
            with events.lock:
                if not events.awaiting or self._closed.is_set():
                    events.reader = None
                    return

    def _join(self, event: dict, data: list, event_data: dict | None) -> str:
        body = {"data": data, "fn_index": event["id"], "trigger_id": event["targets"][0][0],
                "session_hash": self.session_hash}  # fmt: skip
        if event_data is not None:
            body["event_data"] = event_data
        event_id = self.http.post("queue/join", json=body).raise_for_status().json()["event_id"]
        events = self._events
        with events.lock:
            events.awaiting.add(event_id)
            if events.reader is None:
                events.reader = threading.Thread(target=self._read, daemon=True)
                events.reader.start()
        return event_id

    def _upload(self, wav: bytes) -> dict:
        path = self.http.post("upload", files={"files": ("audio.wav", wav, "audio/wav")}).raise_for_status().json()[0]
        return {"path": path, "url": f"{self.url}gradio_api/file={path}", "orig_name": "audio.wav", "size": len(wav),
                "is_stream": True, "mime_type": "audio/wav", "meta": {"_type": "gradio.FileData"}}  # fmt: skip

    def _inputs(self, event: dict, audio: dict | None) -> list:
        """The event's inputs as the page sends them: the recording's file, null for session state, and every other
        control at its value on the page (its default)."""
        target = self.chunk_event["targets"][0][0]
        values = []
        for i in event["inputs"]:
            component = self.components[i]
            if i == target:
                values.append(audio)
            elif component.get("type") == "state":
                values.append(None)
            else:
                values.append(component.get("props", {}).get("value"))
        return values

    def _next(self, deadline: float) -> tuple[float, dict] | None:
        try:
            return self._events.messages.get(timeout=max(0.0, deadline - time.perf_counter()))
        except queue.Empty:
            return None

    # ------------------------------------------------------------------------------------------------ take

    def take(self, samples: np.ndarray, rate: int, singer: int = 0, answer_timeout: float = 120.0) -> Take:
        """Stream `samples` (16-bit mono) in real time as the page does, press Stop after the last hand-over and
        wait for the answer (see module doc)."""
        header = wav_header(rate)
        per = int(round(self.every * rate))
        n = samples.size // per
        if n < 1:
            raise ValueError(f"The take is shorter than one chunk ({self.every} s).")
        start = time.perf_counter()
        if self.start_event is not None:
            self._join(self.start_event, self._inputs(self.start_event, None), event_data=None)
        handed = [start + (k + 1) * self.every for k in range(n)]
        latencies = [float("nan")] * n
        held: list[int] = []
        in_flight: list[int] = []
        chunk_id = file = None
        files = 0
        error = None

        def on(message: tuple[float, dict]) -> None:
            nonlocal in_flight, error
            received, msg = message
            if msg.get("event_id") != chunk_id:
                return
            if msg.get("msg") in ("process_streaming", "process_generating", "process_completed"):
                if not msg.get("success", True):
                    error = error or f"{self.chunk_event['api_name']}: {msg.get('output')}"
                for k in in_flight:
                    latencies[k] = received - handed[k]
                in_flight = []

        for k in range(n):
            while (message := self._next(handed[k])) is not None:
                on(message)
            if in_flight:  # the last update has not come back: the page holds this chunk
                held.append(k)
                continue
            chunks, held = [*held, k], []
            pcm = samples[chunks[0] * per : (chunks[-1] + 1) * per].astype("<i2").tobytes()
            file = self._upload(header + pcm)
            data = self._inputs(self.chunk_event, file)
            if chunk_id is None:
                chunk_id = self._join(self.chunk_event, data, event_data=file)
            else:
                body = {"fn_index": self.chunk_event["id"], "data": data, "event_data": file,
                        "session_hash": self.session_hash}  # fmt: skip
                self.http.post(f"stream/{chunk_id}", json=body).raise_for_status()
            files += 1
            in_flight = chunks
        stop = handed[-1]  # Stop is pressed at the last hand-over: what the page sends after it is the stop event
        self.http.post(f"stream/{chunk_id}/close", json={}).raise_for_status()
        stop_id = self._join(self.stop_event, self._inputs(self.stop_event, file), event_data=None)
        deadline = time.perf_counter() + answer_timeout
        while (message := self._next(deadline)) is not None:
            on(message)
            received, msg = message
            if msg.get("event_id") == stop_id and msg.get("msg") == "process_completed":
                output = msg.get("output") or {}
                if not msg.get("success"):
                    error = error or f"{self.stop_event['api_name']}: {output}"
                return Take(singer, start, latencies, received - stop, files, output.get("data"), error)
        return Take(singer, start, latencies, float("nan"), files, None, f"no answer within {answer_timeout:.0f} s")

    def close(self) -> None:
        """Close the tab: the heartbeat ends, so the server drops the session's state."""
        self._closed.set()
        self._beat_http.close()
        self.http.close()


def replay(url: str, samples: np.ndarray, rate: int, singers: int = 1, takes: int = 1, stagger: float | None = None,
           pause: float = 1.0) -> list[Take]:  # fmt: skip
    """`singers` tabs streaming at once, each `takes` takes of `samples` with `pause` seconds between them; singer i
    starts i * `stagger` seconds in (default: the take's length / singers, so the stops fall while the others sing)."""
    if stagger is None:
        stagger = samples.size / rate / singers
    results: list[Take] = []
    lock = threading.Lock()

    def singer(i: int) -> None:
        time.sleep(i * stagger)
        session = None
        try:
            session = PageSession(url)
            for _ in range(takes):
                take = session.take(samples, rate, singer=i)
                with lock:
                    results.append(take)
                time.sleep(pause)
        except Exception as exc:  # a failed connection or request is a result too: the figures say it failed
            with lock:
                results.append(Take(i, time.perf_counter(), [], float("nan"), 0, None, f"{type(exc).__name__}: {exc}"))
        finally:
            if session is not None:
                session.close()

    threads = [threading.Thread(target=singer, args=(i,)) for i in range(singers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(results, key=lambda t: t.started)
