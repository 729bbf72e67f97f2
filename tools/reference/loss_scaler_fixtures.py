"""Dynamic loss scaling as torch.amp.GradScaler does it, for optim/loss_scaler.h (tests/test_loss_scaler.cpp).

Run (any Python with torch and safetensors; a fixture tool, never a build or test dependency):

    python tools/reference/loss_scaler_fixtures.py     # writes tests/fixtures/loss_scaler.safetensors

The scenario: one float32 parameter w [4] (start `w0`), SGD with lr 0.1, a GradScaler(init_scale=1024,
growth_factor=2, backoff_factor=0.5, growth_interval=3) on the CPU, 12 steps of the loss sum(w * x_t) * s_t
whose gradient is x_t * scale; x_t is `inputs[t]`, and steps 4 and 9 put inf and NaN into the loss's
gradient (overflow), which the scaler must skip. Per step t it records:
    scale [12]      the scale used for step t's backward (before update())
    params [12, 4]  w after step t (unchanged on a skipped step)
    skipped [12]    1 where the step was skipped
"""
import os

import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "loss_scaler.safetensors")
STEPS = 12


def main():
    generator = torch.Generator().manual_seed(0)
    w0 = torch.randn(4, generator=generator)
    inputs = torch.randn(STEPS, 4, generator=generator)
    inputs[4, 1] = float("inf")
    inputs[9, 2] = float("nan")
    w = torch.nn.Parameter(w0.clone())
    optimizer = torch.optim.SGD([w], lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_factor=2.0, backoff_factor=0.5,
                                  growth_interval=3)
    scales, params, skipped = [], [], []
    for t in range(STEPS):
        optimizer.zero_grad(set_to_none=True)
        loss = (w * inputs[t]).sum()
        scales.append(scaler.get_scale())
        scaler.scale(loss).backward()
        before = w.detach().clone()
        scaler.step(optimizer)
        scaler.update()
        params.append(w.detach().clone())
        skipped.append(float(torch.equal(before, w.detach())))
    save_file({"w0": w0, "inputs": inputs, "scale": torch.tensor(scales, dtype=torch.float64),
               "params": torch.stack(params), "skipped": torch.tensor(skipped, dtype=torch.float64)}, OUT)
    print(f"wrote {OUT}; skipped steps: {[t for t in range(STEPS) if skipped[t]]}, scales {scales}")


if __name__ == "__main__":
    main()
