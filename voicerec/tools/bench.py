"""How fast voicerec is on this machine: `python -m voicerec bench` prints markdown tables for docs/benchmarks.md.

Every time is also given as a ratio to a reference workload timed in the same run, interleaved with what it is
compared to (this machine's speed moves 2-3x from hour to hour with other users' load): the forward pass of a
GE2E-sized speaker encoder, `torch.nn.LSTM(40, 256, num_layers=3)` over 18 windows of 160 frames (batch 18),
which is what such an encoder does with 15 s of audio.

- HTTP round trip: a 15 s recording sent to `python app.py`'s /recommend as the page sends it (Gradio's HTTP API:
  upload, then the event's server-sent events) and with gradio_client, p50 over several calls;
- live mode: a 15 s take pushed into `voicerec.live.LiveSession` in the page's chunks (each push, `finish`, the
  agreement with the batch embeddings), and `python app.py`'s live events replayed as Chromium streams them
  (`voicerec.tools.replay`) at 1 and 4 singers at once: Stop -> answer and the live updates' latency;
- end to end: one 15 s recording through `Recommender.recommend`, with each stage's share (the one-off model and
  catalog loading is reported beside it), and the composed time at 10k and 1M songs;
- search: the catalog index (`voicerec.search.index.VectorIndex`, exact up to 100k vectors, IVF-SQ8 above) against a
  plain numpy scan, over 1k..1M synthetic fused vectors of the real dimension, with the index's recall; and at 1M
  the IVF-PQ it switches to from 10M songs, with memory per song and what 100M songs would take;
- pitch: the chosen tracker (`voicerec.audio.pitch.track_pitch`) against librosa's pyin on the same synthetic singing,
  with their error against the known sung notes;
- embedding throughput (clips/s) and catalog build speed (x real time) with the real encoders;
- peak memory (RSS) of `python app.py` after it answered those requests.

The recordings are synthetic singing (voicerec.audio.synth), so the benchmark runs anywhere; timings are medians.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import faiss
import numpy as np
import pandas as pd
import soundfile as sf
import torch

from ..audio.input import load_audio
from ..audio.pitch import track_pitch
from ..audio.synth import VOICES, scale_melody, sing
from ..defaults import REPO_ROOT, resolve
from ..search.index import PQ_FROM, VectorIndex, auto_factory

RATE = 16000
NOTE_SECONDS = 0.5
SEARCH_SIZES = (1_000, 10_000, 100_000, 1_000_000)


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Median wall time of `repeats` calls (after one warm-up call) and the last result."""
    result = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def synthetic_singing(seconds: float, voice: str = "baritone", tonic: int = 50, seed: int = 0, rate: int = RATE):
    """(audio, notes): a stepwise melody of NOTE_SECONDS notes, so every frame's true note is known."""
    notes = scale_melody(tonic, n_notes=int(round(seconds / NOTE_SECONDS)), seconds=NOTE_SECONDS, seed=seed)
    return sing(notes, VOICES[voice], rate, seed=seed), notes


def markdown(frame: pd.DataFrame) -> str:
    """A GitHub markdown table, floats to 4 significant digits (no `tabulate`, which only the dev install has)."""

    def cell(value: object) -> str:
        return f"{value:.4g}" if isinstance(value, float | np.floating) else str(value)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- reference


def load_average() -> str:
    """The machine's 1, 5 and 15 minute load averages (/proc/loadavg), as printed beside the figures."""
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


REFERENCE = "LSTM(40, 256, 3 layers) over 18 x 160 frames"


class Reference:
    """The reference workload: a GE2E-sized LSTM's forward pass over 15 s (18 windows of 160 frames, batch 18).

    `run()` times one pass; `ratio(seconds)` divides by the median of the passes timed so far, so a measurement
    interleaved with reference passes is compared with the machine as fast as it was at that moment.
    """

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.lstm = torch.nn.LSTM(40, 256, num_layers=3).eval()
        self.frames = torch.randn(160, 18, 40)  # (time, batch, mel bands)
        self.times: list[float] = []
        self.run()  # warm-up, not kept
        self.times.clear()

    def run(self) -> float:
        start = time.perf_counter()
        with torch.inference_mode():
            self.lstm(self.frames)
        self.times.append(time.perf_counter() - start)
        return self.times[-1]

    @property
    def seconds(self) -> float:
        return statistics.median(self.times)

    def ratio(self, seconds: float) -> float:
        return seconds / self.seconds


