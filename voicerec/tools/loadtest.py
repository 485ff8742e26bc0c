"""Load test of a running app: `python -m voicerec loadtest URL --clients 20 --seconds 120`.

Each of `clients` threads holds its own gradio_client connection and sends one recording at a time to
"/recommend" until the time is up, so at most `clients` requests are ever in flight (bounded, like that many
people pressing the button again as soon as they get an answer). Latency is measured per request, queueing in
the app included. A request that raises is a failure; the first few error messages are reported.
"""

from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from ..audio.synth import VOICES, scale_melody, sing


@dataclass
class LoadReport:
    clients: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.latencies) + len(self.errors)

    def summary(self) -> str:
        lat = np.array(self.latencies) if self.latencies else np.array([np.nan])
        lines = [
            f"clients {self.clients}, {self.seconds:.0f} s: {self.requests} requests, {len(self.errors)} failed, "
            f"{len(self.latencies) / self.seconds:.2f} answers/s",
            f"latency s: p50 {np.percentile(lat, 50):.2f}, p95 {np.percentile(lat, 95):.2f}, max {lat.max():.2f}",
        ]
        lines += [f"error: {e}" for e in dict.fromkeys(self.errors[:20])]
        return "\n".join(lines)


def _client_loop(url: str, clip: str, deadline: float, report: LoadReport, lock: threading.Lock) -> None:
    from gradio_client import Client, handle_file

    try:
        client = Client(url, verbose=False, analytics_enabled=False)
    except Exception as exc:  # could not even connect: one failure, this client stops
        with lock:
            report.errors.append(f"connect: {type(exc).__name__}: {exc}")
        return
    while time.monotonic() < deadline:
        start = time.perf_counter()
        try:
            client.predict(handle_file(clip), api_name="/recommend")
        except Exception as exc:
            with lock:
                report.errors.append(f"{type(exc).__name__}: {exc}")
            continue
        with lock:
            report.latencies.append(time.perf_counter() - start)


def run_loadtest(url: str, clients: int = 20, seconds: float = 120.0, audio: str | Path | None = None) -> LoadReport:
    """Hammer `url` with `clients` concurrent clients for `seconds`; requests in flight at the end complete."""
    if clients < 1 or seconds <= 0:
        raise ValueError("clients must be >= 1 and seconds > 0.")
    report = LoadReport(clients, seconds)
    lock = threading.Lock()
    with tempfile.TemporaryDirectory() as tmp:
        if audio is None:
            audio = Path(tmp) / "singing.wav"
            sf.write(audio, sing(scale_melody(50, 20, 0.5, seed=3), VOICES["baritone"], 16000), 16000)
        start = time.monotonic()
        deadline = start + seconds
        threads = [
            threading.Thread(target=_client_loop, args=(url, str(audio), deadline, report, lock), daemon=True)
            for _ in range(clients)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        report.seconds = time.monotonic() - start
    return report
