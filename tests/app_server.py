"""`python app.py` started the way a user starts it, in a subprocess on a free localhost port, for the app tests.

The encoders and catalog come from VOICEREC_* environment variables when they are all set (e.g. the shipped
hub/ folders, for a screenshot of the real app), else from a tiny random hub built in a temporary folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.tiny_hub import build_tiny_catalog, export_tiny_models
from voicerec.defaults import ARTEFACTS
from voicerec.tools.bench import serve

ENV_VARS = [env for env, _ in ARTEFACTS.values()]
START_TIMEOUT = 180.0


def model_env(tmp: Path) -> dict[str, str]:
    """VOICEREC_* for the app: the caller's if all set, else a tiny hub (3 synthetic songs) built under `tmp`."""
    if all(os.environ.get(env) for env in ENV_VARS):
        return {env: os.environ[env] for env in ENV_VARS}
    hub = tmp / "hub"
    export_tiny_models(hub)
    build_tiny_catalog(hub, songs=3)
    return {env: str(hub / repo) for env, repo in ARTEFACTS.values()}


@contextmanager
def running_app(env: dict[str, str], log: Path) -> Iterator[str]:
    """Start app.py with `env` added, wait until it answers, yield its URL; stop it afterwards."""
    full_env = os.environ | env | {"HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    with serve(["app.py"], full_env, log=log, timeout=START_TIMEOUT) as (url, _):
        yield url
