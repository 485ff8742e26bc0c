"""`python -m voicerec catalog build` run as a user runs it and killed part-way, for the resume tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def build_killed_part_way(
    songs: Path, out: Path, cache: Path, encoders: dict[str, str], *options: str, timeout: float = 120.0
) -> int:
    """Start the build command with `encoders` (name -> folder) and `options`, SIGKILL it as soon as it has cached
    its first analysis, and return how many analyses it had cached by then."""
    models = [arg for name in ("timbre", "expression", "mood") for arg in (f"--{name}-model", encoders[name])]
    cmd = [sys.executable, "-m", "voicerec", "catalog", "build", str(songs), "--metadata", str(songs / "songs.csv"),
           "--output", str(out), "--cache-dir", str(cache), *options, *models]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while not list(cache.glob("*.npz")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return len(list(cache.glob("*.npz")))
