"""Embeddings: five unit vectors per recording, fused so that a dot product is the weighted sum of cosines."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from voicerec.audio.input import load_audio
from voicerec.audio.synth import VOICES, scale_melody, sing
from voicerec.cli import main
from voicerec.embeddings import (
    DEFAULT_WEIGHTS,
    EMBEDDING_NAMES,
    Embedder,
    fuse,
    normalise_weights,
    weights_fingerprint,
)


def _random_embeddings(rng: np.random.Generator, dims: dict[str, int]) -> dict[str, np.ndarray]:
    return {name: rng.standard_normal(dim).astype(np.float32) for name, dim in dims.items()}


def test_fused_dot_is_weighted_sum_of_cosines():
    rng = np.random.default_rng(0)
    dims = {"timbre": 12, "expression": 12, "timbre_note": 12, "expression_note": 12, "mood": 6}
    for _ in range(5):
        a, b = _random_embeddings(rng, dims), _random_embeddings(rng, dims)
        weights = dict(zip(EMBEDDING_NAMES, rng.uniform(0, 3, len(EMBEDDING_NAMES)), strict=True))
        w = normalise_weights(weights)
        cosines = {n: a[n] @ b[n] / (np.linalg.norm(a[n]) * np.linalg.norm(b[n])) for n in EMBEDDING_NAMES}
        expected = sum(w[n] * cosines[n] for n in EMBEDDING_NAMES)
        fa, fb = fuse(a, weights), fuse(b, weights)
        assert fa.dtype == np.float32 and fa.shape == (sum(dims.values()),)
        assert fa @ fb == pytest.approx(expected, abs=1e-5)
        assert np.linalg.norm(fa) == pytest.approx(1.0, abs=1e-5)
    rows = {n: np.stack([a[n], b[n]]) for n in EMBEDDING_NAMES}  # rows of vectors fuse row by row
    np.testing.assert_allclose(fuse(rows)[1], fuse(b), atol=1e-6)


def test_weights_override_defaults_and_are_checked():
    only_timbre = normalise_weights({n: 0.0 for n in EMBEDDING_NAMES} | {"timbre": 5.0})
    assert only_timbre["timbre"] == 1.0 and sum(only_timbre.values()) == pytest.approx(1.0)
    partial = normalise_weights({"mood": 1.0})  # only mood changes; the others keep the defaults' proportions
    total = sum(DEFAULT_WEIGHTS.values()) - DEFAULT_WEIGHTS["mood"] + 1.0
    assert partial == pytest.approx({n: (1.0 if n == "mood" else DEFAULT_WEIGHTS[n]) / total for n in EMBEDDING_NAMES})
    with pytest.raises(ValueError, match="Unknown embedding"):
        normalise_weights({"pitch": 1.0})
    with pytest.raises(ValueError, match=">= 0"):
        normalise_weights({"timbre": -1.0})
    with pytest.raises(ValueError, match="above zero"):
        normalise_weights(dict.fromkeys(EMBEDDING_NAMES, 0.0))


def test_embedder_gives_five_unit_vectors(tiny_encoders, singing):
    embedder = Embedder.from_pretrained(**tiny_encoders)
    audio = load_audio((16000, singing))
    out = embedder.embed(audio)
    assert tuple(out) == EMBEDDING_NAMES
    for name, vec in out.items():
        assert vec.dtype == np.float32 and vec.shape == (embedder.dimensions[name],)
        assert np.linalg.norm(vec) == pytest.approx(1.0, abs=1e-5)
    # the note-adjusted copy is a different signal, so its embedding differs from the original's
    assert not np.allclose(out["timbre"], out["timbre_note"])
    again = embedder.embed(audio)
    np.testing.assert_allclose(again["timbre"], out["timbre"], atol=1e-6)


def test_missing_model_folder_is_a_clear_error(tmp_path, tiny_encoders):
    with pytest.raises(OSError, match="Could not load the timbre model"):
        Embedder.from_pretrained(tmp_path / "nothing", tiny_encoders["expression"], tiny_encoders["mood"])


def test_hub_id_and_folder_of_the_same_weights_share_a_fingerprint(tmp_path, tiny_encoders):
    # a Space loads the encoders by Hub id, the catalog was built from the folder: the same weights must match,
    # or every request warns that the catalog was built with other weights
    snapshot = tmp_path / "hub-cache" / "models--voicerec--voicerec-sscl-timbre"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(tiny_encoders["timbre"], snapshot / "snapshots" / commit)
    (snapshot / "refs").mkdir()
    (snapshot / "refs" / "main").write_text(commit)
    script = (
        "import json, sys; from voicerec.embeddings import Embedder, weights_fingerprint; "
        "e = Embedder.from_pretrained('voicerec/voicerec-sscl-timbre', sys.argv[1], sys.argv[2]); "
        "print(json.dumps([e.fingerprints, weights_fingerprint('voicerec/not-downloaded')]))"
    )
    env = os.environ | {"HF_HUB_CACHE": str(tmp_path / "hub-cache"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", script, tiny_encoders["expression"], tiny_encoders["mood"]],
                            env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    fingerprints, missing = json.loads(result.stdout.strip().splitlines()[-1])
    folder = {name: weights_fingerprint(path) for name, path in tiny_encoders.items()}
    assert fingerprints == folder  # the Hub id's cached snapshot hashes like the folder it came from
    assert len(set(folder.values())) == 3 and all(folder.values())  # and other weights hash differently
    assert missing == ""  # a Hub id not in the cache: no fingerprint, rather than its name


def test_embed_cli_skips_bad_file(tmp_path, tiny_encoders, capsys):
    good = [tmp_path / "bass.wav", tmp_path / "soprano.wav"]
    sf.write(good[0], sing(scale_melody(45, 10, 0.45, seed=2), VOICES["bass"]), 16000)
    sf.write(good[1], sing(scale_melody(67, 10, 0.45, seed=3), VOICES["soprano"]), 16000)
    bad = tmp_path / "notes.wav"
    bad.write_text("this is not audio")
    out = tmp_path / "emb.parquet"
    models = ["--timbre-model", tiny_encoders["timbre"], "--expression-model", tiny_encoders["expression"],
              "--mood-model", tiny_encoders["mood"]]  # fmt: skip
    code = main(["embed", str(good[0]), str(bad), str(good[1]), "--output", str(out), *models])
    assert code == 1  # something failed, and the rest was still written
    assert "notes.wav" in capsys.readouterr().err
    table = pq.read_table(out).to_pydict()
    assert table["path"] == [str(good[0]), str(good[1])]
    assert set(table) == {"path", *EMBEDDING_NAMES, "fused"}
    fused = np.array(table["fused"], dtype=np.float32)
    sims = {n: np.dot(*np.array(table[n], dtype=np.float32)) for n in EMBEDDING_NAMES}
    w = normalise_weights()
    assert fused[0] @ fused[1] == pytest.approx(sum(w[n] * sims[n] for n in EMBEDDING_NAMES), abs=1e-5)
    assert pq.read_schema(out).field("timbre").type.value_type == "float"


def test_encoders_sharing_an_lstm_run_it_once(tmp_path, tiny_encoders, singing):
    """Two GE2E encoders with one LSTM and their own projections: the shared pass gives each model's own output."""
    import torch

    import voicerec
    from voicerec.export import export_model

    torch.manual_seed(0)
    timbre = voicerec.GE2EModel(voicerec.GE2EConfig(hidden_size=16, num_layers=2, embedding_size=8)).eval()
    expression = voicerec.GE2EModel(voicerec.GE2EConfig(variant="expression", hidden_size=16, num_layers=2,
                                                        embedding_size=8)).eval()  # fmt: skip
    expression.lstm.load_state_dict(timbre.lstm.state_dict())
    folders = {name: str(export_model(m, tmp_path / name)) for name, m in (("t", timbre), ("e", expression))}
    shared = Embedder.from_pretrained(folders["t"], folders["e"], tiny_encoders["mood"])
    assert shared.shared_trunk
    audio = load_audio((16000, singing))
    timings: dict[str, float] = {}
    out = shared.embed(audio, timings=timings)
    assert "timbre+expression" in timings
    extractor = shared.models["timbre"][1]
    inputs = extractor([audio.samples, audio.samples[: len(audio.samples) // 2]], return_tensors="pt")
    for name in ("timbre", "expression"):
        np.testing.assert_allclose(shared._encode_shared(inputs)[name == "expression"], shared._encode(name, inputs),
                                   atol=1e-6)  # fmt: skip
    assert not np.allclose(out["timbre"], out["expression"])
    with torch.no_grad():
        expression.lstm.weight_hh_l0.add_(0.01)
    export_model(expression, tmp_path / "e2")
    assert not Embedder.from_pretrained(folders["t"], tmp_path / "e2", tiny_encoders["mood"]).shared_trunk


def test_waveform_encoders_get_a_vocoded_note_adjusted_copy(tmp_path, tiny_encoders, singing):
    """An encoder that reads waveforms (SSCL) cannot shift its own spectrogram: it gets WORLD's resynthesis of the
    recording moved onto the reference note, in the same batch as the recording."""
    import torch

    import voicerec
    from voicerec.audio.note_adjust import adjust_to_reference
    from voicerec.audio.pitch import track_pitch
    from voicerec.export import export_model

    torch.manual_seed(0)
    folders = {}
    for variant in ("timbre", "expression"):
        config = voicerec.SSCLConfig(hidden_size=24, attention_channels=8, embedding_size=16, variant=variant)
        folders[variant] = str(export_model(voicerec.SSCLModel(config).eval(), tmp_path / variant))
    embedder = Embedder.from_pretrained(folders["timbre"], folders["expression"], tiny_encoders["mood"])
    assert not embedder.shared_trunk
    audio = load_audio((16000, singing))
    track = track_pitch(audio.samples, audio.sampling_rate)
    out = embedder.embed(audio, track)
    model = voicerec.SSCLModel.from_pretrained(folders["timbre"]).eval()
    adjusted, semitones = adjust_to_reference(audio.samples, audio.sampling_rate, track)
    assert abs(semitones) > 1  # the test singing is not already on the reference note
    with torch.no_grad():
        expected = model(torch.from_numpy(adjusted)[None]).embeddings[0].numpy()
    np.testing.assert_allclose(out["timbre_note"], expected / np.linalg.norm(expected), atol=1e-4)
    assert not np.allclose(out["timbre_note"], out["timbre"], atol=1e-3)
