"""What a training step of GE2E's top LSTM layer costs from cached lower-layer outputs (issue #26): the top layer's
forward and backward over 64 windows, and a whole MoCo step (query forward and backward, the momentum encoder
over the key, pitched and stretched copies) at the configs' batch sizes, interleaved with the reference workload
(`voicerec.tools.bench`).

    OMP_NUM_THREADS=1 python -m training.bench_top_layer --ge2e runs/ge2e

Prints the median seconds and their ratio to the reference pass timed in the same run (the machine is shared).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from training.finetune_ge2e import Encoder, split_lstm
from voicerec import GE2EModel
from voicerec.tools.bench import Reference, load_average


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ge2e", default="runs/ge2e")
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = GE2EModel.from_pretrained(args.ge2e)
    encoder = Encoder(model.linear, split_lstm(model.lstm)[1].train())
    key_encoder = copy.deepcopy(encoder).requires_grad_(False)
    frames, hidden = model.config.window_frames, model.config.hidden_size

    def top_only(batch: int) -> None:
        _, (h, _) = encoder.top(torch.randn(batch, frames, hidden))
        h[-1].sum().backward()

    def moco_step(batch: int) -> None:
        query = encoder(torch.randn(batch, frames, hidden))
        with torch.no_grad():
            keys = key_encoder(torch.randn(3 * batch, frames, hidden))
        (query @ keys.T).logsumexp(-1).mean().backward()

    cases = [(f"top layer forward+backward, {b} windows", top_only, b) for b in args.batches[:1]]
    cases += [(f"MoCo step, batch {b} (+{3 * b} key windows forward)", moco_step, b) for b in args.batches]
    reference, times = Reference(), {name: [] for name, _, _ in cases}
    for _ in range(args.repeats + 1):  # the first round warms up
        for name, fn, batch in cases:
            reference.run()
            start = time.perf_counter()
            fn(batch)
            times[name].append(time.perf_counter() - start)
            encoder.zero_grad()
    print(f"load average {load_average()}; {args.threads} thread(s); reference pass {reference.seconds:.3f} s")
    for name, values in times.items():
        seconds = statistics.median(values[1:])
        print(f"{name}: {seconds:.3f} s = {reference.ratio(seconds):.2f}x the reference")


if __name__ == "__main__":
    main()
