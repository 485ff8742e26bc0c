"""The catalog build's analysis on a Ray cluster (`catalog build --engine ray [--address ADDRESS]`).

A Ray Data pipeline over the songs the cache lacks: the file list -> vocals separation (demucs; an actor pool of
its own, one GPU per actor when the cluster has GPUs) -> analysis (an actor pool, each actor loads the encoders
once) -> back to the driver, which writes each song's cache entry as it arrives. The driver then assembles the
catalog from the cache exactly as the local engine does (voicerec.search.catalog), so both engines give the same rows,
a killed build resumes from what reached the cache, and the finished folder is swapped in atomically.

Workers read the audio and the encoders at the paths the driver gives: on a cluster of several machines, put
them on a shared filesystem (or give Hub ids for the encoders). The voicerec package itself is shipped to the
workers by Ray (runtime_env `py_modules`); its dependencies must be installed on every node.
"""

from __future__ import annotations

import resource
from pathlib import Path

import numpy as np

from .catalog import SONG_ERRORS, analyse_song, encode_entry, save_entry, separate_song

RETRIES = 3
"""Restarts of a crashed actor and retries of the song it was on (a worker killed, out of memory, a lost node)."""
MAX_BLOCKS = 10_000
"""Songs per block = max(1, songs / MAX_BLOCKS): one song per block keeps the pool balanced and resume fine-grained."""


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Separator:
    """Ray actor: demucs loaded once; each song's vocals (float32 bytes and rate), or the error it raised."""

    def __init__(self):
        from ..audio.separation import _model

        _model()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vocals, rates, errors = [], [], []
        for path, error in zip(batch["path"], batch["error"], strict=True):
            samples, rate = b"", 0
            if not error:
                try:
                    rate, wave = separate_song(Path(path))
                    samples = np.asarray(wave, dtype=np.float32).tobytes()
                except SONG_ERRORS as exc:
                    error = str(exc) or type(exc).__name__
            vocals.append(samples)
            rates.append(rate)
            errors.append(error)
        return batch | {"vocals": np.array(vocals, dtype=object), "rate": np.array(rates),
                        "error": np.array(errors, dtype=object)}  # fmt: skip


class _Analyser:
    """Ray actor: the encoders loaded once; each song's cache entry (bytes), or the error it raised."""

    def __init__(self, sources: dict[str, str]):
        import torch

        from ..embeddings import Embedder

        torch.set_num_threads(1)  # one core per actor, as Ray schedules it
        self.embedder = Embedder.from_pretrained(**sources)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        entries, errors = [], []
        for i, path in enumerate(batch["path"]):
            entry, error = b"", batch["error"][i]
            if not error:
                vocals = None
                if "vocals" in batch:
                    vocals = (int(batch["rate"][i]), np.frombuffer(batch["vocals"][i], dtype=np.float32))
                try:
                    entry = encode_entry(analyse_song(Path(path), self.embedder, vocals=vocals))
                except SONG_ERRORS as exc:
                    error = str(exc) or type(exc).__name__
            entries.append(entry)
            errors.append(error)
        return {"index": batch["index"], "entry": np.array(entries, dtype=object),
                "error": np.array(errors, dtype=object), "peak_mb": np.full(len(entries), _peak_mb())}  # fmt: skip


def analyse_on_ray(
    todo: list[tuple[dict, Path, Path]],
    sources: dict[str, str],
    separate: bool,
    address: str | None = None,
    num_proc: int | None = None,
    progress: bool = True,
) -> tuple[dict[str, str], float]:
    """Analyse (row, audio path, cache file) songs into their cache files on Ray.

    Returns (file -> error of the songs that could not be used, peak resident MB of one analysis actor).
    Joins the Ray already initialised in this process (whose workers must be able to import voicerec), else
    `address` (None: starts a local Ray, stopped at the end). `num_proc` analysis actors (None: one per CPU).
    """
    try:
        import ray
    except ImportError:
        raise ValueError('--engine ray needs Ray: pip install "ray[data]" (or build with --engine local).') from None

    started = not ray.is_initialized()
    if started:
        # ship this voicerec to the workers (a cluster's nodes need its dependencies installed, not voicerec)
        ray.init(address=address, include_dashboard=False, configure_logging=False, log_to_driver=progress,
                 runtime_env={"py_modules": [str(Path(__file__).parents[1])]})  # fmt: skip
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = progress
        cpus = int(ray.cluster_resources().get("CPU", 1))
        gpus = int(ray.cluster_resources().get("GPU", 0))
        actor_args = {"max_restarts": RETRIES, "max_task_retries": RETRIES}
        items = [{"index": i, "path": str(path), "error": ""} for i, (_, path, _) in enumerate(todo)]
        data = ray.data.from_items(items, override_num_blocks=max(1, min(len(items), MAX_BLOCKS)))
        if separate:
            # demucs is the heavy stage: on GPUs when there are any (one actor per GPU), else on CPU actors
            data = data.map_batches(
                _Separator, batch_size=1, compute=ray.data.ActorPoolStrategy(size=gpus or max(1, cpus // 2)),
                num_gpus=1 if gpus else 0, num_cpus=1, **actor_args,
            )  # fmt: skip
        data = data.map_batches(
            _Analyser, fn_constructor_kwargs={"sources": sources}, batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=num_proc or cpus), num_cpus=1, **actor_args,
        )  # fmt: skip
        failed: dict[str, str] = {}
        peak = 0.0
        for row in data.iter_rows():
            song, _, cache_file = todo[int(row["index"])]
            if row["error"]:
                failed[song["file"]] = row["error"]
            else:
                save_entry(cache_file, row["entry"])
            peak = max(peak, float(row["peak_mb"]))
        return failed, peak
    finally:
        if started:
            ray.shutdown()
