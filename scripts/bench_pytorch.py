#!/usr/bin/env python3
"""The PyTorch side of effnet_bench: timm's EfficientNet trained (or run) on synthetic data, timed the way
effnet_bench times effnet, so that both numbers come from one run on one machine.

A training step is forward, cross-entropy against class 1, backward, an AdamP step (the `adamp` package when
installed, else torch's Adam: say which) and zero_grad, as effnet_bench's. Like effnet_bench, a step is timed
with CUDA events around it on the current stream and waited for (on the CPU: the host clock); the median over
--steps steps after --warmup untimed ones is reported. Peak memory: torch.cuda.max_memory_allocated over the
timed steps. Held for backward (training): one more step's bytes allocated by forward and the loss and still
held when backward starts, i.e. the activations saved for backward (on the CPU, from the profiler's record of
allocations), as effnet_bench reports them.

Variants (--variants, comma-separated):
  eager_fp32     float32, NCHW (TF32 off, as effnet's float32)
  eager_bf16_cl  torch.autocast bfloat16, channels-last model and input
  compile_bf16_cl  the same under torch.compile (the compile happens in the warm-up steps)

Prints one line per variant in effnet_bench's format:
  pytorch eager_fp32 efficientnet_b0 train 224x224 batch 8 on cpu: median step X ms (min A, max B), Y images/s[, peak
  memory Z MiB], held for backward H MiB

--max-batch (CUDA, eager variants) first finds the largest batch whose two steps fit on the card, with
effnet_bench --max-batch's search and grid (scripts/batch_fit.py; a trial's memory is
torch.cuda.max_memory_reserved from an emptied cache; trials take cuDNN's heuristic algorithms, cudnn.benchmark
off, and are said on stderr as they end), prints
  pytorch --max-batch: largest batch N in C MiB (batch: peak held; 32: ... MiB, ...)
and then times that batch.

--data ROOT trains end to end as effnet_bench --data does: batches from a DataLoader over the competition
layout (scripts/bench_loader_pytorch.py's dataset and transforms at --crop; --workers processes, pinned
memory, whole batches), copied to the device in the step, timed by the host clock over --steps steps, with
the share spent waiting for the loader:
  pytorch eager_bf16_cl efficientnet_b4 train 384x320 batch 32 on cuda from ROOT, 8 workers: X ms a step over
  N steps, W% of it waiting for the loader, Y images/s[, peak memory Z MiB]

    python scripts/bench_pytorch.py --model efficientnet_b4 --img-size 380 --batch 32 --device cuda
    python scripts/bench_pytorch.py --model efficientnet_b0 --img-size 224 --batch 8 --device cpu --threads 2
"""
import argparse
import gc
import sys
import time

import timm
import torch

from batch_fit import describe, find_largest_batch


def optimizer_for(model, channels_last):
    if channels_last:  # adamp's projection calls .view on the gradients, which fails for channels-last ones
        return torch.optim.Adam(model.parameters(), lr=1e-4), "Adam (adamp cannot take channels-last weights)"
    try:
        from adamp import AdamP

        return AdamP(model.parameters(), lr=1e-4), "AdamP"
    except ImportError:
        return torch.optim.Adam(model.parameters(), lr=1e-4), "Adam (adamp not installed)"


def bytes_held_by(device, forward):
    """forward()'s result and the bytes it allocated that are still held when it returns: for forward and the
    loss, the activations saved for backward. On the CPU, where PyTorch keeps no allocator statistics, the
    profiler's record of every allocation and free (of the bytes asked for) gives them."""
    if device.type == "cuda":  # bytes requested, before the allocator rounds them up, as effnet_bench counts

        def requested():
            return torch.cuda.memory_stats(device)["requested_bytes.all.current"]

        before = requested()
        result = forward()
        return result, requested() - before
    from torch.profiler import ProfilerActivity, profile
    gc.collect()  # a free inside the profiled region of something made before it would count against it
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = forward()
    # "[memory]" events: +bytes for an allocation, -bytes for a free
    held = sum(e.nbytes() for e in prof.profiler.kineto_results.events() if e.name() == "[memory]")
    return result, held


