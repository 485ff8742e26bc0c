"""SSCL training: the contrastive policy, the MoCo mechanics, the augmentations and a tiny end-to-end run."""

from __future__ import annotations

import json

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
import yaml
from transformers import AutoModel

from training import augment
from training.data import Clip
from training.moco import POLICIES, KeyQueue, MoCo, contrastive_logits, info_nce, momentum_update
from training.pseudo_singers import main as pseudo_main
from training.train_sscl import load_config, main
from training.views import ContrastiveViews
from voicerec import SSCLConfig, SSCLModel
from voicerec.synth import VOICES, scale_melody, sing

SR = 16000


def _median_f0(x: np.ndarray) -> float:
    return float(np.median(librosa.yin(x, fmin=80, fmax=1000, sr=SR, frame_length=1024)))


@pytest.fixture(scope="module")
def held_note() -> np.ndarray:
    """3 s of one sung A3 (with vibrato): its median f0 is well defined."""
    return sing([(57.0, 3.0)], VOICES["tenor"], SR)


@pytest.mark.parametrize("variant", ["timbre", "expression"])
def test_policy_positive_mask(variant):
    """The pitched copy is a negative for both encoders; the stretched copy is a positive only for timbre."""
    torch.manual_seed(0)
    query = F.normalize(torch.randn(3, 8), dim=-1)
    copies = {name: F.normalize(torch.randn(3, 8), dim=-1) for name in ("key", "stretched", "pitched")}
    queue = F.normalize(torch.randn(5, 8), dim=-1)
    logits, positive = contrastive_logits(query, copies, POLICIES[variant], queue)
    assert logits.shape == positive.shape == (3, 3 + 5)
    order = [name for name in POLICIES[variant] if name in copies]
    expected = {"key": True, "pitched": False, "stretched": variant == "timbre"}
    assert [bool(positive[0, i]) for i in range(3)] == [expected[name] for name in order]
    assert not positive[:, 3:].any()  # the queue only holds negatives
    assert torch.allclose(logits[:, order.index("pitched")], (query * copies["pitched"]).sum(-1))


def test_info_nce_prefers_aligned_positives():
    torch.manual_seed(0)
    policy = POLICIES["timbre"]
    query = F.normalize(torch.randn(16, 32), dim=-1)
    queue = F.normalize(torch.randn(64, 32), dim=-1)
    random_key = F.normalize(torch.randn(16, 32), dim=-1)
    pitched = F.normalize(torch.randn(16, 32), dim=-1)
    aligned = {"key": query.clone(), "stretched": query.clone(), "pitched": pitched}
    unaligned = {"key": random_key, "stretched": random_key, "pitched": pitched}
    loss_aligned = info_nce(*contrastive_logits(query, aligned, policy, queue), temperature=0.07)
    loss_random = info_nce(*contrastive_logits(query, unaligned, policy, queue), temperature=0.07)
    assert loss_aligned < 0.1 < loss_random
    # a negative that equals the query (the pitched copy looking like the anchor) must cost
    confused = {**aligned, "pitched": query.clone()}
    assert info_nce(*contrastive_logits(query, confused, policy, queue), temperature=0.07) > loss_aligned + 0.5


def test_momentum_update_formula():
    torch.manual_seed(0)
    online, target = torch.nn.BatchNorm1d(4), torch.nn.BatchNorm1d(4)
    with torch.no_grad():
        online.weight.copy_(torch.randn(4))
        target.weight.copy_(torch.randn(4))
        online.running_mean.copy_(torch.randn(4))
    before = target.weight.detach().clone()
    momentum_update(online, target, 0.9)
    assert torch.allclose(target.weight, 0.9 * before + 0.1 * online.weight)
    assert torch.equal(target.running_mean, online.running_mean)  # buffers are copied, not averaged


