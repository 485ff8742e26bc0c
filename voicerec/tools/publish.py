"""Assemble, and optionally push, everything voicerec publishes on the Hugging Face Hub.

Six repos: the three encoders and the voice-type classifier (model repos, from `hub/<name>/`), the catalog
(dataset repo, from `hub/voicerec-catalog/`) and the demo Space (app.py, the voicerec package, requirements,
example clips and a README with Space front matter). `assemble` writes each repo's exact folder under one output
folder and checks it (safetensors only, Hub metadata in every card); `push` uploads those same folders unchanged, so
what is published is what the tests load.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from huggingface_hub import DatasetCard, HfApi, ModelCard

from ..defaults import ARTEFACTS, HUB_DIR, REPO_ROOT

DEFAULT_NAMESPACE = "voicerec"
MODEL_REPOS = {repo: env for key, (env, repo) in ARTEFACTS.items() if key != "catalog"}
"""Model repo name -> the environment variable through which the app is told where to load it from."""
TRANSFORMERS_REPOS = tuple(ARTEFACTS[key][1] for key in ("timbre", "expression", "mood"))
"""The encoders, loaded with `AutoModel.from_pretrained(..., trust_remote_code=True)`; the voice-type classifier is
two plain files (`voicerec.voice_type.VoiceTypeClassifier`)."""
DATASET_ENV, DATASET_REPO = ARTEFACTS["catalog"]
SPACE_REPO = "voicerec"
SPACE_CARD = REPO_ROOT / "model_cards" / "space.md"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib")
"""Weight formats that unpickle (run code) when loaded: never shipped, never loaded."""
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".DS_Store", ".ipynb_checkpoints")


class PublishError(RuntimeError):
    """Something to fix before publishing (or a push that failed); the message says what."""


@dataclass
class Repo:
    """One assembled Hub repo: `folder` is uploaded as is to `repo_id`."""

    repo_id: str
    repo_type: str  # "model", "dataset" or "space"
    folder: Path
    variables: dict[str, str] = field(default_factory=dict)  # environment of a Space

    def files(self) -> list[str]:
        return sorted(str(p.relative_to(self.folder)) for p in self.folder.rglob("*") if p.is_file())

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file())


def card_problems(readme: str | Path, repo_type: str, transformers: bool = True) -> list[str]:
    """What the Hub would miss in a card's metadata (empty list = fine). Parses like the Hub does.

    `transformers`: a model loaded with AutoModel and trust_remote_code (its card must say so)."""
    card_cls = DatasetCard if repo_type == "dataset" else ModelCard
    try:
        card = card_cls.load(readme, repo_type=repo_type)
    except Exception as exc:  # unparsable YAML front matter, missing file
        return [f"card does not parse: {exc}"]
    data = card.data.to_dict()
    problems = []
    if not data.get("license"):
        problems.append("no license")
    if repo_type == "model":
        if transformers and data.get("library_name") != "transformers":
            problems.append("library_name is not transformers")
        if not data.get("pipeline_tag"):
            problems.append("no pipeline_tag")
        if transformers and "custom_code" not in (data.get("tags") or []):
            problems.append("tags lack custom_code")
        if not data.get("datasets"):
            problems.append("no datasets (training data)")
    elif repo_type == "dataset":
        if not (data.get("task_categories") or data.get("tags")):
            problems.append("no task_categories or tags")
    elif repo_type == "space":
        for key in ("sdk", "app_file", "title"):
            if not data.get(key):
                problems.append(f"no {key}")
    unfilled = sorted(set(re.findall(r"\$\{?([a-z_]+)\b", card.content)))
    if unfilled:
        problems.append(f"unfilled template fields {unfilled}")
    return problems


def _rename_ids(text: str, namespace: str, revision: str) -> str:
    """Cards are rendered with the default ids (voicerec/<name>) and `revision="main"` (or a `$revision` field);
    point them at `namespace` and at the tag being published."""
    if namespace != DEFAULT_NAMESPACE:
        names = [*MODEL_REPOS, DATASET_REPO, SPACE_REPO]
        text = re.sub(rf"\b{DEFAULT_NAMESPACE}/({'|'.join(map(re.escape, names))})\b", rf"{namespace}/\1", text)
    text = Template(text).safe_substitute(revision=revision)
    return text.replace('revision="main"', f'revision="{revision}"')


def _copy_repo(src: Path, dst: Path, repo_type: str, namespace: str, revision: str) -> None:
    if not src.is_dir():
        raise PublishError(f"{src} is missing: train/export it (or build the catalog) before publishing.")
    shutil.copytree(src, dst, ignore=_IGNORE)
    pickles = [str(p.relative_to(dst)) for p in dst.rglob("*") if p.suffix in PICKLE_SUFFIXES]
    if pickles:
        raise PublishError(f"{src} holds pickle-based files {pickles}: only safetensors weights are published.")
    readme = dst / "README.md"
    if not readme.exists():
        raise PublishError(f"{src} has no README.md card: render it from model_cards/ when exporting.")
    readme.write_text(_rename_ids(readme.read_text(), namespace, revision))
    transformers = src.name in TRANSFORMERS_REPOS
    if repo_type == "model":
        if not list(dst.glob("*.safetensors")):
            raise PublishError(f"{src} has no .safetensors weights.")
        config = json.loads((dst / "config.json").read_text())
        missing = [f"{ref.split('.')[0]}.py" for ref in config.get("auto_map", {}).values()]
        missing = [name for name in missing if not (dst / name).exists()]
        if transformers and ("auto_map" not in config or missing):
            raise PublishError(f"{src}: config.json lacks auto_map or its code files {missing}.")
    problems = card_problems(readme, repo_type, transformers)
    if problems:
        raise PublishError(f"{src}/README.md: " + "; ".join(problems))


def _space_readme(namespace: str, revision: str, models: list[str], dataset: str) -> str:
    requirements = (REPO_ROOT / "requirements.txt").read_text()
    pin = re.search(r"^gradio==(\S+)", requirements, re.M)
    fields = {
        "namespace": namespace,
        "revision": revision,
        "sdk_version": pin.group(1) if pin else "",
        "models": "\n".join(f"- {m}" for m in models),
        "datasets": f"- {dataset}",
        "space_id": f"{namespace}/{SPACE_REPO}",
    }
    return Template(SPACE_CARD.read_text()).safe_substitute(fields)


def _assemble_space(dst: Path, namespace: str, revision: str, variables: dict[str, str]) -> None:
    dst.mkdir(parents=True)
    shutil.copy2(REPO_ROOT / "app.py", dst / "app.py")
    shutil.copy2(REPO_ROOT / "requirements.txt", dst / "requirements.txt")
    shutil.copytree(REPO_ROOT / "voicerec", dst / "voicerec", ignore=_IGNORE)
    examples = REPO_ROOT / "examples"
    if not any(examples.glob("*.flac")) and not any(examples.glob("*.wav")):
        raise PublishError(f"{examples} has no example clips: make them with python -m examples.make_examples.")
    shutil.copytree(examples, dst / "examples", ignore=_IGNORE)
    models = [v for k, v in variables.items() if k != DATASET_ENV]
    (dst / "README.md").write_text(_space_readme(namespace, revision, models, variables[DATASET_ENV]))
    problems = card_problems(dst / "README.md", "space")
    if problems:
        raise PublishError(f"Space README.md ({SPACE_CARD}): " + "; ".join(problems))


def assemble(
    out: str | Path, namespace: str = DEFAULT_NAMESPACE, revision: str = "main", hub: str | Path = HUB_DIR
) -> list[Repo]:
    """Write the six repos' folders under `out` (replacing earlier ones) and check them; returns them in
    push order (dataset and models before the Space that loads them). Writes `out/publish.json`."""
    out, hub = Path(out), Path(hub)
    out.mkdir(parents=True, exist_ok=True)
    repos: list[Repo] = []
    variables: dict[str, str] = {}
    for name, repo_type, env in [
        (DATASET_REPO, "dataset", DATASET_ENV),
        *((name, "model", env) for name, env in MODEL_REPOS.items()),
    ]:
        dst = out / name
        shutil.rmtree(dst, ignore_errors=True)
        _copy_repo(hub / name, dst, repo_type, namespace, revision)
        repos.append(Repo(f"{namespace}/{name}", repo_type, dst))
        variables[env] = f"{namespace}/{name}"
    space = out / SPACE_REPO
    shutil.rmtree(space, ignore_errors=True)
    _assemble_space(space, namespace, revision, variables)
    repos.append(Repo(f"{namespace}/{SPACE_REPO}", "space", space, variables))
    manifest = [
        {"repo_id": r.repo_id, "repo_type": r.repo_type, "folder": r.folder.name, "variables": r.variables,
         "files": r.files(), "bytes": r.size_bytes()}
        for r in repos
    ]  # fmt: skip
    (out / "publish.json").write_text(json.dumps(manifest, indent=2))
    return repos


def push(
    repos: list[Repo], token: str | None = None, revision: str | None = None, private: bool = False, api=None
) -> list[dict]:
    """Create each repo (if needed) and upload its folder so the Hub repo holds exactly those files.

    The token comes from `token` or HF_TOKEN. With `revision`, each repo is also tagged, matching the
    `revision=` the cards tell users to pin. Any failure stops the push with PublishError naming the repo and
    what was already done; nothing is reported as pushed that was not.
    """
    token = token or os.environ.get("HF_TOKEN")
    if not token:
        raise PublishError("No Hub token: set HF_TOKEN to a token with write access to the namespace.")
    api = api or HfApi(token=token)
    done: list[dict] = []
    for repo in repos:
        step = "create_repo"
        try:
            space = repo.repo_type == "space"
            url = api.create_repo(
                repo.repo_id,
                repo_type=repo.repo_type,
                private=private,
                exist_ok=True,
                space_sdk="gradio" if space else None,
                space_variables=[{"key": k, "value": v} for k, v in repo.variables.items()] or None,
            )
            for key, value in repo.variables.items():  # an existing Space keeps its old variables otherwise
                step = f"add_space_variable {key}"
                api.add_space_variable(repo.repo_id, key, value)
            step = "upload_folder"
            commit = api.upload_folder(
                repo_id=repo.repo_id,
                folder_path=repo.folder,
                repo_type=repo.repo_type,
                commit_message="Publish voicerec",
                delete_patterns="*",  # files not in the folder are removed: the repo is exactly the folder
            )
            if revision and revision != "main":
                step = f"create_tag {revision}"
                api.create_tag(repo.repo_id, tag=revision, repo_type=repo.repo_type)
        except Exception as exc:
            pushed = ", ".join(d["repo_id"] for d in done) or "nothing"
            raise PublishError(f"Pushing {repo.repo_id} failed at {step}: {exc} (already pushed: {pushed})") from exc
        done.append(
            {"repo_id": repo.repo_id, "repo_type": repo.repo_type, "url": str(url),
             "commit": getattr(commit, "oid", None), "files": len(repo.files()), "revision": revision or "main"}
        )  # fmt: skip
    return done
