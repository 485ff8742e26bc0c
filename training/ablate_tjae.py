"""TJAE ablation: time jumps on/off, causal vs non-causal convolutions, and the latent guard, on equal budgets.

Every variant trains from the same config, seed, data and number of steps (only `model` fields differ), then is
measured on the held-out clips: reconstruction MSE on per-clip-normalised log-mel (predicting the clip mean
scores 1.0) with the true latent, with the latent zeroed and with it shuffled in time, and same-song retrieval
of its mood embedding on the held-out gtsinger singers. The winner is the lowest held-out MSE among the
compared designs (all with jump dropout) whose latent matters (zeroed and shuffled both at least `--guard` times
worse than the true latent); a control without jump dropout shows what the guard does.

Results are written after each variant, so an interrupted run keeps what it measured (`--resume` skips those).

    python training/ablate_tjae.py --config training/configs/tjae.yaml --steps 400 --set train.batch_size=8 \
        --output runs/tjae/ablation.json
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.data import load_clips  # noqa: E402
from training.evaluate_tjae import GTSINGER, SR, embed, reconstruction_errors, same_song_retrieval  # noqa: E402
from training.train_tjae import is_heldout, load_config, load_data, train  # noqa: E402

# name -> TJAEConfig fields changed from the config's `model` section. The compared designs all train with jump
# dropout (the guard); the control drops it, to show what the guard does. Only compared designs can win.
COMPARED: dict[str, dict] = {
    "time jumps, causal": {"time_jumps": True, "causal": True, "jump_dropout": 0.5},
    "time jumps, non-causal": {"time_jumps": True, "causal": False, "jump_dropout": 0.5},
    "no time jumps, causal": {"time_jumps": False, "causal": True},
    "no time jumps, non-causal": {"time_jumps": False, "causal": False},
}
CONTROLS: dict[str, dict] = {
    "control: time jumps without jump dropout, causal": {"time_jumps": True, "causal": True, "jump_dropout": 0.0},
}
VARIANTS = COMPARED | CONTROLS


def latent_matters(result: dict, guard: float) -> bool:
    """Zeroed and shuffled latents both rebuild at least `guard` times worse than the true latent."""
    rec = result["reconstruction"]
    return min(rec["latent zeroed"], rec["latent shuffled in time"]) >= guard * rec["true latent"]


def choose_winner(results: dict[str, dict], guard: float) -> str | None:
    """Lowest held-out MSE among the compared designs whose reconstruction needs the latent."""
    passing = {name: r for name, r in results.items() if name in COMPARED and latent_matters(r, guard)}
    return min(passing, key=lambda n: passing[n]["reconstruction"]["true latent"]) if passing else None


def markdown_table(summary: dict) -> str:
    """The card's ablation table, rendered from the ablation JSON."""
    rows = []
    for name, r in summary["variants"].items():
        rec, ret = r["reconstruction"], r["same_song_retrieval"]
        base = rec["true latent"]
        mark = " **(winner)**" if name == summary["winner"] else ""
        rows.append(
            f"| {name}{mark} | {base:.3f} | {rec['latent zeroed']:.3f} ({rec['latent zeroed'] / base:.1f}×) "
            f"| {rec['latent shuffled in time']:.3f} ({rec['latent shuffled in time'] / base:.1f}×) "
            f"| {ret['top1']:.3f} | {ret['mAP']:.3f} | {r['train_seconds'] / 60:.1f} |"
        )
    return (
        "| variant | held-out MSE | latent zeroed | latent shuffled | same-song top-1 | same-song mAP | train min |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(rows)
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="training/configs/tjae.yaml")
    parser.add_argument("--steps", type=int, default=600, help="training steps per variant (equal budgets)")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--guard", type=float, default=2.0, help="how much worse a removed latent must be")
    parser.add_argument("--output", required=True, help="JSON results (+ a .md table next to it)")
    parser.add_argument("--resume", action="store_true", help="keep variants already in --output")
    parser.add_argument("--set", nargs="*", default=[], metavar="SECTION.KEY=VALUE", help="config overrides")
    args = parser.parse_args(argv)
    cfg = load_config(args.config, [*args.set, f"train.steps={args.steps}", "train.max_minutes=null"])
    train_clips, held = load_data(cfg["data"], seed=int(cfg.get("seed", 0)))
    heldout_cfg = cfg["data"].get("heldout") or {}
    songs = [c for c in load_clips(GTSINGER, sr=SR, kinds=("singing",)) if is_heldout(c, heldout_cfg)]
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(out.read_text())["variants"] if args.resume and out.exists() else {}

    def write() -> None:
        summary = {
            "config": args.config,
            "overrides": args.set,
            "steps": args.steps,
            "batch_size": cfg["train"]["batch_size"],
            "crop_seconds": cfg["train"]["crop_seconds"],
            "train_clips": len(train_clips),
            "heldout_clips": len(held),
            "retrieval_clips": len(songs),
            "guard": args.guard,
            "winner": choose_winner(results, args.guard),
            "variants": {name: results[name] for name in VARIANTS if name in results},
        }
        out.write_text(json.dumps(summary, indent=2))
        out.with_suffix(".md").write_text(markdown_table(summary) + "\n")
        print(markdown_table(summary), flush=True)

    for name in args.variants:
        if name in results:
            continue
        vcfg = copy.deepcopy(cfg)
        vcfg["model"].update(VARIANTS[name])
        print(f"== {name}: {args.steps} steps", flush=True)
        start = time.monotonic()
        model, log = train(vcfg, train_clips)
        seconds = time.monotonic() - start
        torch.set_num_threads(int(cfg.get("threads") or torch.get_num_threads()))
        results[name] = {
            "model": vcfg["model"],
            "train_seconds": seconds,
            "final_train_loss": log[-1]["loss"],
            "reconstruction": reconstruction_errors(model, held),
            "same_song_retrieval": same_song_retrieval(
                embed(model, songs), [c.singer for c in songs], [c.song for c in songs]
            ),
        }
        write()
    write()


if __name__ == "__main__":
    main()
