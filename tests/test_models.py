"""The encoders load the way Hub users load them, with identical outputs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from transformers import AutoFeatureExtractor, AutoModel

import voicerec
from voicerec.export import export_model

TINY = {
    "sscl": lambda: voicerec.SSCLModel(voicerec.SSCLConfig(hidden_size=24, attention_channels=8, embedding_size=16)),
    "sscl-expression": lambda: voicerec.SSCLModel(
        voicerec.SSCLConfig(variant="expression", hidden_size=24, attention_channels=8, embedding_size=16)
    ),
    "tjae": lambda: voicerec.TJAEModel(voicerec.TJAEConfig(hidden_size=16, latent_size=8, layer_dilations=[1, 2, 4])),
    "ge2e": lambda: voicerec.GE2EModel(voicerec.GE2EConfig(hidden_size=16, num_layers=2, embedding_size=8)),
}
EXTRACTOR = {"voicerec-ge2e": "feature_extraction_ge2e.GE2EFeatureExtractor"}
"""The feature extractor each model type ships with (the others: feature_extraction_voicerec)."""


@pytest.fixture(scope="module", params=sorted(TINY))
def exported(request, tmp_path_factory):
    torch.manual_seed(0)
    model = TINY[request.param]().eval()
    folder = tmp_path_factory.mktemp(request.param)
    export_model(model, folder)
    return model, folder


def _inputs(singing: np.ndarray, folder) -> dict:
    fe = AutoFeatureExtractor.from_pretrained(folder)
    batch = [singing[:48000], singing[16000:40000]]  # two lengths: padding and attention mask matter
    return fe(batch, sampling_rate=16000, return_tensors="pt")


def test_export_layout(exported):
    _, folder = exported
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)
    config = json.loads((folder / "config.json").read_text())
    extractor = EXTRACTOR.get(config["model_type"], "feature_extraction_voicerec.VoicerecFeatureExtractor")
    assert set(config["auto_map"]) == {"AutoConfig", "AutoModel"}
    for target in config["auto_map"].values():
        assert (folder / f"{target.split('.')[0]}.py").exists()
    pre = json.loads((folder / "preprocessor_config.json").read_text())
    assert pre["auto_map"]["AutoFeatureExtractor"] == extractor
    assert (folder / f"{extractor.split('.')[0]}.py").exists()


def test_model_code_is_self_contained(exported):
    _, folder = exported
    for path in folder.glob("*.py"):
        for line in path.read_text().splitlines():
            if line.startswith(("import ", "from ")) and not line.startswith("from ."):
                root = line.split()[1].split(".")[0]
                assert root in {"torch", "transformers", "numpy", "__future__", "dataclasses"}, (path.name, line)


def test_from_pretrained_identical(exported, singing):
    model, folder = exported
    inputs = _inputs(singing, folder)
    loaded = AutoModel.from_pretrained(folder).eval()
    assert type(loaded) is type(model)
    with torch.no_grad():
        a, b = model(**inputs).embeddings, loaded(**inputs).embeddings
    assert torch.equal(a, b)
    assert torch.allclose(a.norm(dim=-1), torch.ones(2), atol=1e-5)
    # buffers (mel filters, window) come back exactly, not as uninitialised memory
    for name, buf in model.named_buffers():
        assert torch.equal(buf, dict(loaded.named_buffers())[name]), name


def test_padding_does_not_change_embedding(exported, singing):
    model, folder = exported
    inputs = _inputs(singing, folder)
    fe = AutoFeatureExtractor.from_pretrained(folder)
    alone = fe(singing[16000:40000], sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        batched = model(**inputs).embeddings[1]
        single = model(**alone).embeddings[0]
    assert torch.allclose(batched, single, atol=1e-4)


def test_trust_remote_code_in_fresh_process(exported, singing, tmp_path):
    """A Hub user without voicerec installed: remote code from the folder, same numbers."""
    model, folder = exported
    inputs = _inputs(singing, folder)
    with torch.no_grad():
        expected = model(**inputs).embeddings.numpy()
    input_name = model.main_input_name
    np.save(tmp_path / "inputs.npy", inputs[input_name].numpy())
    np.save(tmp_path / "attention_mask.npy", inputs["attention_mask"].numpy())
    extractor_name = type(AutoFeatureExtractor.from_pretrained(folder)).__name__
    script = textwrap.dedent(
        f"""
        import os, sys
        os.environ["HF_HUB_OFFLINE"] = "1"
        sys.path = [p for p in sys.path if p not in ("", {str(folder.parent.parent)!r})]
        import numpy as np, torch
        from transformers import AutoFeatureExtractor, AutoModel
        model = AutoModel.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
        fe = AutoFeatureExtractor.from_pretrained({str(folder)!r}, trust_remote_code=True)
        assert "voicerec" not in sys.modules, "voicerec was imported"
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        assert type(fe).__name__ == {extractor_name!r}
        x = torch.from_numpy(np.load({str(tmp_path / "inputs.npy")!r}))
        m = torch.from_numpy(np.load({str(tmp_path / "attention_mask.npy")!r}))
        with torch.no_grad():
            out = model(**{{{input_name!r}: x}}, attention_mask=m).embeddings.numpy()
        np.save({str(tmp_path / "out.npy")!r}, out)
        """
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"}
    env["HF_MODULES_CACHE"] = str(tmp_path / "modules")
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)


def test_feature_extractor_rejects_wrong_rate(exported, singing):
    _, folder = exported
    fe = AutoFeatureExtractor.from_pretrained(folder)
    with pytest.raises(ValueError, match="resample"):
        fe(singing, sampling_rate=44100)


def test_tjae_latent_mode_changes_decoding(singing):
    torch.manual_seed(0)
    model = TINY["tjae"]().eval()
    x = torch.from_numpy(singing[None, :32000])
    with torch.no_grad():
        normal = model(x).reconstruction
        zeroed = model(x, latent_mode="zero").reconstruction
    assert not torch.allclose(normal, zeroed)
    with pytest.raises(ValueError):
        model(x, latent_mode="bogus")


@pytest.mark.parametrize("normalization", ["per_band", "level"])
def test_input_normalization(singing, normalization):
    """A fixed EQ is cancelled by "per_band" (the mean spectrum is removed) but not by "level" (loudness only)."""
    from scipy.signal import lfilter

    torch.manual_seed(0)
    config = voicerec.SSCLConfig(
        hidden_size=24, attention_channels=8, embedding_size=16, input_normalization=normalization
    )
    model = voicerec.SSCLModel(config).eval()
    clip = singing[:48000]
    tilted = lfilter([1.0, -0.9], [1.0], clip).astype(np.float32)  # a bright microphone: +~15 dB at 4 kHz
    with torch.no_grad():
        emb = {name: model(torch.from_numpy(x)[None]).embeddings[0] for name, x in
               {"clip": clip, "louder": 3 * clip, "tilted": tilted}.items()}  # fmt: skip
    gain_change = 1 - torch.dot(emb["clip"], emb["louder"]).item()  # not 0: log(mel + eps) in the quiet frames
    tilt_change = 1 - torch.dot(emb["clip"], emb["tilted"]).item()
    assert gain_change < 0.01
    if normalization == "per_band":
        assert tilt_change < 2 * gain_change  # the EQ is cancelled like the gain
    else:
        assert tilt_change > 5 * gain_change  # the EQ reaches the embedding


def test_input_normalization_is_checked():
    with pytest.raises(ValueError, match="input_normalization"):
        voicerec.SSCLConfig(input_normalization="none")
