"""Converts a PyTorch checkpoint (a state_dict saved with torch.save, e.g. the reference
code's chkpt_src/*.pt) into safetensors with the names unchanged, which daa loads directly.

    python tools/torch_to_safetensors.py model.pt model.safetensors
"""
import sys

import torch
from safetensors.torch import save_file


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    state = torch.load(sys.argv[1], map_location="cpu", weights_only=False)
    if not isinstance(state, dict):
        state = state.state_dict()
    save_file({k: v.contiguous() for k, v in state.items() if isinstance(v, torch.Tensor)}, sys.argv[2])


if __name__ == "__main__":
    main()
