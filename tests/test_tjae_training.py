"""TJAE training, latent check, causality and export, on tiny configs and synthetic singing."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import AutoModel

import voicerec
from training.ablate_tjae import choose_winner
from training.data import Clip
from training.export_tjae import card_fields, reconstruction_figure
from training.train_tjae import train
from voicerec.audio.synth import VOICES, scale_melody, sing
from voicerec.export import export_model

TINY_MODEL = {"hidden_size": 16, "latent_size": 8, "layer_dilations": [1, 2, 4], "jump_size": 4}


def tiny_config(steps: int = 40, **model) -> dict:
    return {
        "seed": 0,
        "threads": 1,
        "model": {**TINY_MODEL, **model},
        "train": {
            "steps": steps,
            "batch_size": 4,
            "crop_seconds": 1.0,
            "learning_rate": 5e-3,
            "weight_decay": 0.0,
            "warmup_steps": 5,
            "log_every": 10,
        },
    }


@pytest.fixture(scope="module")
def clips() -> list[Clip]:
    voices = ["bass", "tenor", "soprano"]
    return [
        Clip(sing(scale_melody(48 + 7 * i, n_notes=8, seconds=0.4, seed=i), VOICES[v], sr=16000), f"synth{i}", v, v)
        for i, v in enumerate(voices)
    ]


@pytest.fixture(scope="module")
def batch(clips) -> torch.Tensor:
    """A fixed batch the training never sees in this exact cut."""
    return torch.from_numpy(np.stack([c.audio[8000:24000] for c in clips]))


@pytest.fixture(scope="module")
def trained(clips, tmp_path_factory):
    out = tmp_path_factory.mktemp("tjae")
    model, log = train(tiny_config(), clips, out)
    return model, log, out


def fixed_batch_loss(model, batch: torch.Tensor, latent_mode: str | None = None) -> float:
    torch.manual_seed(0)  # the shuffle is random
    with torch.no_grad():
        return float(model.eval()(input_values=batch, latent_mode=latent_mode).loss)


def test_training_reduces_loss_on_fixed_batch(trained, batch):
    model, log, out = trained
    torch.manual_seed(0)
    untrained = voicerec.TJAEModel(voicerec.TJAEConfig(**TINY_MODEL))
    before, after = fixed_batch_loss(untrained, batch), fixed_batch_loss(model, batch)
    assert after < 0.6 * before, (before, after)
    saved = json.loads((out / "train_log.json").read_text())
    assert saved["steps"] == 40 and saved["log"][-1]["step"] == 40
    assert saved["log"][-1]["loss"] < saved["log"][0]["loss"]


def test_embedding_is_centred_on_training_clips(trained, clips):
    """Training ends by storing the clips' mean pooled latent; the embedding is measured from it."""
    model, _, out = trained
    center = model.embedding_center.clone()
    assert center.abs().sum() > 0
    with torch.no_grad():
        pooled = [model.eval()(input_values=torch.from_numpy(c.audio)[None]).latent[0].mean(0) for c in clips]
        torch.testing.assert_close(center, torch.stack(pooled).mean(0), atol=1e-5, rtol=1e-4)
        out_ = model(input_values=torch.from_numpy(clips[0].audio)[None]).embeddings[0]
    torch.testing.assert_close(out_, torch.nn.functional.normalize(pooled[0] - center, dim=0), atol=1e-5, rtol=1e-4)
    saved = AutoModel.from_pretrained(out)
    assert torch.equal(saved.embedding_center, center)


def test_time_budget_stops_training_early(clips):
    cfg = tiny_config(steps=1000)
    cfg["train"]["max_minutes"] = 1e-6
    _, log = train(cfg, clips)
    assert not log or log[-1]["step"] < 5
    cfg["train"]["max_minutes"] = -1
    with pytest.raises(ValueError, match="max_minutes"):
        train(cfg, clips)


def test_removing_the_latent_hurts_reconstruction(trained, batch):
    model, _, _ = trained
    true = fixed_batch_loss(model, batch)
    assert fixed_batch_loss(model, batch, "zero") > 1.5 * true
    assert fixed_batch_loss(model, batch, "shuffle") > 1.5 * true


def test_shuffle_keeps_embedding_but_changes_reconstruction(trained, batch):
    """Shuffling in time keeps the latent's statistics (so the pooled embedding) and scrambles the decoding."""
    model, _, _ = trained
    x, mask = model.normalized_logmel(batch, None)
    z, _ = model.autoencode(x, mask)
    torch.manual_seed(0)
    shuffled = model.replace_latent(z, mask, "shuffle")
    assert not torch.allclose(shuffled, z)
    torch.testing.assert_close(shuffled.sort(dim=-1).values, z.sort(dim=-1).values)


