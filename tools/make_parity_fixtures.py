"""PyTorch parity fixtures for the seven backbones (run by hand, not by CI).

Builds each backbone in PyTorch exactly as MTReclib defines it (REFERENCE.md section 5)
with the structure of its registry entry (experts, gates, critics) at small widths
(`SMALL`, which tests/parity.rs applies the same way), random weights and random BatchNorm statistics; saves its state_dict
(tests/fixtures/parity/<model>.safetensors) and, in <model>.expected.safetensors, its
eval-mode probabilities on the shared sample rows and one training step's loss (the sum
of the tasks' BCE), every gradient, the updated BatchNorm statistics (dropout off) and the
parameters after one torch.optim.Adam step (lr 0.01, weight decay 0.001).

    python tools/make_parity_fixtures.py   # needs torch, safetensors
"""
import csv
import pathlib

import numpy as np
import torch
from safetensors.torch import save_file

import mtreclib
from mtreclib import D, MODELS

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "parity"
# Widths small enough for a committed fixture; tests/parity.rs narrows the registry entries
# the same way.
SMALL = {"embed": 8, "bottom": [16, 8], "tower": [8, 4], "dropout": 0.0}


def sample_rows():
    with open(ROOT / "tests" / "fixtures" / "aliexpress-sample" / "train.csv") as f:
        rows = list(csv.reader(f))[1:]
    offsets = np.concatenate([[0], np.cumsum(D["cards"])[:-1]])
    cat = torch.tensor([[int(v) for v in r[1:17]] for r in rows], dtype=torch.long) + torch.tensor(offsets)
    num = torch.tensor([[float(v) for v in r[17:80]] for r in rows], dtype=torch.float32)
    labels = torch.tensor([[float(v) for v in r[80:82]] for r in rows], dtype=torch.float32)
    return cat, num, labels


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    mtreclib.configure("mmoe", **SMALL)
    cat, num, labels = sample_rows()
    for index, (name, cls) in enumerate(MODELS.items()):
        mtreclib.configure(name, **SMALL)
        torch.manual_seed(100 + index)
        model = cls()
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.normal_(0.0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.data.uniform_(0.5, 1.5)
                module.bias.data.normal_(0.0, 0.1)
                module.num_batches_tracked.fill_(3)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, OUT / f"{name}.safetensors")
        expected = {}
        model.eval()
        with torch.no_grad():
            expected["eval.probabilities"] = torch.stack(model(cat, num), 1)
        model.train()
        probabilities = model(cat, num)
        loss = sum(torch.nn.functional.binary_cross_entropy(p, labels[:, t]) for t, p in enumerate(probabilities))
        loss.backward()
        expected["train.loss"] = loss.detach().reshape(())
        for key, param in model.named_parameters():
            # An unused parameter (PLE's last shared gate) has no gradient: zeros.
            expected[f"grad.{key}"] = (param.grad if param.grad is not None else torch.zeros_like(param)).contiguous()
        for key, buffer in model.named_buffers():
            expected[f"after.{key}"] = buffer.contiguous()
        torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=0.001).step()
        for key, param in model.named_parameters():
            expected[f"adam.{key}"] = param.detach().contiguous()
        save_file(expected, OUT / f"{name}.expected.safetensors")
        print(f"{name}: loss {loss.item():.6f}, {sum(p.numel() for p in model.parameters())} parameters")


if __name__ == "__main__":
    main()
