"""Optimizer, LR-schedule and gradient-clipping fixtures for tests/test_optim.cpp, from the references.

Run from the repository root with the reference environment (torch, safetensors, adamp, madgrad):

    /tmp/refenv/bin/python tools/reference/optim_fixtures.py

It writes
  tests/fixtures/optim_steps.safetensors      20 steps of SGD, Adam, AdamW (torch.optim), AdamP, SGDP (adamp)
                                              and MADGRAD (madgrad) on three parameters, float32 and float64,
                                              plus torch's clip_grad_norm_ on one set of gradients
  tests/fixtures/optim_schedules.safetensors  40 steps of torch's LR schedulers, alone and behind a warmup

Parameters: conv [8, 4, 3, 3] and linear [18, 32] in group 0 (the config's weight decay), bias [32] in
group 1 (weight decay 0), the split of optim/param_groups.h. Initial values and gradients are float32
numbers, used as they are by the float64 runs too. Most configs share one random gradient sequence; AdamP
and SGDP configs get their own, where on even steps the conv gradient is orthogonal to the current weight
per output channel (the per-channel projection fires) and the linear one orthogonal over the whole tensor
(the whole-tensor projection fires), random on odd steps (none fires). Every step's test is kept at least
a factor 2 away from its threshold, so that rounding cannot flip it in C++ or on the GPU.

Tensors (all float32 unless said):
  init.<param>                          the initial parameters
  shared.grads.<param>, <cfg>.grads.<param>   [20, *shape]: the gradient of each step
  <cfg>.<dtype>.step<k>.<param>         the parameters after k = 1, 5, 20 steps, in that dtype
  clip.<dtype>.norm, clip.<dtype>.<param>     clip_grad_norm_(max_norm 1) of 3 x the first shared gradients
  <schedule>.lr                         float64 [40, 2]: both groups' lr at t = 0..39 (base lrs 0.1, 0.01)
Metadata: configs, <cfg>.optimizer, <cfg>.options ("name=value ..."), <cfg>.grads; schedules,
<schedule>.options.
"""
import math
import os

import adamp
import madgrad
import torch
from safetensors.torch import save_file

STEPS = 20
SAVED_STEPS = (1, 5, 20)
SHAPES = {"conv": (8, 4, 3, 3), "linear": (18, 32), "bias": (32,)}
DTYPES = {"float32": torch.float32, "float64": torch.float64}
OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures")

# name -> (optimizer name, options); option names are effnet's (optim/*.h).
CONFIGS = {
    "sgd": ("SGD", dict(lr=0.1)),
    "sgd_momentum_dampening_wd": ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-2)),
    "sgd_nesterov_wd": ("SGD", dict(lr=0.05, momentum=0.9, nesterov=1, weight_decay=1e-2)),
    "adam": ("Adam", dict(lr=1e-2)),
    "adam_l2": ("Adam", dict(lr=1e-2, weight_decay=1e-2, beta1=0.8, beta2=0.99)),
    "adamw": ("AdamW", dict(lr=1e-2, weight_decay=0.05)),
    "adamp": ("AdamP", dict(lr=1e-2)),
    "adamp_nesterov_wd": ("AdamP", dict(lr=1e-2, weight_decay=0.1, nesterov=1)),
    "sgdp_momentum_wd": ("SGDP", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-2)),
    "sgdp_nesterov_wd": ("SGDP", dict(lr=0.05, momentum=0.9, nesterov=1, weight_decay=1e-2)),
    "madgrad": ("MADGRAD", dict(lr=1e-2)),
    "madgrad_l2_no_momentum": ("MADGRAD", dict(lr=1e-2, momentum=0.0, weight_decay=1e-3)),
    "madgrad_decoupled": ("MADGRAD", dict(lr=1e-2, weight_decay=1e-2, decouple_decay=1)),
}
PROJECTED = {"AdamP", "SGDP"}


