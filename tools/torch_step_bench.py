"""Times one training step (forward, backward, Adam update) per backbone in PyTorch at the
sizes of daa's registry entries (mtreclib.configure) and batch 2048, on CPU (2 threads by default) or CUDA. Prints one JSON
line per model: {"model": ..., "ms": ...}.

With --serve it reads `MODEL STEPS` lines from standard input instead and answers each
with one such line, keeping every model it built (warm) for the next request: `cargo bench
--bench step` alternates rounds of daa and PyTorch this way, so that both see the same
machine conditions.

    python tools/torch_step_bench.py [--threads 2] [--device cpu|cuda] [--steps 5] [MODEL ...]
    python tools/torch_step_bench.py --serve [--threads 2] [--device cpu|cuda]
"""
import sys
import argparse
import json
import time

import torch

import mtreclib
from mtreclib import D, MODELS


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("models", nargs="*", default=list(MODELS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    mtreclib.configure("mmoe")
    device = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    b = args.batch
    offsets = torch.tensor([0] + list(torch.tensor(D["cards"]).cumsum(0)[:-1]))
    cat = (torch.stack([torch.randint(0, c, (b,), generator=g) for c in D["cards"]], 1) + offsets).to(device)
    num = torch.rand(b, D["numerical"], generator=g).to(device)
    click = (torch.rand(b, generator=g) < 0.05).float()
    labels = torch.stack([click, click * (torch.rand(b, generator=g) < 0.1).float()], 1).to(device)
    steppers = {}

    def stepper(name):
        if name not in steppers:
            mtreclib.configure(name)
            torch.manual_seed(0)
            model = MODELS[name]().to(device).train()
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-6)

            def step():
                optimizer.zero_grad()
                out = model(cat, num)
                loss = sum(torch.nn.functional.binary_cross_entropy(p, labels[:, t]) for t, p in enumerate(out))
                loss.backward()
                optimizer.step()

            step()
            steppers[name] = step
        return steppers[name]

    def timed(name, steps):
        step = stepper(name)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        print(json.dumps({"model": name, "ms": 1000 * (time.perf_counter() - start) / steps}), flush=True)

    if args.serve:
        for line in sys.stdin:
            name, steps = line.split()
            timed(name, int(steps))
    else:
        for name in args.models:
            timed(name, args.steps)


if __name__ == "__main__":
    main()
