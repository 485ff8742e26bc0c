"""`python app.py` started the way a user starts it, in a subprocess on a free localhost port, for the app tests.

The encoders and catalog come from VOICEREC_* environment variables when they are all set (e.g. the shipped
hub/ folders, for a screenshot of the real app), else from a tiny random hub built in a temporary folder.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.tiny_hub import build_tiny_catalog, export_tiny_models
from voicerec.defaults import ARTEFACTS

REPO = Path(__file__).resolve().parent.parent
ENV_VARS = [env for env, _ in ARTEFACTS.values()]
START_TIMEOUT = 180.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    port = free_port()
    full_env = os.environ | env | {"HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"app.py exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"app.py did not answer within {START_TIMEOUT:.0f} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