def bench(variant, args):
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = timm.create_model(args.model, num_classes=args.num_classes, drop_path_rate=args.drop_path).to(device)
    model.train(args.mode == "train")
    half = variant != "eager_fp32"
    if half:
        model = model.to(memory_format=torch.channels_last)
    optimizer, optimizer_name = optimizer_for(model, channels_last=half)
    forward = torch.compile(model) if variant.startswith("compile") else model
    loss_fn = torch.nn.CrossEntropyLoss()

    def inputs(batch):
        images = torch.randn(batch, 3, args.img_size, args.img_size, device=device)
        if half:
            images = images.contiguous(memory_format=torch.channels_last)
        return images, torch.ones(batch, dtype=torch.long, device=device)

    def step_on(images, targets, held=None):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=half):
            if args.mode == "infer":
                with torch.no_grad():
                    forward(images)
                return
            if held is None:
                loss = loss_fn(forward(images), targets)
            else:
                loss, held[0] = bytes_held_by(device, lambda: loss_fn(forward(images), targets))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def synchronize():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    if args.data:
        end_to_end(args, variant, device, step_on, synchronize)
        return
    batch = args.batch
    if args.max_batch:
        if device.type != "cuda" or variant.startswith("compile"):
            raise SystemExit(f"--max-batch: CUDA and eager variants only (got {variant} on {device})")

        # cuDNN's own ways of saying that memory ran out; near a full card its algorithm search finds no
        # algorithm whose workspace fits.
        out_of_memory_texts = ("out of memory", "ALLOC_FAILED", "ALLOCATION_FAILED", "unable to find an engine",
                               "Unable to find a valid cuDNN algorithm")

        def try_batch(n):
            optimizer.zero_grad(set_to_none=True)  # an earlier trial may have run out mid-backward
            gc.collect()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            try:
                images, targets = inputs(n)
                step_on(images, targets)
                step_on(images, targets)
                synchronize()
                peak = torch.cuda.max_memory_reserved(device)
                print(f"pytorch --max-batch: batch {n} fits, {peak >> 20} MiB", file=sys.stderr, flush=True)
                return peak
            except RuntimeError as error:  # torch.cuda.OutOfMemoryError, or cuDNN's / cuBLAS's own
                if not isinstance(error, torch.cuda.OutOfMemoryError) and not any(
                        text.lower() in str(error).lower() for text in out_of_memory_texts):
                    raise
                said = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
            print(f"pytorch --max-batch: batch {n} out of memory ({said})", file=sys.stderr, flush=True)
            # Out of the except block: its traceback, which holds the step's tensors, is gone.
            optimizer.zero_grad(set_to_none=True)
            # Adam and AdamP make a parameter's state key by key; one left half made raises KeyError later.
            for param in [p for p, state in optimizer.state.items() if "exp_avg_sq" not in state]:
                del optimizer.state[param]
            gc.collect()
            torch.cuda.empty_cache()
            return None

        free, _ = torch.cuda.mem_get_info(device)
        capacity = free + torch.cuda.memory_reserved(device)
        # As effnet_bench: the trials take cuDNN's heuristic algorithms (timing every candidate at every batch
        # tried would cost minutes); the timed batch times them as set.
        benchmark = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = False
        batch, exact, trials = find_largest_batch(try_batch, args.batch, args.batch_multiple, capacity)
        torch.backends.cudnn.benchmark = benchmark
        print(f"pytorch --max-batch: largest batch {batch} in {capacity / 2**20:.0f} MiB"
              f"{'' if exact else ', not exact: out of trials'} (batch: peak held; {describe(trials)})", flush=True)
        if batch == 0:
            raise SystemExit(f"--max-batch: not even one image of {args.img_size}x{args.img_size} fits")
    images, targets = inputs(batch)

    def step():
        step_on(images, targets)

    for _ in range(args.warmup):
        step()
    synchronize()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    ms = []
    for _ in range(args.steps):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            step()
            end.record()
            end.synchronize()
            ms.append(start.elapsed_time(end))
            continue
        start = time.perf_counter()
        step()
        synchronize()
        ms.append(1000 * (time.perf_counter() - start))
    median = sorted(ms)[len(ms) // 2]  # as effnet_bench: the middle of the sorted times
    line = (f"pytorch {variant} {args.model} {args.mode} {args.img_size}x{args.img_size} batch {batch} "
            f"on {args.device}: median step {median:.1f} ms (min {min(ms):.1f}, max {max(ms):.1f}), "
            f"{1000 * batch / median:.1f} images/s")
    if device.type == "cuda":
        line += f", peak memory {torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB"
    if args.mode == "train":
        held = [0]
        step_on(images, targets, held)
        line += f", held for backward {held[0] / 2**20:.0f} MiB"
    print(line + (f" [{optimizer_name}]" if args.mode == "train" and optimizer_name != "AdamP" else ""), flush=True)


def end_to_end(args, variant, device, step_on, synchronize):
    from bench_loader_pytorch import Images, mask_train_files, recipe_transform  # torchvision, PIL

    if args.max_batch or args.mode != "train":
        raise SystemExit("--data (end to end) times training at --batch; not with --max-batch or --mode infer")
    dataset = Images(mask_train_files(args.data), recipe_transform(args.crop))
    channels_last = variant != "eager_fp32"
    for workers in (int(w) for w in args.workers.split(",")):
        loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch, shuffle=True, drop_last=True,
                                             num_workers=workers, pin_memory=device.type == "cuda",
                                             persistent_workers=workers > 0)
        if len(loader) == 0:
            raise SystemExit(f"--data: {len(dataset)} images make no whole batch of {args.batch}")
        batches = iter(loader)
        waiting = 0.0

        def next_batch():
            nonlocal batches, waiting
            start = time.perf_counter()
            try:
                images, labels = next(batches)
            except StopIteration:
                batches = iter(loader)
                images, labels = next(batches)
            images = images.to(device, non_blocking=True)
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            labels = labels.to(device, non_blocking=True)
            waiting += time.perf_counter() - start
            return images, labels

        for _ in range(args.warmup):
            step_on(*next_batch())
        synchronize()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        waiting = 0.0
        start = time.perf_counter()
        for _ in range(args.steps):
            step_on(*next_batch())
        synchronize()
        seconds = time.perf_counter() - start
        line = (f"pytorch {variant} {args.model} train {args.crop} batch {args.batch} on {args.device} from "
                f"{args.data}, {workers} workers: {1000 * seconds / args.steps:.1f} ms a step over {args.steps} "
                f"steps, {100 * waiting / seconds:.0f}% of it waiting for the loader, "
                f"{args.batch * args.steps / seconds:.1f} images/s")
        if device.type == "cuda":
            line += f", peak memory {torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB"
        print(line, flush=True)
        del batches, loader  # stops its worker processes before the next count starts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="efficientnet_b0")
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--num-classes", type=int, default=18)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--mode", choices=("train", "infer"), default="train")
    parser.add_argument("--drop-path", type=float, default=0.0, help="timm's drop_path_rate")
    parser.add_argument("--variants", default="eager_fp32")
    parser.add_argument("--max-batch", action="store_true",
                        help="find the largest batch that fits (from --batch up), then time it (CUDA)")
    parser.add_argument("--batch-multiple", type=int, default=8, help="--max-batch: batches tried are multiples")
    parser.add_argument("--data", default="", help="competition layout ROOT: train end to end from a DataLoader")
    parser.add_argument("--workers", default="8", help="--data: DataLoader worker counts, e.g. 4,8")
    parser.add_argument("--crop", default="384x320", help="--data: center crop HxW")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    for variant in args.variants.split(","):
        bench(variant, args)


if __name__ == "__main__":
    main()
