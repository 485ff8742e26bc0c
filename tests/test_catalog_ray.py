"""The catalog build on Ray (voicerec.search.catalog_ray) against the single-process build: same catalog, resumable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from tests.killed_build import build_killed_part_way
from voicerec.audio.synth import VOICES, scale_melody, sing
from voicerec.embeddings import EMBEDDING_NAMES
from voicerec.search.catalog import Catalog, build_catalog

ray = pytest.importorskip("ray")

REPO = Path(__file__).resolve().parent.parent
SONGS = 6


@pytest.fixture(scope="module")
def songs(tmp_path_factory) -> Path:
    """Six 4 s synthetic songs over the voices, one file that is not audio, one missing, and a songs.csv."""
    folder = tmp_path_factory.mktemp("ray-songs")
    voices = list(VOICES)
    rows = []
    for i in range(SONGS):
        voice = voices[i % len(voices)]
        sf.write(folder / f"song{i}.wav", sing(scale_melody(43 + 3 * i, 10, 0.4, seed=i), VOICES[voice], seed=i), 16000)
        rows.append({"file": f"song{i}.wav", "song_id": f"s{i}", "title": f"Song {i}", "voice": voice})
    (folder / "broken.wav").write_bytes(b"RIFF....not really a wave file")
    rows += [{"file": "broken.wav", "song_id": "broken"}, {"file": "gone.wav", "song_id": "gone"}]
    pd.DataFrame(rows).to_csv(folder / "songs.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def local_ray():
    env = {"env_vars": {"PYTHONPATH": str(REPO)}}  # the workers import voicerec from this checkout
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False, runtime_env=env)
    yield
    ray.shutdown()


def test_ray_build_equals_single_process_build(songs, tiny_encoders, local_ray, tmp_path):
    build = {"audio_dir": songs, "metadata": songs / "songs.csv", "progress": False, **tiny_encoders}
    local = build_catalog(output=tmp_path / "local", cache=tmp_path / "cache-local", **build)
    on_ray = build_catalog(output=tmp_path / "ray", cache=tmp_path / "cache-ray", engine="ray", **build)
    assert on_ray.computed == local.computed == SONGS and on_ray.rows == SONGS
    assert on_ray.failed.keys() == local.failed.keys() == {"broken.wav", "gone.wav"}
    assert on_ray.worker_mb > 0
    a, b = Catalog.load(tmp_path / "local"), Catalog.load(tmp_path / "ray")
    pd.testing.assert_frame_equal(a.table(), b.table())
    for name in (*EMBEDDING_NAMES, "fused"):
        np.testing.assert_allclose(a.matrix(name), b.matrix(name), atol=1e-5)


def test_killed_ray_build_resumes(songs, tiny_encoders, local_ray, tmp_path):
    """SIGKILL a Ray build's driver part-way through (the command line joining a running Ray with --address)."""
    out, cache = tmp_path / "catalog", tmp_path / "cache"
    address = ray.get_runtime_context().gcs_address
    done = build_killed_part_way(
        songs, out, cache, tiny_encoders, "--engine", "ray", "--address", address, "--num-proc", "1", timeout=180.0
    )
    assert 1 <= done < SONGS, "the build should have been killed part-way"
    assert not out.exists()
    resumed = build_catalog(songs, out, songs / "songs.csv", cache=cache, progress=False, **tiny_encoders)
    assert resumed.cached == done and resumed.computed == SONGS - done and resumed.rows == SONGS