# ------------------------------------------------------------------------------------------ end to end


def end_to_end(seconds: float, repeats: int, sources: dict[str, str]) -> tuple[pd.DataFrame, dict[str, float]]:
    """Each stage of `Recommender.recommend` on one recording (median of `repeats`), in seconds and as a ratio
    to the reference passes timed between the calls."""
    from ..recommender import Recommender
    from ..search.ranking import rank

    start = time.perf_counter()
    recommender = Recommender.from_pretrained(**sources)
    loading = time.perf_counter() - start
    audio, _ = synthetic_singing(seconds)
    reference = Reference()
    runs = []
    for _ in range(repeats + 1):  # the first call warms up torch and the caches; it is dropped
        reference.run()
        runs.append(recommender.recommend((RATE, audio), top=10).timings)
    stages = pd.DataFrame(runs[1:]).median()
    total = float(stages.pop("total"))
    rows = [{"stage": name, "seconds": float(value), "x reference": reference.ratio(value),
             "share": f"{value / total:.0%}"} for name, value in stages.items()]  # fmt: skip
    rows.append({"stage": "total per request (in process)", "seconds": total, "x reference": reference.ratio(total),
                 "share": "100%"})  # fmt: skip
    profile = recommender.analyse((RATE, audio))
    for label, languages in (("unfiltered", None), ("filtered to one language (en)", ["en"])):
        search, _ = timed(lambda languages=languages: rank(profile.embeddings, profile.range, recommender.catalog,
                                                           recommender.index, 10, languages=languages), repeats)
        rows.append({"stage": f"search alone, {label}", "seconds": search, "x reference": reference.ratio(search),
                     "share": ""})  # fmt: skip
    rows.append({"stage": f"reference: {REFERENCE}", "seconds": reference.seconds, "x reference": 1.0, "share": ""})
    rows.append({"stage": "loading models + catalog (once, at start)", "seconds": loading,
                 "x reference": reference.ratio(loading), "share": ""})  # fmt: skip
    info = {"total": total, "catalog_rows": len(recommender.catalog)}
    info["dim"] = recommender.index.dim
    info["reference"] = reference.seconds
    return pd.DataFrame(rows), info


# ---------------------------------------------------------------------------------------------- search