def make_optimizer(kind, options, params):
    o = dict(options)
    groups = [{"params": [params["conv"], params["linear"]]}, {"params": [params["bias"]], "weight_decay": 0.0}]
    if "nesterov" in o:
        o["nesterov"] = bool(o["nesterov"])
    if "beta1" in o:
        o["betas"] = (o.pop("beta1"), o.pop("beta2"))
    if kind == "SGD":
        return torch.optim.SGD(groups, foreach=False, **o)
    if kind == "Adam":
        return torch.optim.Adam(groups, foreach=False, **o)
    if kind == "AdamW":
        return torch.optim.AdamW(groups, foreach=False, **o)
    if kind == "AdamP":
        return adamp.AdamP(groups, **o)
    if kind == "SGDP":
        return adamp.SGDP(groups, **o)
    if kind == "MADGRAD":
        o["decouple_decay"] = bool(o.get("decouple_decay", 0))
        return madgrad.MADGRAD(groups, **o)
    raise ValueError(kind)


def abs_cosines(g, p, rows):
    g, p = g.double().reshape(rows, -1), p.double().reshape(rows, -1)
    return ((g * p).sum(1).abs() / (g.norm(dim=1).clamp_min(1e-8) * p.norm(dim=1).clamp_min(1e-8)))


def projection_margin(g, p):
    """(branch, ratio of the deciding cosine to its threshold): 'channel', 'layer' or 'none'."""
    channel = abs_cosines(g, p, p.shape[0]).max().item() / (0.1 / math.sqrt(p[0].numel()))
    if channel < 1:
        return "channel", channel
    layer = abs_cosines(g, p, 1).max().item() / (0.1 / math.sqrt(p.numel()))
    return ("layer" if layer < 1 else "none"), min(channel, layer if layer >= 1 else 1 / layer)


def orthogonal_to(r, p, rows):
    r2, p2 = r.double().reshape(rows, -1), p.double().reshape(rows, -1)
    out = r2 - (r2 * p2).sum(1, keepdim=True) / (p2 * p2).sum(1, keepdim=True) * p2
    return out.reshape(r.shape).float()


def projected_gradient(name, step, p, generator):
    """A gradient for AdamP/SGDP configs whose projection test sits far from its threshold."""
    want = "none" if name == "bias" or step % 2 == 1 else ("channel" if name == "conv" else "layer")
    for _ in range(100):
        r = torch.randn(p.shape, generator=generator)
        if want == "channel":
            g = orthogonal_to(r, p, p.shape[0])
        elif want == "layer":
            g = orthogonal_to(r, p, 1)
        else:
            g = r
        if name == "bias":
            return g
        branch, margin = projection_margin(g, p)
        if branch == want and (margin < 0.5 or margin > 2):
            return g
    raise RuntimeError(f"no gradient with a clear projection test for {name} at step {step}")


def run(kind, options, init, dtype, grads=None, generator=None):
    """Runs STEPS steps; returns (saved params by step, the gradients used)."""
    params = {n: init[n].to(dtype).clone().requires_grad_() for n in SHAPES}
    opt = make_optimizer(kind, options, params)
    used = {n: [] for n in SHAPES}
    saved = {}
    for step in range(STEPS):
        for n, p in params.items():
            if grads is not None:
                g = grads[n][step]
            else:
                g = projected_gradient(n, step, p.detach().float(), generator)
            used[n].append(g)
            p.grad = g.to(dtype).clone()
        opt.step()
        if step + 1 in SAVED_STEPS:
            saved[step + 1] = {n: p.detach().clone() for n, p in params.items()}
    return saved, {n: torch.stack(v) for n, v in used.items()}


def check_projection_margins(kind, options, init, grads):
    """Replays the float64 run and confirms each step's projection test is clear of its threshold."""
    params = {n: init[n].double().clone().requires_grad_() for n in SHAPES}
    opt = make_optimizer(kind, options, params)
    for step in range(STEPS):
        for n, p in params.items():
            p.grad = grads[n][step].double().clone()
            if n != "bias":
                branch, margin = projection_margin(p.grad, p.detach())
                assert margin < 0.5 or margin > 2, (kind, n, step, branch, margin)
        opt.step()


