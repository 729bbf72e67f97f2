#!/usr/bin/env python3
"""Reference fixtures for effnet's layers and EfficientNet, computed by PyTorch + timm.

A tool, not a test dependency: it writes tests/fixtures/timm_*.safetensors, which are committed, and
tests/test_timm_parity.cpp compares effnet with them on every build. Run it again only when the
fixtures must change:

    python3 -m venv /tmp/refenv && /tmp/refenv/bin/pip install -r tools/reference/requirements.txt
    /tmp/refenv/bin/python tools/reference/model_fixtures.py

Each fixture holds, for one module in one mode (train: batch-norm batch statistics; eval: running ones):
    input, cotangent           the module's input and a random weight for the loss L = sum(output * cotangent)
    output                     the module's output (float32)
    grad.input                 dL/d input
    param.<name>, buffer.<name> the state before the forward (timm's state-dict names)
    grad.<name>                dL/d parameter
    after.<name>               buffers after the forward (running statistics in train mode)
metadata: "case" (the name tests/test_timm_parity.cpp builds the same module for) and "mode".

The EfficientNets carry no weights (the "_hashed_" fixtures): both sides fill every tensor from the same
formula (hash_weights below, fill_from_hash in the test), which keeps the files small. The reduced model
(timm's builder at width 0.25, depth 0.25) stores every parameter gradient; EfficientNet-B0 (5.3 M
parameters) stores, per parameter, the sum of squares of its gradient and 32 sampled gradient elements
(at grad_index.<name>).
"""
import math
import os
import sys
from functools import partial

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import save_file
from timm.layers import create_conv2d
from timm.models._efficientnet_blocks import DepthwiseSeparableConv, InvertedResidual, SqueezeExcite
from timm.models.efficientnet import _gen_efficientnet

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures")
torch.use_deterministic_algorithms(True)


def run(module, x, mode, seed):
    """Forward and backward of L = sum(module(x) * cotangent); returns the fixture's tensors."""
    module.train(mode == "train")
    before = {k: v.detach().clone() for k, v in module.state_dict().items()}
    x = x.clone().requires_grad_(True)
    y = module(x)
    g = torch.Generator().manual_seed(seed + 1)
    cotangent = torch.randn(y.shape, generator=g)
    (y * cotangent).sum().backward()
    params = dict(module.named_parameters())
    out = {"input": x.detach(), "cotangent": cotangent, "output": y.detach(), "grad.input": x.grad}
    for name, value in before.items():
        out[("param." if name in params else "buffer.") + name] = value
    for name, p in params.items():
        out["grad." + name] = p.grad
    for name, b in module.named_buffers():
        out["after." + name] = b.detach().clone()
    return out


def save(name, tensors, case, mode):
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    path = os.path.join(OUT, f"timm_{name}.safetensors")
    save_file(tensors, path, metadata={"case": case, "mode": mode})
    print(f"{path}: {os.path.getsize(path) / 1024:.0f} kB")


def layer_cases():
    """name -> (factory, input shape). tests/test_timm_parity.cpp builds the same modules by name."""
    return {
        "conv3x3_s2_symmetric": (lambda: create_conv2d(8, 16, 3, stride=2, padding=""), (2, 8, 13, 12)),
        "conv3x3_s2_same": (lambda: create_conv2d(8, 16, 3, stride=2, padding="same"), (2, 8, 13, 12)),
        "dw5x5_s2_same": (lambda: create_conv2d(16, 16, 5, stride=2, padding="same", groups=16), (2, 16, 10, 11)),
        "conv1x1_bias": (lambda: nn.Conv2d(24, 32, 1, bias=True), (2, 24, 5, 5)),
        "batch_norm": (lambda: nn.BatchNorm2d(24), (4, 24, 5, 5)),
        "batch_norm_tf_eps": (lambda: nn.BatchNorm2d(24, eps=1e-3), (4, 24, 5, 5)),
        "squeeze_excite": (lambda: SqueezeExcite(48, rd_ratio=0.25 / 6, act_layer=nn.SiLU), (2, 48, 5, 5)),
        "depthwise_separable": (
            lambda: DepthwiseSeparableConv(16, 16, 3, act_layer=nn.SiLU,
                                           se_layer=partial(SqueezeExcite, rd_ratio=0.25)),
            (2, 16, 9, 9)),
        "inverted_residual_s2": (
            lambda: InvertedResidual(16, 24, 5, stride=2, exp_ratio=6, act_layer=nn.SiLU,
                                     se_layer=partial(SqueezeExcite, rd_ratio=0.25 / 6)),
            (2, 16, 10, 10)),
        "inverted_residual_skip_same": (
            lambda: InvertedResidual(24, 24, 3, stride=1, exp_ratio=6, pad_type="same", act_layer=nn.SiLU,
                                     se_layer=partial(SqueezeExcite, rd_ratio=0.25 / 6)),
            (2, 24, 7, 7)),
        "linear": (lambda: nn.Linear(64, 18), (8, 64)),
    }


