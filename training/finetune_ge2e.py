"""Fine-tune the GE2E speech encoder into the singing encoders (`timbre`, `expression`) with MoCo + InfoNCE.

Why start from GE2E: it learned voices from thousands of speakers, and the project has a few hours of singing by
23 people; trained from scratch, the encoders matched MFCC statistics on unseen singers (issue #15).

What is trained: the projection from the LSTM's last hidden state to the embedding; the three LSTM layers stay as
GE2E learned them, and a distillation term (1 - cosine to frozen GE2E's embedding) keeps the projection near
GE2E's. The contrastive policy is the seed's (training/moco.py): a copy pitch-shifted by resampling (formants
move: another voice) is a negative; a time-stretched copy is a positive for `timbre` and a negative for
`expression`; another moment of the same recording is a positive; keys of earlier batches fill the queue.

Why only the projection: with the LSTM frozen, each window's hidden state is computed once, so training costs
seconds and cross-validating recipes over every dev singer fits this 2-core CPU; updating the top LSTM layer needs
a forward and backward LSTM pass per step, about 10 s per batch of 64 windows here.

    python -m training.finetune_ge2e --config training/configs/ge2e_timbre.yaml training/configs/ge2e_expression.yaml
"""

from __future__ import annotations

import argparse
import copy
import json
import pickle
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import nn
from tqdm.auto import tqdm

from training.augment import pitch_shift, semitone_ratio
from training.data import join_songs, load_joined
from training.moco import POLICIES, KeyQueue, contrastive_logits, info_nce, momentum_update
from training.wccn import fit_wccn
from voicerec import GE2EFeatureExtractor, GE2EModel
from voicerec.audio.input import AudioInputError
from voicerec.audio.note_adjust import NOTE_SHIFT, reference_shift
from voicerec.audio.pitch import HOP_SECONDS, PitchTrack, track_pitch
from voicerec.models.modeling_ge2e import window_starts
from voicerec.tools.bench import REFERENCE, Reference, load_average


@dataclass
class ClipStates:
    """The frozen LSTM's window states of one recording and of its transformed copies.

    `plain` holds the windows the model reads at inference (`starts`); the copies are read every window length,
    and a plain window's counterpart in a copy is the copy's window nearest to the same moment. `note` holds the
    windows read at inference on the note-adjusted copy (the app's `timbre_note`), which only the WCCN uses."""

    singer: str
    starts: np.ndarray  # first frame of each plain window
    plain: np.ndarray  # (windows, hidden)
    pitched: dict[float, np.ndarray]  # semitones -> states of the copy resampled by that many semitones
    stretched: dict[float, np.ndarray]  # rate -> states of the copy played `rate` times faster
    note: np.ndarray | None = None  # (windows, hidden) of the note-adjusted copy, as the app reads it