def optimizer_fixtures():
    torch.manual_seed(0)
    init = {n: torch.randn(s) for n, s in SHAPES.items()}
    shared = {n: torch.randn((STEPS,) + s) for n, s in SHAPES.items()}
    tensors = {f"init.{n}": t for n, t in init.items()}
    tensors.update({f"shared.grads.{n}": t for n, t in shared.items()})
    metadata = {"configs": " ".join(CONFIGS), "steps": " ".join(map(str, SAVED_STEPS))}
    for cfg, (kind, options) in CONFIGS.items():
        grads = shared
        if kind in PROJECTED:
            generator = torch.Generator().manual_seed(len(cfg))
            _, grads = run(kind, options, init, torch.float32, generator=generator)
            check_projection_margins(kind, options, init, grads)
            tensors.update({f"{cfg}.grads.{n}": g for n, g in grads.items()})
        for dtype_name, dtype in DTYPES.items():
            saved, _ = run(kind, options, init, dtype, grads=grads)
            for k, ps in saved.items():
                tensors.update({f"{cfg}.{dtype_name}.step{k}.{n}": p for n, p in ps.items()})
        metadata[f"{cfg}.optimizer"] = kind
        metadata[f"{cfg}.options"] = " ".join(f"{k}={v!r}" for k, v in options.items())
        metadata[f"{cfg}.grads"] = cfg if kind in PROJECTED else "shared"
    for dtype_name, dtype in DTYPES.items():
        params = [torch.zeros(s, dtype=dtype, requires_grad=True) for s in SHAPES.values()]
        for p, n in zip(params, SHAPES):
            p.grad = 3 * shared[n][0].to(dtype)
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm=1.0)
        tensors[f"clip.{dtype_name}.norm"] = norm.reshape(1)
        tensors.update({f"clip.{dtype_name}.{n}": p.grad for p, n in zip(params, SHAPES)})
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, "optim_steps.safetensors"), metadata)


# name -> (effnet options, a function making torch's scheduler for an optimizer)
S = torch.optim.lr_scheduler
SCHEDULES = {
    "step": (dict(kind="step", step_size=7, gamma=0.5), lambda o: S.StepLR(o, step_size=7, gamma=0.5)),
    "multistep": (dict(kind="multistep", milestones="5,12,30", gamma=0.3),
                  lambda o: S.MultiStepLR(o, milestones=[5, 12, 30], gamma=0.3)),
    "cosine": (dict(kind="cosine", t_max=15, eta_min=1e-3), lambda o: S.CosineAnnealingLR(o, T_max=15, eta_min=1e-3)),
    "warm_restarts": (dict(kind="cosine_warm_restarts", t_0=5, t_mult=2, eta_min=1e-4),
                      lambda o: S.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=2, eta_min=1e-4)),
    "warm_restarts_fixed": (dict(kind="cosine_warm_restarts", t_0=7, t_mult=1),
                            lambda o: S.CosineAnnealingWarmRestarts(o, T_0=7, T_mult=1)),
    "warmup_constant": (dict(kind="constant", warmup_steps=4, warmup_start_factor=0.25),
                        lambda o: S.LinearLR(o, start_factor=0.25, total_iters=4)),
    "warmup_cosine": (dict(kind="cosine", t_max=30, warmup_steps=5, warmup_start_factor=0.1),
                      lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=5),
                                                   S.CosineAnnealingLR(o, T_max=30)], milestones=[5])),
    "warmup_step": (dict(kind="step", step_size=10, gamma=0.1, warmup_steps=3),
                    lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=1 / 3, total_iters=3),
                                                 S.StepLR(o, step_size=10, gamma=0.1)], milestones=[3])),
}


def schedule_fixtures():
    tensors, metadata = {}, {"schedules": " ".join(SCHEDULES)}
    for name, (options, make) in SCHEDULES.items():
        p = torch.zeros(1, requires_grad=True)
        q = torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([{"params": [p], "lr": 0.1}, {"params": [q], "lr": 0.01}])
        scheduler = make(opt)
        lrs = []
        for _ in range(40):
            lrs.append([g["lr"] for g in opt.param_groups])
            opt.step()
            scheduler.step()
        tensors[f"{name}.lr"] = torch.tensor(lrs, dtype=torch.float64)
        metadata[f"{name}.options"] = " ".join(f"{k}={v}" for k, v in options.items())
    save_file(tensors, os.path.join(OUT, "optim_schedules.safetensors"), metadata)


if __name__ == "__main__":
    optimizer_fixtures()
    schedule_fixtures()
