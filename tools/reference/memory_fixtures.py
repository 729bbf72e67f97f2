"""The memory timm's EfficientNets hold for backward, for tests/test_memory_held.cpp.

Run (any Python with torch, timm and safetensors; a fixture tool, never a build or test dependency):

    python tools/reference/memory_fixtures.py     # writes tests/fixtures/memory_held.safetensors

For each model (efficientnet_b0, tf_efficientnet_b0, efficientnet_b4; 18 classes, dropout 0.7 as in the
recipe, drop path 0.2) in training mode, on a batch of 2 images of 64x64 on the CPU, it records the bytes
that forward and the cross-entropy allocate and still hold when they return: the activations saved for
backward (with the 16-bit copies of the weights under autocast). They are counted from the profiler's record
of every allocation and free between the two points (PyTorch keeps no allocator statistics on the CPU); the
bytes are those asked for, before any allocator rounds them.

    <model>.fp32     float32, NCHW
    <model>.bf16_cl  torch.autocast("cpu", bfloat16), channels-last model and input

Each is an int64 tensor of shape [1].
"""
import gc
import os

import timm
import torch
from safetensors.torch import save_file
from torch.profiler import ProfilerActivity, profile

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "memory_held.safetensors")
MODELS = ["efficientnet_b0", "tf_efficientnet_b0", "efficientnet_b4"]


def held_for_backward(name, bf16_channels_last):
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=18, drop_rate=0.7, drop_path_rate=0.2).train()
    images, targets = torch.randn(2, 3, 64, 64), torch.ones(2, dtype=torch.long)
    if bf16_channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    gc.collect()  # nothing made before may be freed inside the profiled region
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16_channels_last):
            loss = torch.nn.functional.cross_entropy(model(images), targets)
    held = sum(e.nbytes() for e in prof.profiler.kineto_results.events() if e.name() == "[memory]")
    del loss
    return held


def main():
    fixtures = {}
    for name in MODELS:
        for key, half in (("fp32", False), ("bf16_cl", True)):
            fixtures[f"{name}.{key}"] = torch.tensor([held_for_backward(name, half)], dtype=torch.int64)
            print(f"{name}.{key}: {fixtures[f'{name}.{key}'].item()} bytes")
    save_file(fixtures, OUT)
    print(f"wrote {OUT} (torch {torch.__version__}, timm {timm.__version__})")


if __name__ == "__main__":
    main()