def _same_level(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """`y` at `x`'s RMS: a transform must not become a loudness cue (GE2E reads mel power, not log-mel)."""
    return (y * np.sqrt(np.mean(x**2) / max(float(np.mean(y**2)), 1e-12))).astype(np.float32)


def stretch_frames(mel: np.ndarray, rate: float) -> np.ndarray:
    """The spectrogram of the recording played `rate` times faster, pitch kept: its frames resampled in time
    (what a phase vocoder does to the magnitudes), at a fraction of the phase vocoder's cost."""
    times = np.arange(0, len(mel) - 1, rate)
    low = np.floor(times).astype(int)
    frac = (times - low)[:, None].astype(np.float32)
    return mel[low] * (1 - frac) + mel[np.minimum(low + 1, len(mel) - 1)] * frac


Encode = Callable[[torch.Tensor], torch.Tensor]
"""(windows, frames, n_mels) mel power -> what training reads of each window: the LSTM's last hidden state
(`GE2EModel.window_states`), or the lower layers' outputs for training the top layer (`LowerLayers`)."""


def split_lstm(lstm: nn.LSTM) -> tuple[nn.LSTM, nn.LSTM]:
    """A stacked LSTM as copies of its lower layers and of its top layer: top(lower(x)) computes lstm(x)."""
    top_index = lstm.num_layers - 1
    lower = nn.LSTM(lstm.input_size, lstm.hidden_size, top_index, batch_first=True)
    top = nn.LSTM(lstm.hidden_size, lstm.hidden_size, 1, batch_first=True)
    with torch.no_grad():
        for name, p in lstm.named_parameters():
            base, layer = name.rsplit("_l", 1)
            module, target = (top, f"{base}_l0") if int(layer) == top_index else (lower, name)
            getattr(module, target).copy_(p)
    return lower.eval(), top.eval()


def set_top_layer(lstm: nn.LSTM, top: nn.LSTM) -> None:
    """Write a trained top layer back into the stacked LSTM."""
    with torch.no_grad():
        for name, p in top.named_parameters():
            getattr(lstm, name.replace("_l0", f"_l{lstm.num_layers - 1}")).copy_(p)


class LowerLayers:
    """`Encode` by GE2E's frozen lower LSTM layers: every frame's output (float16, half the memory; 160 x 256 per
    window), cached once so that a training step of the top layer costs one layer's pass."""

    def __init__(self, model: GE2EModel) -> None:
        self.lower, _ = split_lstm(model.lstm)

    def __call__(self, windows: torch.Tensor) -> torch.Tensor:
        return self.lower(windows)[0].half()


@torch.no_grad()
def top_states(top: nn.LSTM, lower: np.ndarray, chunk: int = 256) -> np.ndarray:
    """The top layer's last hidden state over cached lower-layer outputs: (windows, hidden) float32."""
    out = [top(torch.from_numpy(lower[i : i + chunk]).float())[1][0][-1] for i in range(0, len(lower), chunk)]
    return torch.cat(out).numpy() if out else np.zeros((0, top.hidden_size), np.float32)


def map_states(clip: ClipStates, fn: Callable[[np.ndarray], np.ndarray]) -> ClipStates:
    """The clip's states of every view and copy passed through `fn` (e.g. `top_states` of a lower-layer cache)."""
    pitched, stretched = ({k: fn(v) for k, v in copies.items()} for copies in (clip.pitched, clip.stretched))
    note = None if clip.note is None else fn(clip.note)
    return ClipStates(clip.singer, clip.starts, fn(clip.plain), pitched, stretched, note)


@torch.no_grad()
def states_at(model: GE2EModel, mel: np.ndarray, starts: list[int], encode: Encode, chunk: int = 128) -> np.ndarray:
    size = model.config.window_frames
    padded = np.pad(mel, ((0, max(0, starts[-1] + size - len(mel))), (0, 0)))
    windows = torch.from_numpy(np.stack([padded[s : s + size] for s in starts]))
    return torch.cat([encode(windows[i : i + chunk]) for i in range(0, len(windows), chunk)]).numpy()


def clip_states(
    model: GE2EModel,
    extractor: GE2EFeatureExtractor,
    audio: np.ndarray,
    singer: str,
    views: dict,
    f0: np.ndarray | None = None,
    encode: Encode | None = None,
) -> ClipStates:
    """`f0`: the recording's pitch every 10 ms if already tracked (`track_pitch`), for its note-adjusted copy;
    `encode`: what to keep of each window (default: the LSTM's last hidden state)."""
    encode = model.window_states if encode is None else encode
    x = extractor.raise_volume(audio)
    size, coverage = model.config.window_frames, model.config.min_coverage
    tail = np.zeros(size * extractor.hop_length, np.float32)  # silence after the end, as the extractor adds
    mel = extractor.mel_power(np.concatenate([x, tail]))
    starts = window_starts(1 + x.size // extractor.hop_length, size, model.window_step, coverage)

    def copy_states(copy_mel: np.ndarray) -> np.ndarray:
        return states_at(model, copy_mel, window_starts(len(copy_mel) - size, size, size, coverage), encode)

    pitched = {}
    for s in (views["pitch_semitones"], -views["pitch_semitones"]):
        y = _same_level(pitch_shift(x, s), x)
        pitched[s] = copy_states(
            extractor.mel_power(np.concatenate([y, np.zeros(size * extractor.hop_length, np.float32)]))
        )
    stretched = {r: copy_states(stretch_frames(mel, r)) for r in views["stretch_rates"]}
    f0 = track_pitch(audio, extractor.sampling_rate).f0 if f0 is None else f0
    note = inference_states(model, extractor, audio, f0, encode)
    return ClipStates(singer, np.array(starts), states_at(model, mel, starts, encode), pitched, stretched, note)


def inference_states(
    trunk: GE2EModel,
    extractor: GE2EFeatureExtractor,
    wave: np.ndarray,
    f0: np.ndarray | None = None,
    encode: Encode | None = None,
    rule: str = NOTE_SHIFT,
) -> np.ndarray:
    """LSTM states of the windows the model reads on `wave` at inference; on its note-adjusted copy if the wave's
    f0 (10 ms frames) is given, shifted as `Embedder.embed` shifts it (by `rule`, `note_adjust.NOTE_SHIFT`): the
    same extractor call and windows."""
    semitones = 0.0
    if f0 is not None:
        f0 = f0[: 1 + wave.size // extractor.hop_length]
        semitones = reference_shift(PitchTrack(np.arange(f0.size) * HOP_SECONDS, f0, np.ones(f0.size)), rule)
    inputs = extractor([wave], sampling_rate=extractor.sampling_rate, return_tensors="pt", semitones=[semitones],
                       f0=[f0])  # fmt: skip
    with torch.no_grad():
        windows, _ = trunk.windows_of(inputs["input_features"], inputs["attention_mask"])
        return torch.cat([(encode or trunk.window_states)(w) for w in windows.split(128)]).numpy()


def load_states(
    model: GE2EModel,
    extractor: GE2EFeatureExtractor,
    data: dict,
    views: dict,
    encode: Encode | None = None,
) -> list[ClipStates]:
    """Every singing clip of the manifests of `data["sources"]` (but `exclude_singers`), decoded and normalised as
    the app does (`voicerec.load_audio`); a source named in `join_seconds` has each song's clips joined into
    recordings of at least that long first (`training.data.join_songs`, as the cross-validation does)."""
    out, exclude, join = [], set(data.get("exclude_singers") or []), data.get("join_seconds") or {}
    for source in data["sources"]:
        manifest = pd.read_csv(Path(source) / "manifest.csv")
        rows = manifest[(manifest["kind"] == "singing") & ~manifest["singer"].isin(exclude)].copy()
        rows["path"] = [str(Path(source) / p) for p in rows["path"]]
        if Path(source).name in join:
            rows = join_songs(rows, float(join[Path(source).name]))
        for row in tqdm(rows.itertuples(), total=len(rows), desc=f"states {Path(source).name}", leave=False):
            try:
                audio = load_joined(row.path).samples
            except AudioInputError:
                continue
            out.append(clip_states(model, extractor, audio, row.singer, views, encode=encode))
    return out


class StateSampler:
    """Batches of window states: a query window, a positive key (another window of the recording) and the query's
    moment in a pitch-shifted and a time-stretched copy. Singers are drawn uniformly (PJS's 98 songs are one
    voice), then one of their windows. Vectorised: the states of every clip and copy are stacked once.

    With `inputs` (the same clips' lower-layer outputs, `LowerLayers`), the batch holds those for every part, and
    the frozen network's states of the query windows as "target" (what the distillation term keeps close)."""

    def __init__(self, clips: list[ClipStates], window: int, seed: int, inputs: list[ClipStates] | None = None):
        self.window = window
        self.rng = np.random.default_rng(seed)
        self.clip = np.repeat(np.arange(len(clips)), [len(c.plain) for c in clips])
        self.start = np.concatenate([c.starts for c in clips]).astype(float)
        self.offset, self.count = self._layout([c.plain for c in clips])
        singers = np.array([c.singer for c in clips])[self.clip]
        self.by_singer = [np.flatnonzero(singers == s) for s in sorted(set(singers))]
        self.target = np.concatenate([c.plain for c in clips])
        source = clips if inputs is None else inputs
        self.plain = self.target if inputs is None else np.concatenate([c.plain for c in inputs])
        self.copies = {}
        for kind in ("pitched", "stretched"):
            for factor in getattr(clips[0], kind):
                states = [getattr(c, kind)[factor] for c in source]
                ratio = semitone_ratio(factor) if kind == "pitched" else factor
                self.copies.setdefault(kind, []).append((ratio, np.concatenate(states), *self._layout(states)))

    @staticmethod
    def _layout(states: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        count = np.array([len(s) for s in states])
        return np.concatenate([[0], np.cumsum(count)[:-1]]), count

    def _copy(self, kind: str, query: np.ndarray) -> np.ndarray:
        """The states of the query windows' moments in a randomly chosen copy of `kind`, one copy per item."""
        choice = self.rng.integers(len(self.copies[kind]), size=len(query))
        out = np.empty((len(query), *self.plain.shape[1:]), self.plain.dtype)
        for k, (ratio, states, offset, count) in enumerate(self.copies[kind]):
            rows = query[choice == k]
            clip = self.clip[rows]
            index = np.clip(np.rint(self.start[rows] / ratio / self.window), 0, count[clip] - 1).astype(int)
            out[choice == k] = states[offset[clip] + index]
        return out

    def batch(self, size: int) -> dict[str, torch.Tensor]:
        singer = self.rng.integers(len(self.by_singer), size=size)
        query = np.array([self.by_singer[s][self.rng.integers(len(self.by_singer[s]))] for s in singer])
        clip = self.clip[query]
        key = self.offset[clip] + (self.rng.random(size) * self.count[clip]).astype(int)
        parts = {"query": self.plain[query], "key": self.plain[key], "pitched": self._copy("pitched", query),
                 "stretched": self._copy("stretched", query), "target": self.target[query]}  # fmt: skip
        return {name: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for name, v in parts.items()}


class Encoder(nn.Module):
    """What training updates: the projection, and with `top` GE2E's top LSTM layer, which then reads the frozen
    lower layers' cached outputs; `forward` gives unit window embeddings exactly as inference computes them."""

    def __init__(self, linear: nn.Linear, top: nn.LSTM | None = None) -> None:
        super().__init__()
        self.linear, self.top = linear, top

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states = x if self.top is None else self.top(x)[1][0][-1]
        return torch.nn.functional.normalize(torch.relu(self.linear(states)), dim=-1)


def train(
    config: dict,
    clips: list[ClipStates] | None = None,
    inputs: list[ClipStates] | None = None,
    trunk: GE2EModel | None = None,
) -> tuple[GE2EModel, list[dict]]:
    """Fine-tune the projection of `config["init"]` (a GE2E folder) with the variant's policy.

    `train.top_layer`: absent/false, the LSTM stays GE2E's; "each", every encoder also trains GE2E's top LSTM
    layer, from `inputs` (the clips' lower-layer outputs, `LowerLayers`); "shared", the timbre encoder trains it
    and the expression encoder trains its projection on `trunk` (that timbre encoder, whose LSTM it keeps), so the
    app runs one LSTM for both. `clips`: the states the projection reads (of `trunk` when given)."""
    tcfg = config["train"]
    if tcfg.get("threads"):
        torch.set_num_threads(tcfg["threads"])
    accelerator = Accelerator()
    set_seed(config.get("seed", 0))
    model = GE2EModel.from_pretrained(config["init"]).eval()
    model.config.variant = config["variant"]
    model.config.windows_per_second = config.get("windows_per_second", model.config.windows_per_second)
    mode = tcfg.get("top_layer") or "none"
    if mode not in ("none", "each", "shared"):
        raise ValueError(f"train.top_layer must be false, 'each' or 'shared', got {mode!r}")
    top_layer = mode == "each" or (mode == "shared" and config["variant"] == "timbre")
    if mode == "shared" and not top_layer:
        if trunk is None:
            raise ValueError("train.top_layer 'shared': the expression encoder needs the timbre encoder's trunk")
        model.lstm.load_state_dict(trunk.lstm.state_dict())
    if clips is None or (top_layer and inputs is None):
        extractor = GE2EFeatureExtractor.from_pretrained(config["init"])
        encode = LowerLayers(model) if mode != "none" else None
        inputs = load_states(model, extractor, config["data"], config["views"], encode)
        state = partial(top_states, split_lstm(model.lstm)[1])
        clips = [map_states(c, state) for c in inputs] if mode != "none" else inputs
    encoder = Encoder(model.linear, split_lstm(model.lstm)[1].train() if top_layer else None).requires_grad_(True)
    teacher = copy.deepcopy(model.linear).requires_grad_(False)
    key_encoder = copy.deepcopy(encoder).requires_grad_(False)
    queue = KeyQueue(tcfg["queue_size"], model.config.embedding_size)
    policy = POLICIES[config["variant"]]
    groups = [{"params": encoder.linear.parameters()}]
    if top_layer:
        groups.append({"params": encoder.top.parameters(), "lr": tcfg.get("top_lr", tcfg["lr"])})
    optimizer = torch.optim.AdamW(groups, lr=tcfg["lr"], weight_decay=tcfg["weight_decay"])
    encoder, optimizer = accelerator.prepare(encoder, optimizer)
    seed = config.get("seed", 0) + accelerator.process_index
    sampler = StateSampler(clips, model.config.window_frames, seed, inputs if top_layer else None)
    log, start = [], time.monotonic()
    for step in tqdm(range(tcfg["steps"]), disable=not accelerator.is_local_main_process, desc=config["variant"]):
        batch = {k: v.to(accelerator.device) for k, v in sampler.batch(tcfg["batch_size"]).items()}
        query = encoder(batch["query"])
        with torch.no_grad():
            names = list(policy)
            keys = key_encoder(torch.cat([batch[n] for n in names]))
            copies = dict(zip(names, keys.chunk(len(names)), strict=True))
            target = torch.nn.functional.normalize(torch.relu(teacher(batch["target"])), dim=-1)
        logits, positive = contrastive_logits(query, copies, policy, queue.keys.clone())
        contrastive = info_nce(logits, positive, tcfg["temperature"])
        distill = (1 - (query * target).sum(-1)).mean()
        loss = contrastive + tcfg["distill"] * distill
        accelerator.backward(loss)
        optimizer.step()
        optimizer.zero_grad()
        momentum_update(accelerator.unwrap_model(encoder), key_encoder, tcfg["momentum"])
        queue.enqueue(accelerator.gather(copies["key"]))
        log.append({"step": step, "loss": loss.item(), "contrastive": contrastive.item(), "distill": distill.item()})
    if top_layer:
        set_top_layer(model.lstm, accelerator.unwrap_model(encoder).top)
    model = model.cpu().eval()
    if tcfg.get("wccn") is not None:
        fit_whitening(model, inputs if top_layer else clips, tcfg["wccn"], lower=top_layer)
    log.append({"minutes": (time.monotonic() - start) / 60, "clips": len(clips)})
    return model, log


@torch.no_grad()
def fit_whitening(model: GE2EModel, clips: list[ClipStates], shrinkage: float, lower: bool = False) -> None:
    """Fit the model's WCCN on the clip embeddings of `clips`, as sung and note-adjusted (where computed), both
    views of a singer one class: the app compares either view of a query with the same view of each song.
    `lower`: the clips hold lower-layer outputs, read through the model's top layer."""
    top = split_lstm(model.lstm)[1] if lower else None
    views = [(c.singer, s if top is None else top_states(top, s)) for c in clips for s in (c.plain, c.note)
             if s is not None]  # fmt: skip
    counts = torch.tensor([len(s) for _, s in views])
    windows = model.project(torch.from_numpy(np.concatenate([s for _, s in views])))
    mean, matrix = fit_wccn(model.mean_windows(windows, counts).numpy(), np.array([g for g, _ in views]), shrinkage)
    model.whiten_mean.copy_(torch.from_numpy(mean))
    model.whiten_matrix.copy_(torch.from_numpy(matrix))


def load_config(path: str | Path) -> dict:
    return yaml.safe_load(Path(path).read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", nargs="+", required=True, help="one or more configs with the same data")
    parser.add_argument("--states-cache", type=Path, help="keep the window states here and reuse them next time")
    args = parser.parse_args(argv)
    configs = [load_config(path) for path in args.config]
    first = configs[0]
    if any((c["data"], c["views"], c["init"]) != (first["data"], first["views"], first["init"]) for c in configs):
        raise SystemExit("The configs must share data, views and init: their window states are computed once.")
    model = GE2EModel.from_pretrained(first["init"]).eval()
    model.config.windows_per_second = first.get("windows_per_second", model.config.windows_per_second)
    extractor = GE2EFeatureExtractor.from_pretrained(first["init"])
    reference = Reference()  # timed between the stages, so each stage's time is also given as a ratio to it
    reference.run()
    start = time.monotonic()
    top_layer = any(c["train"].get("top_layer") for c in configs)
    if args.states_cache and args.states_cache.exists():
        inputs = pickle.loads(args.states_cache.read_bytes())
    else:
        inputs = load_states(model, extractor, first["data"], first["views"], LowerLayers(model) if top_layer else None)
        if args.states_cache:
            args.states_cache.parent.mkdir(parents=True, exist_ok=True)
            args.states_cache.write_bytes(pickle.dumps(inputs, protocol=5))
    timings = {"states": time.monotonic() - start}
    reference.run()
    print(f"window states of {len(inputs)} clips in {timings['states'] / 60:.1f} min")
    frozen = [map_states(c, partial(top_states, split_lstm(model.lstm)[1])) for c in inputs] if top_layer else inputs
    from training.export_ge2e import export_encoder

    command = shlex.join(["python", "-m", "training.finetune_ge2e", *(argv if argv is not None else sys.argv[1:])])
    trained_by_variant: dict[str, GE2EModel] = {}
    for config in configs:
        start = time.monotonic()
        if config["train"].get("top_layer") == "shared" and config["variant"] != "timbre":
            if "timbre" not in trained_by_variant:
                raise SystemExit("train.top_layer 'shared': give the timbre config first, in the same run.")
            trunk = trained_by_variant["timbre"]
            clips = [map_states(c, partial(top_states, split_lstm(trunk.lstm)[1])) for c in inputs]
            trained, log = train(config, clips, trunk=trunk)
        else:
            trained, log = train(config, frozen, inputs if top_layer else None)
        timings[config["variant"]] = time.monotonic() - start
        reference.run()
        trained_by_variant[config["variant"]] = trained
        # windows read at inference: fewer than in training (every other one) is cheaper and, by the
        # cross-validation, as good
        rate = config["export"].get("windows_per_second", trained.config.windows_per_second)
        trained.config.windows_per_second = rate
        out = export_encoder(trained, config["export"]["out_dir"], config, log, command)
        print(json.dumps(log[-1]), "->", out)
    timings["total"] = sum(timings.values())
    for stage, seconds in timings.items():
        print(f"{stage}: {seconds:.1f} s = {reference.ratio(seconds):.0f}x reference")
    runs = len(reference.times)
    print(f"reference: {REFERENCE}, {reference.seconds:.4f} s (median of {runs}); load {load_average()}")


if __name__ == "__main__":
    main()
