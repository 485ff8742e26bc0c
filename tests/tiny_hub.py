"""hub/ as the trainers and the catalog builder leave it, in miniature: tiny random encoders exported with the
real card templates and a catalog of a few synthetic songs. Shared by the publishing and bad-input tests."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch

import voicerec
from voicerec.audio.synth import VOICES, scale_melody, sing
from voicerec.defaults import ARTEFACTS
from voicerec.embeddings import weights_fingerprint
from voicerec.export import MODEL_CARDS, export_model
from voicerec.tools.publish import DATASET_REPO, TRANSFORMERS_REPOS
from voicerec.voice_type import VoiceTypeClassifier

CARD_OF = {"voicerec-sscl-timbre": "sscl.md", "voicerec-sscl-expression": "sscl.md", "voicerec-tjae": "tjae.md"}


def tiny_ge2e(variant: str):
    """A tiny GE2E-architecture encoder; timbre and expression share the LSTM and differ in the projection, as the
    shipped ones do."""
    torch.manual_seed(0)
    model = voicerec.GE2EModel(voicerec.GE2EConfig(variant=variant, hidden_size=16, num_layers=2, embedding_size=16))
    torch.manual_seed(len(variant))
    model.linear.reset_parameters()
    return model.eval()


def tiny_model(name: str) -> torch.nn.Module:
    torch.manual_seed(len(name))
    if name == "voicerec-tjae":
        return voicerec.TJAEModel(voicerec.TJAEConfig(hidden_size=16, latent_size=8, layer_dilations=[1, 2, 4]))
    return tiny_ge2e("expression" if "expression" in name else "timbre")


def template_fields(template: Path, model_id: str) -> dict[str, str]:
    """Every `$field` of a card template filled, the metadata ones with valid values."""
    names = set(re.findall(r"\$\{?([a-z_]+)", template.read_text()))
    fields = {name: f"test {name}" for name in names}
    fields.update(model_id=model_id, license="cc-by-nc-sa-4.0", datasets="- voicerec/test-singing", revision="main")
    return fields


def export_tiny_voice_type(hub: Path) -> None:
    """A voice-type classifier on the tiny timbre encoder's embedding (random weights, the encoder's real
    fingerprint), with the card the fit script renders."""
    from training.fit_voice_type import write_card

    rng = np.random.default_rng(0)
    size = tiny_model("voicerec-sscl-timbre").config.embedding_size
    config = {"embedding": "timbre", "encoder": "voicerec-sscl-timbre",
              "encoder_fingerprint": weights_fingerprint(hub / "voicerec-sscl-timbre"), "embedding_size": size,
              "C": 1.0, "labelled_singers": 2, "helper_singers": 0, "helper_female": 0}  # fmt: skip
    folder = hub / "voicerec-voice-type"
    VoiceTypeClassifier(rng.normal(size=size), np.zeros(size), 0.0, config).save_pretrained(folder)
    write_card(folder, config, "(a test classifier: no figures)")


def export_tiny_models(hub: Path) -> None:
    for name in TRANSFORMERS_REPOS:
        template = MODEL_CARDS / CARD_OF[name]
        export_model(tiny_model(name).eval(), hub / name, template, template_fields(template, f"voicerec/{name}"))
    export_tiny_voice_type(hub)


def build_tiny_catalog(hub: Path, songs: int = 4) -> None:
    """The catalog builder run over a few synthetic songs (different voices and keys) with the tiny encoders."""
    from voicerec.search.catalog import build_catalog

    audio_dir = hub.parent / f"{hub.name}-songs"
    audio_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(songs):
        voice = list(VOICES)[i % len(VOICES)]
        tonic = 43 + 3 * i
        sf.write(audio_dir / f"song{i}.wav", sing(scale_melody(tonic, 10, 0.5, seed=i), VOICES[voice], 16000), 16000)
        rows.append({"file": f"song{i}.wav", "song_id": f"song{i}", "title": f"Song {i}", "artist": "synth",
                     "voice": voice, "license": "cc0-1.0", "key": "C major"})  # fmt: skip
    pd.DataFrame(rows).to_csv(audio_dir / "songs.csv", index=False)
    models = {key: str(hub / ARTEFACTS[key][1]) for key in ("timbre", "expression", "mood")}
    build_catalog(audio_dir, hub / DATASET_REPO, audio_dir / "songs.csv", cache=hub.parent / f"{hub.name}-cache",
                  card={"repo_id": f"voicerec/{DATASET_REPO}", "license": "cc0-1.0"},
                  progress=False, **models)  # fmt: skip


def build_tiny_hub(hub: Path) -> Path:
    export_tiny_models(hub)
    build_tiny_catalog(hub)
    return hub
