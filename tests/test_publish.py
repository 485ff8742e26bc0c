"""What `python -m voicerec publish` assembles is what Hub users get, and it works the way they will use it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from transformers import AutoModel

import voicerec
from tests.tiny_hub import build_tiny_hub, tiny_model
from voicerec.defaults import HUB_DIR
from voicerec.tools.bench import serve
from voicerec.tools.publish import (
    DATASET_REPO,
    MODEL_REPOS,
    SPACE_REPO,
    TRANSFORMERS_REPOS,
    PublishError,
    assemble,
    card_problems,
    push,
)


@pytest.fixture(scope="module")
def tiny_hub(tmp_path_factory) -> Path:
    return build_tiny_hub(tmp_path_factory.mktemp("hub"))


@pytest.fixture(scope="module")
def published(tiny_hub, tmp_path_factory) -> dict[str, voicerec.tools.publish.Repo]:
    out = tmp_path_factory.mktemp("published")
    return {repo.folder.name: repo for repo in assemble(out, namespace="someorg", hub=tiny_hub)}


def test_assembled_layout(published):
    assert set(published) == {*MODEL_REPOS, DATASET_REPO, SPACE_REPO}
    assert [r.repo_type for r in published.values()][-1] == "space"  # the Space goes last: it loads the others
    for name in MODEL_REPOS:
        repo = published[name]
        assert repo.repo_id == f"someorg/{name}"
        files = {"config.json", "model.safetensors", "README.md"}
        assert files | ({"preprocessor_config.json"} if name in TRANSFORMERS_REPOS else set()) <= set(repo.files())
        readme = (repo.folder / "README.md").read_text()
        assert f"someorg/{name}" in readme and f"voicerec/{name}" not in readme
    space = published[SPACE_REPO]
    assert {"app.py", "requirements.txt", "README.md", "voicerec/__init__.py"} <= set(space.files())
    assert any(f.startswith("examples/") and f.endswith((".wav", ".flac")) for f in space.files())
    assert space.variables == {
        "VOICEREC_TIMBRE_MODEL": "someorg/voicerec-sscl-timbre",
        "VOICEREC_EXPRESSION_MODEL": "someorg/voicerec-sscl-expression",
        "VOICEREC_MOOD_MODEL": "someorg/voicerec-tjae",
        "VOICEREC_CATALOG": "someorg/voicerec-catalog",
        "VOICEREC_VOICE_TYPE_MODEL": "someorg/voicerec-voice-type",
    }
    manifest = json.loads((space.folder.parent / "publish.json").read_text())
    assert [m["repo_id"] for m in manifest] == [r.repo_id for r in published.values()]


def test_release_tag_is_pinned_in_the_cards(tiny_hub, tmp_path):
    repos = assemble(tmp_path, namespace="someorg", revision="v1.0", hub=tiny_hub)
    for repo in repos:
        if repo.repo_type == "model":
            readme = (repo.folder / "README.md").read_text()
            assert 'revision="v1.0"' in readme and 'revision="main"' not in readme, repo.repo_id


def test_cards_parse_with_hub_metadata(published):
    for repo in published.values():
        transformers = repo.folder.name in TRANSFORMERS_REPOS
        assert card_problems(repo.folder / "README.md", repo.repo_type, transformers) == [], repo.repo_id


@pytest.mark.parametrize("name", sorted({*MODEL_REPOS, DATASET_REPO}))
def test_shipped_hub_cards(name):
    """The real cards in hub/ (once trained / built) carry the metadata the Hub reads."""
    readme = HUB_DIR / name / "README.md"
    if not readme.exists():
        pytest.skip(f"{name} not exported yet")
    assert card_problems(readme, "dataset" if name == DATASET_REPO else "model", name in TRANSFORMERS_REPOS) == []


def test_card_problems_catches_missing_metadata(tmp_path):
    card = tmp_path / "README.md"
    card.write_text("---\nlicense: mit\nlibrary_name: timm\ntags: [audio]\n---\n# m\nload $model_id\n")
    problems = " ".join(card_problems(card, "model"))
    for expected in ("library_name", "pipeline_tag", "custom_code", "datasets", "model_id"):
        assert expected in problems


def check_loads_like_a_hub_user(folders: list[str], audio: np.ndarray, tmp_path: Path) -> None:
    """AutoModel/AutoFeatureExtractor with trust_remote_code in a fresh interpreter that cannot import voicerec
    give the same embeddings as voicerec's own classes."""
    from transformers import AutoFeatureExtractor

    x = [audio[:48000], audio[16000:40000]]
    np.save(tmp_path / "x0.npy", x[0])
    np.save(tmp_path / "x1.npy", x[1])
    script = textwrap.dedent(
        f"""
        import json, sys
        import numpy as np, torch
        from transformers import AutoFeatureExtractor, AutoModel
        out = {{}}
        for folder in {folders!r}:
            model = AutoModel.from_pretrained(folder, trust_remote_code=True, use_safetensors=True).eval()
            fe = AutoFeatureExtractor.from_pretrained(folder, trust_remote_code=True)
            assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
            batch = [np.load({str(tmp_path / "x0.npy")!r}), np.load({str(tmp_path / "x1.npy")!r})]
            with torch.no_grad():
                out[folder] = model(**fe(batch, sampling_rate=16000, return_tensors="pt")).embeddings.tolist()
        assert "voicerec" not in sys.modules, "voicerec was imported"
        print(json.dumps(out))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    # -I: isolated mode, neither the working directory nor PYTHONPATH is on sys.path, so voicerec cannot load
    result = subprocess.run(
        [sys.executable, "-I", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    remote = json.loads(result.stdout.strip().splitlines()[-1])
    for folder in folders:
        local = AutoModel.from_pretrained(folder, use_safetensors=True).eval()  # voicerec's own classes
        fe = AutoFeatureExtractor.from_pretrained(folder)
        with torch.no_grad():
            expected = local(**fe(x, sampling_rate=16000, return_tensors="pt")).embeddings.numpy()
        np.testing.assert_allclose(np.array(remote[folder]), expected, atol=1e-5)


def test_models_load_in_fresh_process_without_voicerec(published, singing, tmp_path):
    check_loads_like_a_hub_user([str(published[name].folder) for name in TRANSFORMERS_REPOS], singing, tmp_path)


def test_shipped_models_load_in_fresh_process_without_voicerec(singing, tmp_path):
    """The trained checkpoints in hub/, copied as publish copies them."""
    folders = []
    for name in TRANSFORMERS_REPOS:
        if not (HUB_DIR / name / "model.safetensors").exists():
            pytest.skip(f"{name} not exported yet")
        folders.append(str(shutil.copytree(HUB_DIR / name, tmp_path / name)))
    check_loads_like_a_hub_user(folders, singing, tmp_path)


def test_pickled_weights_are_refused(tiny_hub, tmp_path):
    hub = Path(shutil.copytree(tiny_hub, tmp_path / "hub"))
    (hub / "voicerec-tjae" / "model.safetensors").unlink()
    torch.save(tiny_model("voicerec-tjae").state_dict(), hub / "voicerec-tjae" / "pytorch_model.bin")
    with pytest.raises(PublishError, match="pytorch_model.bin"):
        assemble(tmp_path / "out", hub=hub)


def test_push_without_token_fails_clearly(published, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(PublishError, match="HF_TOKEN"):
        push(list(published.values()))


def test_push_offline_fails_clearly(published, monkeypatch):
    """No network here: the real HfApi must fail on the first repo and say so, never report success."""
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    with pytest.raises(PublishError, match=r"someorg/voicerec-catalog failed at create_repo.*already pushed: nothing"):
        push(list(published.values()))


def test_push_uploads_exactly_the_assembled_folders(published):
    api = mock.MagicMock()
    api.create_repo.side_effect = lambda repo_id, **kw: f"https://huggingface.co/{repo_id}"
    api.upload_folder.return_value = mock.Mock(oid="abc123")
    repos = list(published.values())
    done = push(repos, token="hf_x", revision="v1", api=api)
    assert [d["repo_id"] for d in done] == [r.repo_id for r in repos]
    assert all(d["commit"] == "abc123" for d in done)
    uploads = api.upload_folder.call_args_list
    assert [(c.kwargs["repo_id"], Path(c.kwargs["folder_path"]), c.kwargs["repo_type"]) for c in uploads] == [
        (r.repo_id, r.folder, r.repo_type) for r in repos
    ]
    assert all(c.kwargs["delete_patterns"] == "*" for c in uploads)
    space_create = api.create_repo.call_args_list[-1]
    assert space_create.kwargs["repo_type"] == "space" and space_create.kwargs["space_sdk"] == "gradio"
    assert {v["key"] for v in space_create.kwargs["space_variables"]} == set(repos[-1].variables)
    assert api.create_tag.call_count == len(repos)


def test_push_stops_at_first_failure(published):
    api = mock.MagicMock()
    api.upload_folder.side_effect = [mock.Mock(oid="a"), ConnectionError("network down")]
    expected = r"failed at upload_folder: network down \(already pushed: someorg/voicerec-catalog\)"
    with pytest.raises(PublishError, match=expected):
        push(list(published.values()), token="hf_x", api=api)
    assert api.upload_folder.call_count == 2


def test_dataset_folder_loads_with_datasets(published, tiny_hub):
    import datasets

    catalog = datasets.load_dataset(str(published[DATASET_REPO].folder), split="train")
    built = datasets.load_dataset(str(tiny_hub / DATASET_REPO), split="train")
    assert catalog.num_rows == built.num_rows > 0
    assert catalog["song_id"] == built["song_id"]
    assert np.allclose(np.array(catalog["fused"]), np.array(built["fused"]))


def test_space_starts_and_answers_from_published_folders(published, singing_wav, tmp_path):
    """The Space folder alone, run as a Space runs it, with the models and catalog only from the published
    folders (by environment variable, as the Hub ids are set on the Space)."""
    from gradio_client import Client, handle_file

    env = {key: str(published[value.split("/")[1]].folder) for key, value in published[SPACE_REPO].variables.items()}
    with running_space(published[SPACE_REPO].folder, env, tmp_path / "space.log") as url:
        client = Client(url, verbose=False, analytics_enabled=False)
        *_, details = client.predict(handle_file(singing_wav), api_name="/recommend")
    songs = {item["song_id"] for item in details["items"]}
    assert songs and songs <= {f"song{i}" for i in range(10)}
    assert details["profile"]["voiced_seconds"] > 3
    assert "pitch and formants only" not in json.dumps(details)  # the published voice-type classifier was used


@contextlib.contextmanager
def running_space(folder: Path, env: dict[str, str], log: Path, timeout: float = 180.0) -> Iterator[str]:
    """`python app.py` from the Space folder, as the Space runs it: it imports the voicerec package beside it
    (no PYTHONPATH to this checkout). Yields the URL once the app answers."""
    full_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    full_env |= env | {"HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "1"}
    with serve(["app.py"], full_env, cwd=folder, log=log, timeout=timeout) as (url, _):
        yield url