@pytest.mark.parametrize("causal", [True, False])
def test_causal_output_ignores_the_future(causal):
    torch.manual_seed(0)
    model = voicerec.TJAEModel(voicerec.TJAEConfig(**TINY_MODEL, causal=causal)).eval()
    x = torch.randn(1, 80, 60)
    mask = torch.ones(1, 60, dtype=torch.bool)
    later = x.clone()
    later[..., 30:] = torch.randn(1, 80, 30)
    with torch.no_grad():
        (z1, r1), (z2, r2) = model.autoencode(x, mask), model.autoencode(later, mask)
    past_unchanged = torch.equal(z1[..., :30], z2[..., :30]) and torch.equal(r1[..., :30], r2[..., :30])
    assert past_unchanged is causal
    assert not torch.equal(r1[..., 30:], r2[..., 30:])


def test_export_round_trip_and_card(trained, batch, tmp_path):
    model, log, out = trained
    train_log = json.loads((out / "train_log.json").read_text())
    rec = {"true latent": 0.1, "latent zeroed": 0.9, "latent shuffled in time": 1.5}
    retrieval = {"top1": 0.5, "mAP": 0.6, "queries": 4}
    corr = {"pearson": 0.1, "spearman": 0.2, "pairs": 6}
    evaluation = {
        "timbre_model": None,
        "heldout_clips": 3,
        "reconstruction": rec,
        "embeddings": {
            "same_song_retrieval": {"mood (TJAE)": retrieval},
            "singer_retrieval": {"mood (TJAE)": {"top1": 0.5, "map": 0.5, "eer": 0.3, "queries": 4}},
            "cosine_spread": {"mood (TJAE)": {"p1": 0.1, "median": 0.5, "std": 0.2}},
            "similarity_correlation": {"mood (TJAE) vs MFCC mean+std": {"all pairs": corr, "same-singer pairs": corr}},
        },
    }
    fold = {"same_song": retrieval, "singer": {"top1": 0.4, "map": 0.5}, "mfcc_correlation": corr}
    evaluation["pooling"] = {"mean": {"fold B": fold, "fold A": fold}, "mean_std": {"fold B": fold}}
    variants = {
        "time jumps, causal": {
            "model": {"time_jumps": True, "causal": True},
            "train_seconds": 60,
            "reconstruction": rec,
            "same_song_retrieval": retrieval,
        },
        "time jumps without jump dropout, causal": {
            "model": {"time_jumps": True, "causal": True, "jump_dropout": 0.0},
            "train_seconds": 60,
            "reconstruction": {**rec, "latent zeroed": 0.12},
            "same_song_retrieval": retrieval,
        },
    }
    ablation = {"steps": 10, "batch_size": 4, "crop_seconds": 1.0, "guard": 2.0, "variants": variants}
    ablation["winner"] = choose_winner(variants, 2.0)
    assert ablation["winner"] == "time jumps, causal"
    cfg = tiny_config()
    cfg["data"] = {"heldout": {"singers": ["A"], "songs": ["s1"]}}
    cfg["export"] = {"hub_id": "voicerec/tiny-tjae", "license": "cc-by-nc-sa-4.0", "training_data": "synthetic"}
    fields = card_fields(cfg, train_log, evaluation, ablation, model)
    folder = export_model(model, tmp_path / "hub", "tjae.md", fields)
    card = (folder / "README.md").read_text()
    assert "$" not in card.replace("```bash", ""), [line for line in card.splitlines() if "$" in line]
    assert "license: cc-by-nc-sa-4.0" in card and "custom_code" in card
    assert "Failing the latent guard: time jumps without jump dropout, causal" in card
    figure = reconstruction_figure(model, folder / "reconstruction.png")
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "](reconstruction.png)" in card
    loaded = AutoModel.from_pretrained(folder).eval()
    with torch.no_grad():
        assert torch.equal(model.eval()(input_values=batch).embeddings, loaded(input_values=batch).embeddings)


@pytest.mark.parametrize(("pooling", "size"), [("mean", 8), ("mean_std", 16)])
def test_pooling_sets_embedding(pooling, size, batch):
    config = voicerec.TJAEConfig(**TINY_MODEL, pooling=pooling)
    with torch.no_grad():
        out = voicerec.TJAEModel(config).eval()(input_values=batch)
    assert config.embedding_size == size and out.embeddings.shape == (3, size)
    pooled = out.latent.mean(dim=1)
    if pooling == "mean_std":
        pooled = torch.cat([pooled, out.latent.std(dim=1, correction=0)], dim=-1)
    torch.testing.assert_close(out.embeddings, torch.nn.functional.normalize(pooled, dim=-1))
    with pytest.raises(ValueError, match="pooling"):
        voicerec.TJAEConfig(pooling="max")
