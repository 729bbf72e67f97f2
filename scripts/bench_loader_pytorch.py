#!/usr/bin/env python3
"""The PyTorch side of scripts/bench_loader.sh: the work of `effnet_bench --loader`, done by
torch.utils.data.DataLoader with torchvision transforms on PIL images.

Same files (every image of the people in ROOT/train/train.csv), same transforms (CenterCrop, RandomRotation(10),
RandomHorizontalFlip, ToTensor, Normalize with ImageNet's statistics), same batch size, shuffled, whole epochs,
one worker process per effnet worker thread. A file PIL cannot read is replaced by the next one that it can,
as effnet's loader does, so that both decode the same number of images. Prints one line per worker count in
effnet_bench's format: "workers N: X images/s (...)".

    python scripts/bench_loader_pytorch.py ROOT --workers 1,2 --crop 384x320 --batch 32 --epochs 3
"""
import argparse
import csv
import os
import time

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

STEMS = ("mask1", "mask2", "mask3", "mask4", "mask5", "incorrect_mask", "normal")
EXTENSIONS = (".jpg", ".jpeg", ".png")


def mask_train_files(root):
    """The images effnet's load_mask_train lists: the seven photos of each person of train.csv."""
    images = os.path.join(root, "train", "images")
    files = []
    with open(os.path.join(root, "train", "train.csv"), newline="") as f:
        for row in csv.DictReader(f):
            folder = os.path.join(images, row["path"])
            if not os.path.isdir(folder):
                continue
            for name in sorted(os.listdir(folder)):
                stem, ext = os.path.splitext(name)
                if not name.startswith(".") and stem in STEMS and ext.lower() in EXTENSIONS:
                    files.append(os.path.join(folder, name))
    return files


class Images(Dataset):
    def __init__(self, files, transform):
        self.files, self.transform = files, transform

    def __len__(self):
        return len(self.files)

    def __getitem__(self, index):
        for step in range(len(self.files)):
            path = self.files[(index + step) % len(self.files)]
            try:
                with Image.open(path) as image:
                    return self.transform(image.convert("RGB")), 0
            except OSError:  # missing, truncated or corrupt: the next file, as effnet does
                continue
        raise RuntimeError("no image decodes")


def recipe_transform(crop):
    """CenterCrop, RandomRotation(10), RandomHorizontalFlip, ToTensor, Normalize: effnet_bench's recipe.
    `crop` is "HxW", or one number for a square, as effnet's --crop."""
    height, _, width = crop.partition("x")
    crop_h, crop_w = int(height), int(width or height)
    return transforms.Compose([
        transforms.CenterCrop((crop_h, crop_w)),
        transforms.RandomRotation(10),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
    ])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--crop", default="384x320", help="HxW")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    dataset = Images(mask_train_files(args.root), recipe_transform(args.crop))
    print(f"torch {torch.__version__}: {len(dataset)} images in {args.root}, crop {args.crop}, "
          f"batch {args.batch}, {args.epochs} epochs", flush=True)
    for workers in (int(w) for w in args.workers.split(",")):
        loader = DataLoader(dataset, batch_size=args.batch, shuffle=True, num_workers=workers,
                            persistent_workers=workers > 0)
        images = 0
        start = time.perf_counter()
        for _ in range(args.epochs):
            for batch, _labels in loader:
                images += batch.shape[0]
        seconds = time.perf_counter() - start
        print(f"workers {workers}: {images / seconds:.1f} images/s ({images} images in {seconds:.2f} s)",
              flush=True)
        del loader  # stops its worker processes before the next count starts


if __name__ == "__main__":
    main()