def clustered_vectors(n: int, dim: int, seed: int = 0, block: int = 100_000) -> np.ndarray:
    """Unit vectors around n/20 random "voices", like a catalog with several songs per singer (float32)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // 20), dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, block):
        stop = min(n, start + block)
        x = centres[rng.integers(len(centres), size=stop - start)]
        x += rng.standard_normal(x.shape, dtype=np.float32) * np.float32(0.7 / np.sqrt(dim))
        out[start:stop] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def index_bytes(index: VectorIndex) -> int:
    """Memory of the stored vectors: 4 bytes per dimension when exact, the quantised code size under IVF."""
    if "IVF" in index.factory:
        return faiss.extract_index_ivf(index.index).code_size * len(index)
    return 4 * index.dim * len(index)


def numpy_topk(vectors: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    """The plain alternative to an index: one matrix-vector product and a partial sort."""
    scores = vectors @ query
    top = np.argpartition(-scores, k)[:k]
    return top[np.argsort(-scores[top])]


def _probes(vectors: np.ndarray, queries: int) -> np.ndarray:
    """Queries near catalog entries (a singer close to some songs' voices)."""
    rng = np.random.default_rng(1)
    noise = rng.standard_normal((queries, vectors.shape[1]), dtype=np.float32) * 0.02
    return vectors[rng.integers(len(vectors), size=queries)] + noise


def _measure(index: VectorIndex, vectors: np.ndarray, probes: np.ndarray, k: int, build: float) -> dict:
    """Latency of the index and of a numpy scan, and the index's recall: the share of the exact top 10 that is in
    the index's k-song pool (which the ranking re-scores exactly)."""
    index.search(probes[0], k)  # warm-up
    index_times, pools = [], []
    for q in probes:  # the two methods in separate loops: neither runs in the other's thread wake-up
        start = time.perf_counter()
        pools.append(index.search(q, k)[1][0])
        index_times.append(time.perf_counter() - start)
    scan_times, recall = [], []
    for q, pool in zip(probes, pools, strict=True):
        start = time.perf_counter()
        exact = numpy_topk(vectors, q, k)
        scan_times.append(time.perf_counter() - start)
        recall.append(len(set(pool) & set(exact[:10])) / 10)
    return {
        "songs": f"{len(vectors):,}",
        "index": f"{index.factory}, nprobe {index.nprobe}" if index.nprobe else index.factory,
        "index ms/query": 1000 * statistics.median(index_times),
        "recall@10 (exact top 10 in the pool)": float(np.mean(recall)),
        "numpy scan ms/query": 1000 * statistics.median(scan_times),
        "index build s": build,
        "index MB": index_bytes(index) / 1e6,
    }


def search_scaling(dim: int, sizes: tuple[int, ...], queries: int = 50, k: int = 200) -> pd.DataFrame:
    """The app's index (`VectorIndex` as it chooses for each size) against a numpy scan, at each catalog size."""
    rows = []
    for n in sizes:
        vectors = clustered_vectors(n, dim, seed=n)
        start = time.perf_counter()
        index = VectorIndex(vectors)
        rows.append(_measure(index, vectors, _probes(vectors, queries), k, time.perf_counter() - start))
        del vectors, index
    return pd.DataFrame(rows)


def product_quantisation(dim: int, n: int, queries: int = 50, k: int = 200) -> pd.DataFrame:
    """At n songs, today's IVF-SQ8 against the IVF-PQ that VectorIndex uses from PQ_FROM songs, on the same
    vectors: memory per song (codes + 8-byte id), recall of the pool, latency, and the index for 100M songs."""
    vectors = clustered_vectors(n, dim, seed=n)
    probes = _probes(vectors, queries)
    nlist = int(2 ** round(np.log2(np.sqrt(n))))
    pq = auto_factory(PQ_FROM, dim).replace(f"IVF{int(2 ** round(np.log2(np.sqrt(PQ_FROM))))},", f"IVF{nlist},")
    rows = []
    for factory in (auto_factory(n, dim), pq):
        start = time.perf_counter()
        index = VectorIndex(vectors, factory=factory)
        row = _measure(index, vectors, probes, k, time.perf_counter() - start)
        per_song = index_bytes(index) / len(index) + 8
        row |= {"bytes/song": per_song, "100M songs GB": per_song * 1e8 / 1e9}
        rows.append(row)
        del index
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------- pitch


def _note_errors(times: np.ndarray, midi: np.ndarray, notes: list[tuple[float, float]]) -> tuple[float, float]:
    """Median |error| in cents and share of frames > 50 cents off, over the steady middle of each note."""
    idx = (times / NOTE_SECONDS).astype(int)
    phase = times / NOTE_SECONDS - idx
    keep = (idx < len(notes)) & (phase > 0.2) & (phase < 0.7)
    target = np.array([notes[i][0] for i in idx[keep]])
    est = midi[keep]
    cents = 100 * np.abs(np.where(np.isfinite(est), est, np.inf) - target)
    return float(np.median(cents)), float(np.mean(cents > 50))


def pitch_trackers(seconds: float, repeats: int) -> pd.DataFrame:
    import librosa

    audio, notes = synthetic_singing(seconds)
    rows = []
    fast, track = timed(lambda: track_pitch(audio, RATE), repeats)
    rows.append(
        (
            "voicerec.audio.pitch.track_pitch (WORLD DIO + StoneMask)",
            fast,
            *_note_errors(track.times, track.midi, notes),
        )
    )

    def pyin():
        return librosa.pyin(audio, fmin=65.0, fmax=1100.0, sr=RATE, frame_length=1024, hop_length=160)

    slow, (f0, _, _) = timed(pyin, 1)
    times = librosa.times_like(f0, sr=RATE, hop_length=160)
    with np.errstate(divide="ignore", invalid="ignore"):
        midi = 69 + 12 * np.log2(f0 / 440.0)
    rows.append(("librosa.pyin", slow, *_note_errors(times, midi, notes)))
    frame = pd.DataFrame(rows, columns=["pitch tracker", "seconds", "median error (cents)", "frames > 50 cents off"])
    frame.insert(2, "x real time", seconds / frame["seconds"])
    return frame


# ------------------------------------------------------------------------------- throughput and build


def embedding_throughput(sources: dict[str, str], clips: int, seconds: float = 10.0) -> dict[str, float]:
    from ..embeddings import Embedder

    embedder = Embedder.from_pretrained(**{k: sources[k] for k in ("timbre", "expression", "mood")})
    audios = [load_audio((RATE, synthetic_singing(seconds, seed=i)[0])) for i in range(clips)]
    tracks = [track_pitch(a.samples, RATE) for a in audios]
    embedder.embed(audios[0], tracks[0])
    start = time.perf_counter()
    for audio, track in zip(audios, tracks, strict=True):
        embedder.embed(audio, track)
    return {"clip seconds": seconds, "clips/s": clips / (time.perf_counter() - start)}


def catalog_build_speed(sources: dict[str, str], songs: int, seconds: float = 20.0) -> dict[str, float]:
    from ..search.catalog import build_catalog

    with tempfile.TemporaryDirectory() as tmp:
        audio_dir = Path(tmp) / "songs"
        audio_dir.mkdir()
        voices = list(VOICES)
        for i in range(songs):
            audio, _ = synthetic_singing(seconds, voices[i % len(voices)], 45 + 2 * i, seed=i)
            sf.write(audio_dir / f"song{i}.wav", audio, RATE)
        report = build_catalog(
            audio_dir, Path(tmp) / "catalog", cache=Path(tmp) / "cache", progress=False,
            **{k: sources[k] for k in ("timbre", "expression", "mood")},
        )  # fmt: skip
    return {"songs": report.rows, "audio seconds": report.audio_seconds, "x real time": report.realtime_factor}


# ------------------------------------------------------------------------------------------ app memory


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


EMPTY_APP = """
import sys, gradio as gr
with gr.Blocks() as demo:
    recording, answer, button = gr.Audio(type="filepath"), gr.Textbox(), gr.Button()
    button.click(lambda path: "ok", recording, answer, api_name="recommend")
demo.queue().launch(server_name="127.0.0.1", server_port=int(sys.argv[-1]))
"""
"""A Gradio app with the same /recommend input that answers at once: the round trip's floor (upload, queue, events)
on this machine, whatever the analysis costs."""


EMPTY_LIVE_APP = """
import sys, gradio as gr
from voicerec.app.page import LIVE_CHUNK_SECONDS, LIVE_SINGERS
with gr.Blocks() as demo:
    mic, take, view, answer = gr.Audio(sources=["microphone"], streaming=True), gr.State(), gr.HTML(), gr.Textbox()
    mic.start_recording(lambda: None, None, take, api_name="live_start", queue=False)
    mic.stream(lambda audio, take: ("ok", take), [mic, take], [view, take], api_name="live_chunk",
               stream_every=LIVE_CHUNK_SECONDS, time_limit=60, concurrency_limit=LIVE_SINGERS)
    mic.stop_recording(lambda take: "ok", take, answer, api_name="live_stop")
demo.queue().launch(server_name="127.0.0.1", server_port=int(sys.argv[-1]))
"""
"""A page with the live events (start, chunks, Stop) that answers each at once: Stop -> answer's floor (the last
chunk's upload and the stop event's round trip) on this machine, whatever the analysis costs."""


@contextlib.contextmanager
def serve(
    args: list[str], env: dict[str, str], cwd: Path = REPO_ROOT, log: Path | None = None, timeout: float = 300.0
) -> Iterator[tuple[str, subprocess.Popen]]:
    """`python ARGS --host 127.0.0.1 --port PORT` (a Gradio app) with exactly `env`, from `cwd`, on a free port;
    yields (url, process) once it answers, and stops it afterwards. Its output goes to `log` (a temporary file if
    None), whose end is in the error if it exits or does not answer within `timeout` seconds."""
    port = _free_port()
    with contextlib.ExitStack() as stack:
        if log is None:
            log = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="voicerec-app-"))) / "app.log"
        with log.open("w") as out:
            cmd = [sys.executable, *args, "--host", "127.0.0.1", "--port", str(port)]
            proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}/"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{args[0]} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
                with contextlib.suppress(OSError):
                    with urllib.request.urlopen(url, timeout=2):
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{args[0]} did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
            yield url, proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def serve_app(env: dict[str, str], empty: str | None = None) -> contextlib.AbstractContextManager:
    """`python app.py` (or the app whose code is `empty`, such as EMPTY_APP) with `env` added to this process's
    environment."""
    return serve(["-c", empty] if empty else ["app.py"], os.environ | env)


