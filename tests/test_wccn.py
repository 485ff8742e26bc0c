"""WCCN: the back-end that shrinks the directions in which one singer's recordings differ."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from training.wccn import fit_wccn
from voicerec import GE2EConfig, GE2EFeatureExtractor, GE2EModel


def _voices(rng: np.random.Generator, singers: int = 30, clips: int = 4, dim: int = 16):
    """Unit embeddings whose singers differ a little in every direction and whose recordings of one singer differ
    a lot along one shared direction (as a song's key moves every singer's embedding the same way)."""
    centres = 0.3 * rng.normal(size=(singers, dim))
    nuisance = rng.normal(size=dim)
    labels = np.repeat(np.arange(singers), clips)
    spread = 2.0 * rng.normal(size=(len(labels), 1)) * nuisance
    x = centres[labels] + spread + 0.05 * rng.normal(size=(len(labels), dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True), labels


def _nearest_is_same_singer(x: np.ndarray, labels: np.ndarray) -> float:
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    cos = x @ x.T
    np.fill_diagonal(cos, -np.inf)
    return float(np.mean(labels[cos.argmax(1)] == labels))


def test_wccn_whitens_the_within_singer_scatter_and_finds_singers():
    x, labels = _voices(np.random.default_rng(0))
    mean, matrix = fit_wccn(x, labels, shrinkage=0.0)
    residuals = np.concatenate([x[labels == s] - x[labels == s].mean(0) for s in np.unique(labels)]) @ matrix
    np.testing.assert_allclose(residuals.T @ residuals / len(residuals), np.eye(x.shape[1]), atol=1e-3)
    before, after = _nearest_is_same_singer(x, labels), _nearest_is_same_singer((x - mean) @ matrix, labels)
    assert before < 0.7 and after > 0.95, (before, after)
    shrunk = fit_wccn(x, labels, shrinkage=1e6)[1]  # shrunk all the way: a multiple of the identity
    np.testing.assert_allclose(shrunk / shrunk[0, 0], np.eye(x.shape[1]), atol=1e-3)
    with pytest.raises(ValueError, match="two singers"):
        fit_wccn(x, np.zeros(len(x)), 1.0)


def test_model_applies_its_wccn_and_old_checkpoints_get_the_identity(tmp_path, singing):
    torch.manual_seed(0)
    model = GE2EModel(GE2EConfig(hidden_size=16, num_layers=2, embedding_size=8)).eval()
    inputs = GE2EFeatureExtractor()([singing[:40000], singing[16000:60000]], return_tensors="pt")
    with torch.no_grad():
        plain = model(**inputs).embeddings
        model.whiten_mean.copy_(torch.randn(8))
        model.whiten_matrix.copy_(torch.randn(8, 8))
        windows, counts = model.windows_of(inputs["input_features"], inputs["attention_mask"])
        pooled = model.mean_windows(model.project(model.window_states(windows)), counts)
        torch.testing.assert_close(pooled, plain)  # the identity WCCN of a new model changed nothing
        expected = torch.nn.functional.normalize((pooled - model.whiten_mean) @ model.whiten_matrix, dim=-1)
        torch.testing.assert_close(model(**inputs).embeddings, expected)
    model.save_pretrained(tmp_path / "new")
    loaded = GE2EModel.from_pretrained(tmp_path / "new")
    assert torch.equal(loaded.whiten_matrix, model.whiten_matrix) and torch.equal(loaded.whiten_mean, model.whiten_mean)
    state = load_file(tmp_path / "new" / "model.safetensors")
    save_file({k: v for k, v in state.items() if not k.startswith("whiten_")}, tmp_path / "new" / "model.safetensors",
              metadata={"format": "pt"})  # fmt: skip
    old = GE2EModel.from_pretrained(tmp_path / "new").eval()
    assert torch.equal(old.whiten_matrix, torch.eye(8)) and not old.whiten_mean.any()
    with torch.no_grad():
        torch.testing.assert_close(old(**inputs).embeddings, plain)
