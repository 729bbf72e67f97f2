#!/usr/bin/env python3
"""The largest batch whose training step fits in memory, found as effnet_bench --max-batch finds it: the
same search (train/batch_fit.cpp, read there for the reasoning), written again for scripts/bench_pytorch.py
so that both frameworks' largest batches come from the same trials on the same grid.

    python3 scripts/batch_fit.py --self-test   # the search against memory models with known answers
"""
import sys

_LARGEST_GUESS = 1 << 40  # as train/batch_fit.cpp, whose int64 sums must not overflow


def _grid_floor(x, m):
    return x if x < m else x // m * m


def _grid_above(x, m):
    return x + 1 if x + 1 < m else (x // m + 1) * m


def _grid_below(x, m):
    return _grid_floor(x - 1, m)


def _predicted_batch(trials, capacity):
    """Where the line through the two largest fitting trials reaches capacity, if they make a rising line;
    else the line from the smallest fitting trial to the largest (as train/batch_fit.cpp)."""
    fits = sorted({b: p for b, p in trials if p is not None}.items())
    if capacity <= 0 or len(fits) < 2:
        return None
    b2, p2 = fits[-1]
    for b1, p1 in (fits[-2], fits[0]):
        per_image = (p2 - p1) / (b2 - b1)
        if per_image > 0:
            return b2 + (capacity - p2) / per_image
    return None


def find_largest_batch(try_batch, start=32, multiple=8, capacity=0, max_trials=24):
    """try_batch(batch) -> peak bytes, or None when out of memory. Returns (batch, exact, trials)."""
    m = multiple
    if not (1 <= start <= _LARGEST_GUESS and 1 <= m <= _LARGEST_GUESS and max_trials >= 1):
        raise ValueError(f"expected start and multiple in [1, 2^40], max_trials >= 1; got {start}, {m}, {max_trials}")
    trials = []
    lo, hi = 0, None
    guess, stride, aimed, galloped = start, m, False, False
    while True:
        peak = try_batch(guess)
        fits = peak is not None
        same_way = bool(trials) and (trials[-1][1] is not None) == fits
        trials.append((guess, peak))
        if fits:
            lo = guess
        else:
            hi = guess
        stride = min(stride * 2, _LARGEST_GUESS) if same_way and galloped else m
        lowest = _grid_above(lo, m)
        if hi is not None and lowest >= hi:
            return lo, True, trials
        if len(trials) >= max_trials or lowest > _LARGEST_GUESS:
            return lo, False, trials
        line = _predicted_batch(trials, capacity) if fits else None
        on_line = _grid_floor(int(min(line, 16.0 * lo)), m) if line is not None else 0
        galloped = False
        if hi is None:
            if line is not None:
                aimed = True
                galloped = on_line < lo + stride
                guess = lo + stride if galloped else on_line
            elif aimed:  # no rising line any more: step on from the largest fit rather than double it
                galloped = True
                guess = lo + stride
            else:
                guess = 2 * lo
            guess = max(_grid_floor(min(guess, _LARGEST_GUESS), m), lowest)
        else:
            middle = _grid_floor(lo + (hi - lo) // 2, m)
            if fits and on_line > lo:
                aimed = True
                guess = on_line
            elif aimed:
                galloped = True
                guess = min(lo + stride, middle) if fits else max(hi - stride, middle)
            else:
                guess = middle
            guess = min(max(_grid_floor(guess, m), lowest), _grid_below(hi, m))


def describe(trials):
    return ", ".join(f"{b}: {p >> 20} MiB" if p is not None else f"{b}: out of memory" for b, p in trials)


def _self_test():
    mib = 1 << 20

    def device(capacity, fixed=300 * mib, per_image=37 * mib):
        tried = []

        def try_batch(b):
            tried.append(b)
            peak = fixed + per_image * b
            return peak if peak <= capacity else None

        return try_batch, tried

    # The same case as tests/test_batch_fit.cpp's LinearMemoryTakesTheLineThenOneStepEachWay.
    try_batch, tried = device(10000 * mib)
    batch, exact, trials = find_largest_batch(try_batch, 32, 8, 10000 * mib)
    assert (batch, exact, tried) == (256, True, [32, 64, 256, 264]), (batch, tried)
    assert describe(trials) == "32: 1484 MiB, 64: 2668 MiB, 256: 9772 MiB, 264: out of memory", describe(trials)
    # Every answer, from several starts, with and without the line: the brute-force answer, no repeats.
    for start in (1, 8, 30, 64):
        for with_line in (False, True):
            for images in range(1, 701, 3):
                capacity = 300 * mib + 37 * mib * images + mib
                try_batch, tried = device(capacity)
                batch, exact, _ = find_largest_batch(try_batch, start, 8, capacity if with_line else 0)
                grid = [b for b in list(range(1, 8)) + list(range(8, 2000, 8)) if b <= images]
                answer = max(grid + ([start] if start <= images else []), default=0)
                assert (batch, exact) == (answer, True), (start, with_line, images, batch, tried)
                assert len(set(tried)) == len(tried), tried
                if with_line and answer >= max(start, 8):
                    assert len(tried) <= 6, tried
    # As tests/test_batch_fit.cpp's NoisyPeaksNearTheTopKeepTheSearchNearTheBoundary.
    tried = []

    def noisy(b):
        tried.append(b)
        peak = (2750 + 190 * b + (2000 if b % 16 == 0 else 0)) * mib
        return peak if peak <= 142000 * mib else None

    batch, exact, _ = find_largest_batch(noisy, 128, 8, 142000 * mib)
    assert (batch, exact) == (728, True) and max(tried) <= 800 and len(tried) <= 7, tried
    print("batch_fit.py: self-test passed")


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        _self_test()
    else:
        sys.exit(__doc__)