def client_call(url: str) -> Callable[[Path], object]:
    """/recommend through gradio_client, as a Python user of the Space calls it. Its job thread polls for each
    message of the event stream every 50 ms, which a browser does not."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False, analytics_enabled=False)
    return lambda path: client.predict(handle_file(str(path)), api_name="/recommend")


def page_call(url: str) -> Callable[[Path], object]:
    """/recommend the way the page makes it, over Gradio's HTTP API (gradio.app/guides/querying-gradio-apps-with-curl):
    upload the recording, start the event, read its server-sent events until the result arrives."""
    import httpx

    http = httpx.Client(base_url=url + "gradio_api/", timeout=120)
    parameters = http.get("info").raise_for_status().json()["named_endpoints"]["/recommend"]["parameters"]
    defaults = [p["parameter_default"] for p in parameters[1:]]  # the page's controls as they stand at start

    def call(path: Path) -> object:
        with path.open("rb") as f:
            uploaded = http.post("upload", files={"files": (path.name, f, "audio/wav")}).raise_for_status().json()[0]
        data = {"data": [{"path": uploaded, "meta": {"_type": "gradio.FileData"}}, *defaults]}
        event_id = http.post("call/recommend", json=data).raise_for_status().json()["event_id"]
        event = None
        with http.stream("GET", f"call/recommend/{event_id}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line.partition(":")[2].strip()
                elif line.startswith("data:") and event in ("complete", "error"):
                    if event == "error":
                        raise RuntimeError(f"/recommend failed: {line}")
                    return json.loads(line.partition(":")[2])  # the outputs, as the page receives them
        raise RuntimeError("/recommend's event stream ended without a result")

    return call


TRANSPORTS = {"the page's HTTP calls": page_call, "gradio_client": client_call}
"""How a round trip is made: as the browser does (upload, then the event's server-sent events) and as a Python
client does."""


def _round_trips(url: str, path: Path, reference: Reference, requests: int) -> dict[str, list[float]]:
    """Per transport, seconds of `requests` calls of /recommend with the file at `path`, after one warm-up call,
    each call preceded by a reference pass."""
    latencies = {}
    for name, transport in TRANSPORTS.items():
        call = transport(url)
        call(path)  # warm-up
        latencies[name] = []
        for _ in range(requests):
            reference.run()
            start = time.perf_counter()
            call(path)
            latencies[name].append(time.perf_counter() - start)
    return latencies


def http_round_trip(sources: dict[str, str], seconds: float, requests: int) -> pd.DataFrame:
    """What a singer waits for: a `seconds` recording sent to `python app.py`'s /recommend (upload, queue, analysis,
    the page's outputs), p50 and max of `requests` calls, made as the page makes them and with gradio_client; the
    same calls to an app that answers at once (the transport's floor); then the app's peak resident memory."""
    env = _app_env(sources)
    reference = Reference()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "singing.wav"
        sf.write(path, synthetic_singing(seconds)[0], RATE)
        with serve_app(env) as (url, proc):
            latencies = _round_trips(url, path, reference, requests)
            status = Path(f"/proc/{proc.pid}/status").read_text()
            peak_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))
        with serve_app(env, empty=EMPTY_APP) as (url, _):
            floors = _round_trips(url, path, reference, requests)
    rows = []
    for name, times in latencies.items():
        p50, worst, floor = statistics.median(times), max(times), statistics.median(floors[name])
        rows += [
            {"measure": f"{name}: p50 ({requests} calls)", "value": p50, "x reference": reference.ratio(p50)},
            {"measure": f"{name}: max", "value": worst, "x reference": reference.ratio(worst)},
            {"measure": f"{name}: floor (the same calls to a Gradio app that answers at once), p50", "value": floor,
             "x reference": reference.ratio(floor)},
        ]  # fmt: skip
    return pd.DataFrame([
        *rows,
        {"measure": f"reference: {REFERENCE}, s", "value": reference.seconds, "x reference": 1.0},
        {"measure": "app peak RSS, MB", "value": peak_kb / 1024, "x reference": ""},
    ])  # fmt: skip


# ------------------------------------------------------------------------------------------- live mode

MIC_RATE = 48000
"""The rate of the page's microphone chunks (Chromium's capture rate)."""
UPDATE_WITHIN = 0.3
"""Seconds within which a live update should reach the page (issue 24)."""


def live_take(seconds: float) -> np.ndarray:
    """A take as the page's microphone gives it: synthetic singing at MIC_RATE, 16-bit."""
    audio, _ = synthetic_singing(seconds, rate=MIC_RATE)
    return (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)


def _cell(seconds: float, reference: Reference) -> str:
    return f"{seconds:.3f} s = {reference.ratio(seconds):.2f}x"


def live_in_process(sources: dict[str, str], seconds: float, repeats: int) -> pd.DataFrame:
    """A take pushed into `LiveSession` in the page's chunks, as the page's handler pushes them: each push, then
    `finish` (Stop -> answer without the transport) beside `Recommender.recommend` on the same audio, each after a
    reference pass; and how close the streamed embeddings are to the batch ones."""
    from ..app.page import LIVE_CHUNK_SECONDS  # the page's stream_every (the HTTP replay reads it from the page)
    from ..live import LiveSession
    from ..recommender import Recommender

    recommender = Recommender.from_pretrained(**sources)
    recommender.warm_up()
    chunk = int(LIVE_CHUNK_SECONDS * MIC_RATE)
    take = live_take(seconds)
    take = take[: take.size // chunk * chunk]  # the page sends whole chunks only
    reference = Reference()
    pushes, finishes, batches = [], [], []
    for run in range(repeats + 1):  # the first run warms up; it is dropped
        reference.run()
        session = LiveSession(recommender)
        times = []
        for i in range(0, take.size, chunk):
            start = time.perf_counter()
            session.push(MIC_RATE, take[i : i + chunk])
            times.append(time.perf_counter() - start)
        start = time.perf_counter()
        live = session.finish(top=10)
        finished = time.perf_counter() - start
        reference.run()
        start = time.perf_counter()
        batch = recommender.recommend((MIC_RATE, take), top=10)
        if run:
            batches.append(time.perf_counter() - start)
            pushes += times
            finishes.append(finished)
    cosines = {name: float(vector @ live.profile.embeddings[name]) for name, vector in batch.profile.embeddings.items()}
    same = [i.song_id for i in live.items] == [i.song_id for i in batch.items]
    rows = [
        ("push of one chunk, p50", statistics.median(pushes)),
        ("push of one chunk, max", max(pushes)),
        ("pushes of the whole take, sum (mean over takes)", sum(pushes) / repeats),
        (f"finish: Stop -> answer in process, p50 of {repeats}", statistics.median(finishes)),
        ("the same audio through Recommender.recommend (batch), p50", statistics.median(batches)),
        (f"reference: {REFERENCE}", reference.seconds),
    ]
    frame = pd.DataFrame([{"measure": m, "seconds": v, "x reference": reference.ratio(v)} for m, v in rows])
    agreement = ", ".join(f"{name} {value:.6f}" for name, value in cosines.items())
    extra = pd.DataFrame([{"measure": f"cosine live vs batch: {agreement}; same top 10: {'yes' if same else 'no'}",
                           "seconds": float("nan"), "x reference": float("nan")}])  # fmt: skip
    return pd.concat([frame, extra], ignore_index=True)


def _app_env(sources: dict[str, str]) -> dict[str, str]:
    return {"VOICEREC_TIMBRE_MODEL": sources["timbre"], "VOICEREC_EXPRESSION_MODEL": sources["expression"],
            "VOICEREC_MOOD_MODEL": sources["mood"], "VOICEREC_CATALOG": sources["catalog"],
            "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}  # fmt: skip


def live_over_http(url: str, seconds: float, singers: tuple[int, ...] = (1, 4), takes: int = 6,
                   floor_url: str | None = None) -> pd.DataFrame:  # fmt: skip
    """The page's live events at `url` replayed as Chromium streams them (`voicerec.tools.replay`), `takes` takes per
    singer at each number of singers at once (staggered so the stops fall while the others sing): Stop -> answer and
    the live updates' latency, each beside the reference passes timed before and after the run; with `floor_url`
    (EMPTY_LIVE_APP), Stop -> answer there too, the part no analysis can remove."""
    from .replay import replay

    take = live_take(seconds)
    for page in (url, floor_url) if floor_url else (url,):
        replay(page, take[: 3 * MIC_RATE], MIC_RATE)  # warm-up: the first take pays the app's one-off costs
    columns: dict[str, dict[str, str]] = {}
    for n in singers:
        reference = Reference()
        for _ in range(2):
            reference.run()
        results = replay(url, take, MIC_RATE, singers=n, takes=takes)
        floors = replay(floor_url, take, MIC_RATE, singers=n, takes=takes) if floor_url else []
        for _ in range(3):
            reference.run()
        stops = np.array([t.stop_to_answer for t in results])
        floor = np.array([t.stop_to_answer for t in floors])
        floor_cell = _cell(float(np.nanmedian(floor)), reference) if floor.size else "not measured"
        latencies = np.concatenate([np.array(t.latencies, dtype=float) for t in results] or [np.zeros(0)])
        shown = latencies[np.isfinite(latencies)]
        errors = [t.error for t in [*results, *floors] if t.error]
        column = {
            "takes": str(len(results)),
            "Stop -> answer, p50": _cell(float(np.nanmedian(stops)), reference),
            "Stop -> answer, max": _cell(float(np.nanmax(stops)), reference),
            "Stop -> answer's floor (a page answering at once), p50": floor_cell,
            "live update latency, p50": _cell(float(np.median(shown)), reference) if shown.size else "none",
            "live update latency, p95": _cell(float(np.percentile(shown, 95)), reference) if shown.size else "none",
            "live update latency, max": _cell(float(shown.max()), reference) if shown.size else "none",
            f"updates within {UPDATE_WITHIN} s": f"{np.mean(shown <= UPDATE_WITHIN):.0%} of {latencies.size} chunks",
            "chunks held while the last update was out": str(sum(len(t.latencies) - t.files_sent for t in results)),
            f"reference: {REFERENCE}": f"{reference.seconds:.3f} s",
            "errors": "; ".join(dict.fromkeys(errors)) or "none",
        }
        columns[f"{n} singer{'s' if n > 1 else ''} at once"] = column
    frame = pd.DataFrame(columns)
    return frame.rename_axis("measure").reset_index()


# -------------------------------------------------------------------------------------------------- main


def run(
    seconds: float = 15.0,
    repeats: int = 5,
    sizes: tuple[int, ...] = SEARCH_SIZES,
    app: bool = True,
    sources: dict[str, str | None] | None = None,
    requests: int = 7,
    pq_size: int = 1_000_000,
) -> str:
    """All measurements, as the markdown docs/benchmarks.md shows. Prints each table as soon as it is measured."""
    sources = {name: resolve(name, (sources or {}).get(name)) for name in ("timbre", "expression", "mood", "catalog")}
    threads = torch.get_num_threads()
    head = (
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads {threads}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, load average (1/5/15 min) at start "
        f"{load_average()} (other processes share the CPUs), Python {platform.python_version()}, "
        f"torch {torch.__version__}. Models: {', '.join(sources[k] for k in ('timbre', 'expression', 'mood'))}; "
        f"catalog: {sources['catalog']}."
    )
    parts = [head]

    def emit(title: str, body: str) -> None:
        parts.append(f"**{title}**\n\n{body}")
        print(parts[-1] + "\n", flush=True)

    print(head + "\n", flush=True)
    if app:
        emit(f"HTTP round trip, one {seconds:.0f} s recording through python app.py's /recommend",
             markdown(http_round_trip(sources, seconds, requests)))  # fmt: skip
    emit(f"Live mode in process: a {seconds:.0f} s take pushed into LiveSession in the page's chunks (median of "
         f"{repeats} takes)", markdown(live_in_process(sources, seconds, repeats)))  # fmt: skip
    if app:
        with serve_app(_app_env(sources)) as (url, _), serve_app({}, empty=EMPTY_LIVE_APP) as (floor, _):
            table = markdown(live_over_http(url, seconds, floor_url=floor))
        emit(f"Live mode over HTTP: python app.py's live events, a {seconds:.0f} s take streamed as Chromium streams "
             "it (voicerec.tools.replay), Stop pressed at the last chunk", table)  # fmt: skip
    stages, e2e = end_to_end(seconds, repeats, sources)
    emit(f"End to end, one {seconds:.0f} s recording, catalog of {e2e['catalog_rows']} songs (median of {repeats})",
         markdown(stages))  # fmt: skip
    search = search_scaling(e2e["dim"], sizes)
    emit(f"Search, {e2e['dim']}-d fused vectors (median of 50 queries, top 200 = the ranking's pool)", markdown(search))
    if pq_size:
        emit(f"Search past a million songs: IVF-SQ8 against IVF-PQ at {pq_size:,} {e2e['dim']}-d vectors (median of "
             "50 queries, top 200 pool)", markdown(product_quantisation(e2e["dim"], pq_size)))  # fmt: skip
    composed = pd.DataFrame(  # the index search at each size on top of the whole request measured above
        [{"songs": row["songs"], "end to end s": (t := e2e["total"] + row["index ms/query"] / 1000),
          "x reference": t / e2e["reference"]} for _, row in search.iterrows()]
    )  # fmt: skip
    emit("End to end by catalog size (analysis + ranking measured above + index search at that size)",
         markdown(composed))  # fmt: skip
    emit(
        f"Pitch tracking, {seconds:.0f} s of synthetic singing with known notes",
        markdown(pitch_trackers(seconds, repeats)),
    )
    throughput = embedding_throughput(sources, clips=8)
    build = catalog_build_speed(sources, songs=4)
    emit("Throughput", markdown(pd.DataFrame([
        {"task": f"embedding (5 embeddings of a {throughput['clip seconds']:.0f} s clip, one at a time)",
         "speed": f"{throughput['clips/s']:.2f} clips/s"},
        {"task": f"catalog build ({build['songs']} songs, {build['audio seconds']:.0f} s of audio, one process)",
         "speed": f"{build['x real time']:.1f} x real time"},
    ])))  # fmt: skip
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    parts.append(f"Peak RSS of the benchmark process itself: {own:.0f} MB. Load average at the end: {load_average()}.")
    print(parts[-1])
    return "\n\n".join(parts)
