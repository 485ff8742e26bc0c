"""Shared fixtures: singing synthesised in the tests themselves (known pitch, known voice), offline Hub."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402

from voicerec.audio.synth import VOICES, scale_melody, sing  # noqa: E402


@pytest.fixture(scope="session")
def singing() -> np.ndarray:
    """8 s of a baritone singing a stepwise melody on D3 (MIDI 50), at 16 kHz."""
    return sing(scale_melody(50, n_notes=16, seconds=0.5, seed=1), VOICES["baritone"], sr=16000)


@pytest.fixture(scope="session")
def singing_wav(tmp_path_factory, singing) -> str:
    path = tmp_path_factory.mktemp("audio") / "singing.wav"
    sf.write(path, singing, 16000)
    return str(path)


@pytest.fixture(scope="session")
def tiny_encoders(tmp_path_factory) -> dict[str, str]:
    """Tiny randomly initialised timbre / expression / mood encoders exported as Hub folders (name -> folder)."""
    import torch

    import voicerec
    from tests.tiny_hub import tiny_ge2e
    from voicerec.export import export_model

    root = tmp_path_factory.mktemp("encoders")
    torch.manual_seed(0)
    models = {
        "timbre": tiny_ge2e("timbre"),
        "expression": tiny_ge2e("expression"),
        "mood": voicerec.TJAEModel(voicerec.TJAEConfig(hidden_size=16, latent_size=8, layer_dilations=[1, 2, 4])),
    }
    return {name: str(export_model(model.eval(), root / name)) for name, model in models.items()}