def randomize_buffers(module, seed):
    """Non-trivial running statistics, so that eval mode is a real test."""
    g = torch.Generator().manual_seed(seed)
    for name, b in module.named_buffers():
        if name.endswith("running_mean"):
            b.copy_(torch.rand(b.shape, generator=g) - 0.5)
        elif name.endswith("running_var"):
            b.copy_(torch.rand(b.shape, generator=g) + 0.5)
    for name, p in module.named_parameters():
        if p.dim() == 1 and name.endswith("weight"):
            with torch.no_grad():
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
        elif name.endswith("bias"):
            with torch.no_grad():
                p.copy_(torch.rand(p.shape, generator=g) - 0.5)


def reduced_efficientnet(tf):
    """timm's own builder at width 0.25, depth 0.25: every stage kept, one block each, 10 classes."""
    kwargs = dict(channel_multiplier=0.25, depth_multiplier=0.25, num_classes=10, pretrained=False)
    if tf:
        return _gen_efficientnet("tf_efficientnet_b0", bn_eps=1e-3, pad_type="same", **kwargs)
    return _gen_efficientnet("efficientnet_b0", **kwargs)


def name_key(name):
    """32-bit FNV-1a of the tensor's name, so the formula does not depend on the order of the state dict."""
    h = 2166136261
    for byte in name.encode():
        h = ((h ^ byte) * 16777619) % 2**32
    return h


def hash_weights(model):
    """Fills every parameter and float buffer from a formula the C++ test repeats (fill_from_hash):
    u = ((i * 2654435761 + fnv1a(name)) mod 2^32) / 2^32 for element i (row-major) of the tensor."""
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            i = np.arange(t.numel(), dtype=np.uint64)
            u = ((i * np.uint64(2654435761) + np.uint64(name_key(name))) % np.uint64(2**32)).astype(np.float64)
            u /= 2**32
            if name.endswith("running_var") or (name.endswith("weight") and t.dim() == 1):
                v = 0.5 + u
            elif name.endswith("running_mean") or name.endswith("bias"):
                v = (u - 0.5) * 0.2
            else:  # conv and linear weights: uniform with variance 1 / fan_in
                fan_in = t[0].numel()
                v = (u - 0.5) * 2 * math.sqrt(3.0 / fan_in)
            t.copy_(torch.from_numpy(v.reshape(tuple(t.shape))).to(t.dtype))


def b0_fixture(tf, mode, x):
    variant = "tf_efficientnet_b0" if tf else "efficientnet_b0"
    kwargs = dict(num_classes=18, pretrained=False)
    if tf:
        kwargs.update(bn_eps=1e-3, pad_type="same")
    model = _gen_efficientnet(variant, **kwargs)
    hash_weights(model)
    model.train(mode == "train")
    x = x.clone().requires_grad_(True)
    y = model(x)
    cotangent = torch.randn(y.shape, generator=torch.Generator().manual_seed(7))
    (y * cotangent).sum().backward()
    out = {"input": x.detach(), "cotangent": cotangent, "output": y.detach(), "grad.input": x.grad}
    g = torch.Generator().manual_seed(8)
    for name, p in model.named_parameters():
        flat = p.grad.reshape(-1)
        index = torch.randint(0, flat.numel(), (min(32, flat.numel()),), generator=g)
        out["grad_index." + name] = index.to(torch.int64)
        out["grad_sample." + name] = flat[index]
        out["grad_sumsq." + name] = (flat.double() ** 2).sum().reshape(1)
    for name, b in model.named_buffers():
        if b.is_floating_point():
            out["after." + name] = b.detach().clone()
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    for i, (name, (factory, shape)) in enumerate(layer_cases().items()):
        for mode in ("train", "eval"):
            if mode == "eval" and not any(True for _ in factory().buffers()):
                continue  # no batch norm inside: eval equals train
            torch.manual_seed(100 + i)
            module = factory()
            randomize_buffers(module, 200 + i)
            x = torch.randn(shape, generator=torch.Generator().manual_seed(300 + i))
            save(f"{name}_{mode}", run(module, x, mode, 400 + i), name, mode)
    for tf in (False, True):
        for mode in ("train", "eval"):
            model = reduced_efficientnet(tf)
            hash_weights(model)
            x = torch.randn((2, 3, 64, 64), generator=torch.Generator().manual_seed(3))
            name = ("tf_" if tf else "") + "efficientnet_reduced"
            tensors = {k: v for k, v in run(model, x, mode, 4).items() if not k.startswith(("param.", "buffer."))}
            save(f"{name}_hashed_{mode}", tensors, name, mode)
    # Batch 4: at batch 2 the last stages' training-mode batch norms see 8 values per channel (2x2 pixels),
    # where the gradients are so ill-conditioned that a one-ulp change of the input moves some by up to
    # 9.5e-4 relative, the size of the tests' 1e-3 bound, in any float32 implementation (seen on the CPU
    # with effnet; on the GPU effnet's fused step came out at 1.28e-3). At batch 4 none moves by more than
    # 3e-4 (15 perturbed inputs, both variants).
    x = torch.randn((4, 3, 64, 64), generator=torch.Generator().manual_seed(5))
    for tf in (False, True):
        for mode in ("train", "eval"):
            name = ("tf_" if tf else "") + "efficientnet_b0"
            save(f"{name}_hashed_{mode}", b0_fixture(tf, mode, x), name, mode)


if __name__ == "__main__":
    sys.exit(main())