@pytest.mark.parametrize("head_dim", [0, 8])
def test_moco_shapes_with_and_without_head(head_dim):
    encoder = SSCLModel(SSCLConfig(hidden_size=16, attention_channels=8, embedding_size=12, block_dilations=[2]))
    moco = MoCo(encoder, head_hidden=16, head_dim=head_dim, queue_size=10).train()
    batch = {name: torch.randn(4, SR // 2) * 0.1 for name in ("query", "key", "pitched", "stretched")}
    query, copies = moco(batch, POLICIES["expression"])
    dim = head_dim or 12  # without a head the loss sees the embedding itself
    assert query.shape == (4, dim) and moco.queue.keys.shape == (10, dim)
    assert set(copies) == {"key", "pitched", "stretched"} and all(k.shape == (4, dim) for k in copies.values())
    assert not any(p.requires_grad for p in moco.key_encoder.parameters())


def test_queue_is_fifo():
    queue = KeyQueue(size=4, dim=2)
    first = torch.arange(6, dtype=torch.float32).reshape(3, 2)
    second = 10 + torch.arange(6, dtype=torch.float32).reshape(3, 2)
    queue.enqueue(first)
    queue.enqueue(second)  # wraps: the oldest key (first[0]) is overwritten by second[2]
    assert int(queue.ptr) == 2
    assert torch.equal(queue.keys, torch.stack([second[1], second[2], first[2], second[0]]))


def test_pitch_shift_moves_pitch(held_note):
    """Resampling raises f0 by exactly the ratio and gives len/ratio samples."""
    x = held_note
    for semitones in (3.0, -2.0):
        y = augment.pitch_shift(x, semitones, SR)
        ratio = augment.semitone_ratio(semitones)
        assert abs(len(y) - len(x) / ratio) <= 2
        measured = 12 * np.log2(_median_f0(y) / _median_f0(x))
        assert measured == pytest.approx(semitones, abs=0.15)


def test_time_stretch_keeps_pitch(held_note):
    x = held_note
    y = augment.time_stretch(x, 1.5)
    assert abs(len(y) - len(x) / 1.5) < 0.02 * len(x)
    assert 12 * np.log2(_median_f0(y) / _median_f0(x)) == pytest.approx(0.0, abs=0.15)


def test_views_have_the_right_shape(singing):
    clips = [Clip(singing, "a"), Clip(singing[::-1].copy(), "b")]
    views = ContrastiveViews(clips, seconds=1.0, length=4, seed=0)
    item = views[0]
    assert set(item) == {"query", "key", "pitched", "stretched"}
    for x in item.values():
        assert x.shape == (SR,) and x.dtype == torch.float32 and torch.isfinite(x).all() and x.abs().max() <= 1.0
    assert not torch.equal(item["query"], item["pitched"])


@pytest.fixture(scope="module")
def singer_folder(tmp_path_factory):
    """A folder of audio, one subfolder per synthetic singer."""
    root = tmp_path_factory.mktemp("singers")
    for k, name in enumerate(("bass", "soprano", "tenor")):
        (root / name).mkdir()
        audio = sing(scale_melody(45 + 6 * k, n_notes=8, seconds=0.4, seed=k), VOICES[name], SR, seed=k)
        sf.write(root / name / "song.wav", audio, SR)
    return root


def _tiny_config(tmp_path, source, variant: str, pseudo: str | None = None) -> str:
    config = load_config(f"training/configs/sscl_{variant}.yaml")
    config["model"].update(hidden_size=16, attention_channels=8, embedding_size=8, block_dilations=[2])
    config["data"].update(sources=[str(source)], exclude_singers=["tenor"], pseudo_sources=[pseudo] if pseudo else [])
    config["views"]["seconds"] = 1.0
    config["train"].update(steps=2, batch_size=4, workers=0, warmup_steps=1, queue_size=16, head_hidden=16, head_dim=8)
    config["export"].update(out_dir=str(tmp_path / f"sscl-{variant}"), log_dir=str(tmp_path / "logs"))
    path = tmp_path / f"{variant}.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.mark.parametrize("variant", ["timbre", "expression"])
def test_two_step_run_exports_a_loadable_model(tmp_path, singer_folder, singing, variant):
    config_path = _tiny_config(tmp_path, singer_folder, variant)
    main(["--config", config_path])
    out = tmp_path / f"sscl-{variant}"
    model = AutoModel.from_pretrained(out, trust_remote_code=True, use_safetensors=True).eval()
    assert model.config.variant == variant and model.config.hidden_size == 16
    with torch.no_grad():
        emb = model(torch.from_numpy(singing[None, : 2 * SR])).embeddings
    assert emb.shape == (1, 8) and torch.allclose(emb.norm(dim=-1), torch.ones(1), atol=1e-5)
    log = [json.loads(line) for line in (tmp_path / "logs" / f"sscl-{variant}.jsonl").read_text().splitlines()]
    assert len(log) == 2 and all(np.isfinite(row["loss"]) for row in log)
    trained = yaml.safe_load((out / "training_config.yaml").read_text())
    assert trained["data"]["exclude_singers"] == ["tenor"] and trained["train"]["steps"] == 2
    card = (out / "README.md").read_text()
    assert "license: cc-by-nc-sa-4.0" in card and "tenor" in card and "Not evaluated yet" in card

    # the card can be refreshed with evaluation results without retraining
    results = tmp_path / "results.md"
    results.write_text("| embedding | length | top-1 |\n|---|---|---|\n| timbre | full | 0.512 |\n")
    speed = tmp_path / "speed.txt"
    speed.write_text("hub/voicerec-sscl-timbre  1  12.5\n")
    main(["--config", config_path, "--card-only", "--results", str(results), "--speed", str(speed)])
    card = (out / "README.md").read_text()
    assert "| timbre | full | 0.512 |" in card and "```text\nhub/voicerec-sscl-timbre  1  12.5\n```" in card


def test_excluding_every_singer_is_a_clear_error(tmp_path, singer_folder):
    config_path = _tiny_config(tmp_path, singer_folder, "timbre")
    with pytest.raises(ValueError, match="no training clips"):
        main(["--config", config_path, "--exclude-singers", "bass,soprano,tenor"])


def test_run_with_pseudo_singers_exports_a_centred_model(tmp_path, singer_folder):
    """WORLD pseudo-singers of the training singers join the data; the export centres the embedding on them."""
    config_path = _tiny_config(tmp_path, singer_folder, "timbre", pseudo=str(tmp_path / "pseudo"))
    pseudo_main(["--config", config_path, "--out", str(tmp_path / "pseudo"), "--per-singer", "1"])
    manifest = (tmp_path / "pseudo" / "manifest.csv").read_text()
    assert "bass~w0" in manifest and "tenor" not in manifest  # excluded singers get no copies either
    main(["--config", config_path])
    model = SSCLModel.from_pretrained(tmp_path / "sscl-timbre").eval()
    assert model.embedding_center.norm() > 0.1
    # --recenter refits the centre of the exported folder from its own training config: the same centre again
    trained_center = model.embedding_center.clone()
    with torch.no_grad():
        model.embedding_center.zero_()
    model.save_pretrained(tmp_path / "sscl-timbre")
    main(["--config", config_path, "--recenter"])
    refit = SSCLModel.from_pretrained(tmp_path / "sscl-timbre").eval()
    assert torch.allclose(refit.embedding_center, trained_center, atol=1e-5)


def test_embedding_center_spreads_the_embeddings():
    torch.manual_seed(0)
    model = SSCLModel(SSCLConfig(hidden_size=16, attention_channels=8, embedding_size=8, block_dilations=[2])).eval()
    clips = [torch.from_numpy(sing(scale_melody(45 + 3 * k, 6, 0.3, seed=k), VOICES["alto"], SR)) for k in range(6)]
    with torch.no_grad():
        before = torch.cat([model(c[None]).embeddings for c in clips])
        assert torch.allclose(before, torch.cat([F.normalize(model(c[None]).pooled, dim=-1) for c in clips]))
        center = model.fit_embedding_center(clips)
        assert torch.allclose(center, before.mean(0), atol=1e-6)
        after = torch.cat([model(c[None]).embeddings for c in clips])
    assert torch.allclose(after.norm(dim=-1), torch.ones(6), atol=1e-5)
    off = ~torch.eye(6, dtype=torch.bool)
    assert (after @ after.T)[off].mean() < (before @ before.T)[off].mean() - 0.1
    assert torch.allclose(after, F.normalize(before - center, dim=-1), atol=1e-5)
    # by singer: five clips of one voice and one of another weigh the same
    with torch.no_grad():
        model.embedding_center.zero_()
        balanced = model.fit_embedding_center(clips, groups=["a"] * 5 + ["b"])
    assert torch.allclose(balanced, (before[:5].mean(0) + before[5]) / 2, atol=1e-6)
    with pytest.raises(ValueError, match="groups"):
        model.fit_embedding_center(clips, groups=["a"])
