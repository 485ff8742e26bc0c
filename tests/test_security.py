"""Loading never runs code from a model or catalog folder: safetensors only (no pickle), our own model classes
rather than the folder's Python files, no dataset loading scripts."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest

from tests.tiny_hub import build_tiny_hub
from voicerec.embeddings import Embedder
from voicerec.models.modeling_ge2e import GE2EModel
from voicerec.search.catalog import Catalog


class _Boobytrap:
    """Unpickling this writes the marker file: proof that a pickle was loaded."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "unpickled"))


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Path:
    return build_tiny_hub(tmp_path_factory.mktemp("hub"))


def models(hub: Path, **override: Path) -> dict[str, str]:
    names = {"timbre": "voicerec-sscl-timbre", "expression": "voicerec-sscl-expression", "mood": "voicerec-tjae"}
    return {k: str(override.get(k, hub / name)) for k, name in names.items()}


def test_pickle_weights_are_never_loaded(hub, tmp_path):
    folder = Path(shutil.copytree(hub / "voicerec-sscl-timbre", tmp_path / "timbre"))
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "marker"
    import pickle

    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Boobytrap(marker)))
    with pytest.raises(OSError, match="timbre"):
        Embedder.from_pretrained(**models(hub, timbre=folder))
    assert not marker.exists()


def test_model_folder_code_is_never_imported(hub, tmp_path):
    """A folder whose auto_map points at its own Python file still gets voicerec's class; the file never runs."""
    folder = Path(shutil.copytree(hub / "voicerec-sscl-timbre", tmp_path / "timbre"))
    marker = tmp_path / "marker"
    (folder / "evil_modeling.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil_modeling.EvilConfig", "AutoModel": "evil_modeling.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    embedder = Embedder.from_pretrained(**models(hub, timbre=folder))
    assert type(embedder.models["timbre"][0]) is GE2EModel
    assert not marker.exists()


def test_foreign_model_type_is_refused_without_running_its_code(hub, tmp_path):
    folder = Path(shutil.copytree(hub / "voicerec-sscl-timbre", tmp_path / "timbre"))
    marker = tmp_path / "marker"
    (folder / "evil_modeling.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "not-voicerec"
    config["auto_map"] = {"AutoConfig": "evil_modeling.EvilConfig", "AutoModel": "evil_modeling.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises((OSError, ValueError)):
        Embedder.from_pretrained(**models(hub, timbre=folder))
    assert not marker.exists()


def test_catalog_loading_script_is_never_run(hub, tmp_path):
    folder = Path(shutil.copytree(hub / "voicerec-catalog", tmp_path / "voicerec-catalog"))
    marker = tmp_path / "marker"
    (folder / "voicerec-catalog.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    catalog = Catalog.load(str(folder))
    assert len(catalog) > 0
    assert not marker.exists()


def test_runtime_code_loads_safetensors_only():
    """Every call that loads weights in the library and the app asks for safetensors (a pickle is refused)."""
    root = Path(__file__).resolve().parent.parent
    calls = []
    for path in [*sorted((root / "voicerec").rglob("*.py")), root / "app.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            func = getattr(node, "func", None)
            if isinstance(func, ast.Attribute) and func.attr == "from_pretrained":
                owner = ast.unparse(func.value)
                if owner.startswith("AutoModel"):
                    safe = any(k.arg == "use_safetensors" and ast.unparse(k.value) == "True" for k in node.keywords)
                    calls.append((f"{path.name}:{node.lineno}", safe))
    assert calls, "no weight loading found: the check would be vacuous"
    assert [c for c, safe in calls if not safe] == []
