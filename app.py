"""voicerec web app: sing about ten seconds, get the songs that suit your voice, your range and the key to sing in.

`python app.py [--port 7860] [--timbre ID] [--expression ID] [--mood ID] [--catalog ID]`. Models and catalog come
from the flags, else the VOICEREC_* environment variables, else the folders shipped in `hub/` (see
voicerec/defaults.py), so the app runs offline on a fresh clone and by Hub id on a Space.
The app is a shell: `voicerec.recommender.Recommender` decides, `voicerec.app.page` builds the page that shows it.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from voicerec.app.page import LIVE_SINGERS, MAX_FILE_SIZE, PAGE_CSS, build_demo
from voicerec.defaults import ARTEFACTS
from voicerec.recommender import Recommender

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("timbre", "expression", "mood", "catalog"):
        env, repo = ARTEFACTS[name]
        what = "catalog dataset" if name == "catalog" else f"{name} model"
        parser.add_argument(f"--{name}", help=f"{what}: folder or Hub id (default: ${env}, then hub/{repo})")
    parser.add_argument("--host", help="address to listen on (default: $GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: $GRADIO_SERVER_PORT or 7860)")
    parser.add_argument("--concurrency", type=int, default=2, help="recordings analysed at once (default 2)")
    parser.add_argument("--threads", type=int, help="torch threads per recording (default: CPUs / concurrency)")
    parser.add_argument("--live-singers", type=int, default=LIVE_SINGERS,
                        help=f"singers streaming live at once, each holding a worker (default {LIVE_SINGERS})")
    parser.add_argument("--queue-size", type=int, default=32, help="waiting requests before new ones are refused")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = parse_args(argv)
    # more threads than cores, across the recordings analysed at once, make torch's workers wait on each other
    torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 1) // max(1, args.concurrency)))
    try:
        recommender = Recommender.from_pretrained(
            timbre=args.timbre, expression=args.expression, mood=args.mood, catalog=args.catalog
        )
    except Exception as exc:  # at start-up only: one line saying what to fix instead of a long traceback
        raise SystemExit(
            f"voicerec: could not load the encoders or the catalog: {exc}\nPoint --timbre, --expression, --mood and "
            "--catalog (or VOICEREC_TIMBRE_MODEL, ..., VOICEREC_CATALOG) at model folders or Hub ids."
        ) from exc
    recommender.warm_up()
    demo = build_demo(recommender, EXAMPLES_DIR, live_singers=args.live_singers)
    demo.queue(default_concurrency_limit=args.concurrency, max_size=args.queue_size)
    demo.launch(server_name=args.host, server_port=args.port, max_file_size=MAX_FILE_SIZE, css=PAGE_CSS)


if __name__ == "__main__":
    main()
