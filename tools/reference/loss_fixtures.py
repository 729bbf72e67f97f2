"""Reference values for the losses and metrics of effnet (losses/), from PyTorch and scikit-learn.

Run (any Python with torch, scikit-learn and safetensors; a fixture tool, never a build or test dependency):

    python tools/reference/loss_fixtures.py            # writes tests/fixtures/loss_fixtures.safetensors

What it writes, per logits set S ("extreme": [8, 5] with logits of +-1e4, ties and a -1e4 target;
"batch": [32, 18], the competition's batch and class count):
    S.logits [N, C] f64 (values exact in float32, so a float32 run sees the same inputs), S.targets [N] i64,
    S.weight [C] f64 (class weights), S.cotangent [N] f64 (the incoming gradient for reduction 'none')
    S.<case>.<reduction>.loss and .grad  torch.nn.functional.cross_entropy and d loss / d logits, for
        case in ce_plain, ce_weighted, ce_smoothed, ce_weighted_smoothed (smoothing 0.1), reduction in
        mean, sum, none ('none' backpropagates S.cotangent)
    S.focal_g<gamma>[_weighted].mean.loss/.grad   F.nll_loss((1 - p)^gamma log p, t, weight=w), p = softmax
    S.soft_f1.mean.loss/.grad                     1 - mean_c 2 sum_i p y / (sum_i p + sum_i y + 1e-7)
    metrics.*  scikit-learn on seeded labels and predictions of 18 classes where class 3 is predicted but
        never a label, class 5 a label but never predicted and class 17 neither: accuracy_score,
        f1_score(average='macro', labels=range(18), zero_division=0), precision_recall_fscore_support
        (same labels and zero_division) and confusion_matrix(labels=range(18)); 0-d values as [1]
    class_weights.counts / .balanced  compute_class_weight('balanced'), i.e. N / (C n_c)
"""
import os

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support
from sklearn.utils.class_weight import compute_class_weight

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "loss_fixtures.safetensors")
SMOOTHING = 0.1
F1_EPSILON = 1e-7


def logits_sets(generator):
    extreme = torch.tensor([
        [1e4, -1e4, 0.0, 5.0, -3.0],
        [1e4, -1e4, 0.0, 5.0, -3.0],
        [1e4, 1e4, 1e4, 1e4, 1e4],
        [-1e4, -1e4, -1e4, 2.0, -1e4],
        [0.5, -0.25, 1.5, 0.0, -2.0],
        [-1e4, 1e4, 3.0, -7.5, 0.125],
        [2.0, 2.0, -1.0, 0.0, 4.0],
        [-3.0, 1.0, -1e4, 0.75, 1.0],
    ], dtype=torch.float32)
    extreme_targets = torch.tensor([0, 1, 2, 4, 2, 3, 4, 2])  # row 1: -1e4 target; row 5, 7: huge losses
    batch = torch.randn(32, 18, generator=generator, dtype=torch.float32) * 3
    batch_targets = torch.randint(0, 18, (32,), generator=generator)
    return {"extreme": (extreme, extreme_targets), "batch": (batch, batch_targets)}


def with_grad(logits, fn, cotangent=None):
    z = logits.clone().requires_grad_(True)
    loss = fn(z)
    loss.backward(cotangent if loss.dim() > 0 else None)
    return loss.detach(), z.grad.detach()


def focal(z, t, gamma, weight):
    log_p = F.log_softmax(z, dim=1)
    return F.nll_loss((1 - log_p.exp()) ** gamma * log_p, t, weight=weight)


def soft_f1(z, t):
    p = F.softmax(z, dim=1)
    y = F.one_hot(t, z.shape[1]).to(z.dtype)
    f1 = 2 * (p * y).sum(0) / (p.sum(0) + y.sum(0) + F1_EPSILON)
    return 1 - f1.mean()


def loss_tensors(generator):
    out = {}
    for name, (logits32, targets) in logits_sets(generator).items():
        z = logits32.double()
        classes = z.shape[1]
        weight = (torch.rand(classes, generator=generator, dtype=torch.float64) * 2 + 0.25)
        cotangent = torch.randn(z.shape[0], generator=generator, dtype=torch.float64)
        out[f"{name}.logits"], out[f"{name}.targets"] = z, targets
        out[f"{name}.weight"], out[f"{name}.cotangent"] = weight, cotangent
        cases = {"ce_plain": (None, 0.0), "ce_weighted": (weight, 0.0), "ce_smoothed": (None, SMOOTHING),
                 "ce_weighted_smoothed": (weight, SMOOTHING)}
        for case, (w, smoothing) in cases.items():
            for reduction in ("mean", "sum", "none"):
                loss, grad = with_grad(z, lambda x: F.cross_entropy(
                    x, targets, weight=w, label_smoothing=smoothing, reduction=reduction), cotangent)
                out[f"{name}.{case}.{reduction}.loss"] = loss.reshape(-1)
                out[f"{name}.{case}.{reduction}.grad"] = grad
        for gamma in (2, 5):
            for w, suffix in ((None, ""), (weight, "_weighted")):
                loss, grad = with_grad(z, lambda x: focal(x, targets, gamma, w))
                out[f"{name}.focal_g{gamma}{suffix}.mean.loss"] = loss.reshape(1)
                out[f"{name}.focal_g{gamma}{suffix}.mean.grad"] = grad
        loss, grad = with_grad(z, lambda x: soft_f1(x, targets))
        out[f"{name}.soft_f1.mean.loss"], out[f"{name}.soft_f1.mean.grad"] = loss.reshape(1), grad
    return out


def metric_tensors(rng):
    classes, n = 18, 300
    label_pool = [c for c in range(classes) if c not in (3, 17)]
    prediction_pool = [c for c in range(classes) if c not in (5, 17)]
    labels = rng.choice(label_pool, size=n)
    # Mostly right (where the label can be predicted), so the per-class values are not all near 1 / C.
    predictions = np.where((rng.random(n) < 0.6) & (labels != 5), labels, rng.choice(prediction_pool, size=n))
    everything = list(range(classes))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=everything, zero_division=0)
    as_f64 = lambda a: torch.tensor(np.asarray(a, dtype=np.float64)).reshape(-1)
    counts = np.bincount(labels, minlength=classes)[label_pool]
    return {
        "metrics.labels": torch.tensor(labels, dtype=torch.int64),
        "metrics.predictions": torch.tensor(predictions, dtype=torch.int64),
        "metrics.accuracy": as_f64(accuracy_score(labels, predictions)),
        "metrics.macro_f1": as_f64(f1_score(labels, predictions, average="macro", labels=everything,
                                            zero_division=0)),
        "metrics.precision": as_f64(precision),
        "metrics.recall": as_f64(recall),
        "metrics.f1": as_f64(f1),
        "metrics.support": torch.tensor(support, dtype=torch.int64),
        "metrics.confusion": torch.tensor(confusion_matrix(labels, predictions, labels=everything),
                                          dtype=torch.int64),
        "class_weights.counts": torch.tensor(counts, dtype=torch.int64),
        "class_weights.balanced": as_f64(compute_class_weight(
            "balanced", classes=np.arange(len(label_pool)),
            y=np.repeat(np.arange(len(label_pool)), counts))),
    }


def main():
    tensors = loss_tensors(torch.Generator().manual_seed(20240611))
    tensors.update(metric_tensors(np.random.default_rng(7)))
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    metadata = {"generator": "tools/reference/loss_fixtures.py", "torch": torch.__version__,
                "label_smoothing": str(SMOOTHING), "f1_epsilon": str(F1_EPSILON)}
    save_file(tensors, OUT, metadata=metadata)
    print(f"wrote {len(tensors)} tensors, {os.path.getsize(OUT)} bytes to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
