"""Reference outputs for effnet's image transforms (data/transforms.cpp) from torchvision on PIL images.

Run (any Python with torch, torchvision, pillow, numpy and safetensors; a fixture tool, never a build or
test dependency):

    python tools/reference/transform_check.py     # writes tests/fixtures/transform_fixtures.safetensors
                                                   # and tests/fixtures/transform_photo{,_progressive}.jpg

Images are HWC, stored as F16 (every 8-bit level is exact in float16; effnet's reader has no U8):
    photo [28, 32, 3]   a smooth gradient with edges and noise; noise [19, 23, 3] uniform; square [16, 16, 3]
    <image>.resize_<h>x<w>              F.resize(img, [h, w], BILINEAR) (PIL: antialiased when shrinking), as
                                        Pillow <= 12 computes it: the horizontal pass, then the vertical one
                                        (Pillow 13 runs the vertical pass first for some sizes; the script
                                        prints how far that is from the stored reference)
    <image>.center_crop_<h>x<w>         F.center_crop (larger than the image: zero padding)
    <image>.rotate_<deg>                F.rotate(img, deg, NEAREST, fill=[255, 128, 0]); 'm' for minus
    <image>.hflip, .grayscale, .equalize  F.hflip, F.rgb_to_grayscale(img, 3), F.equalize
    <image>.brightness_<f>, .contrast_<f>, .saturation_<f>, .hue_<f>   F.adjust_*
    photo.normalized [3, 28, 32] F32    F.normalize(F.to_tensor(img), ImageNet mean, std)
    photo.jpeg, photo.jpeg_progressive  PIL's decode of the two JPEG files (quality 90, 4:2:0)

Besides, it prints how far torchvision's tensor path (uint8 tensors, antialias=True) is from the PIL path,
for the record: effnet follows the PIL path.
"""
import os

import numpy as np
import PIL
import torch
import torchvision.transforms.functional as F
from PIL import Image
from safetensors.numpy import save_file
from torchvision.transforms import InterpolationMode

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures")
FILL = [255, 128, 0]
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def make_images():
    rng = np.random.default_rng(20261126)
    y, x = np.mgrid[0:28, 0:32].astype(np.float64)
    photo = np.stack([x * 7 + 20, y * 8 + 10, 200 - x * 3 - y * 2], axis=-1)
    photo[8:18, 10:22] = [230, 40, 60]  # a block with sharp edges
    photo += rng.normal(0, 6, photo.shape)
    images = {
        "photo": np.clip(np.rint(photo), 0, 255).astype(np.uint8),
        "noise": rng.integers(0, 256, (19, 23, 3), dtype=np.uint8),
        "square": rng.integers(0, 256, (16, 16, 3), dtype=np.uint8),
    }
    return images


def tag(value):
    return str(value).replace("-", "m").replace(".", "p")


def cases(name, img):
    """(key, PIL image) of every reference output for one image."""
    out = {}
    h, w = img.height, img.width
    sizes = {"photo": [(17, 13), (28, 19), (31, 35), (13, 40)], "noise": [(7, 9), (30, 23)],
             "square": []}
    for rh, rw in sizes[name]:
        horizontal = F.resize(img, [h, rw], InterpolationMode.BILINEAR)
        out[f"resize_{rh}x{rw}"] = F.resize(horizontal, [rh, rw], InterpolationMode.BILINEAR)
        one_call = np.asarray(F.resize(img, [rh, rw], InterpolationMode.BILINEAR)).astype(int)
        diff = np.abs(one_call - np.asarray(out[f"resize_{rh}x{rw}"]).astype(int))
        if diff.any():
            print(f"  Pillow {PIL.__version__} one-call resize of {name} to {rh}x{rw}: "
                  f"max |diff| {diff.max()} from horizontal-then-vertical, {int((diff > 0).sum())} values")
    crops = {"photo": [(20, 24), (33, 29), (27, 31)], "noise": [(16, 20), (23, 26)], "square": []}
    for ch, cw in crops[name]:
        out[f"center_crop_{ch}x{cw}"] = F.center_crop(img, [ch, cw])
    angles = {"photo": [10, -7.5], "noise": [10, 33.3, -90, 90, 180, 270, 359.9],
              "square": [90, -90, 45, 180]}
    for angle in angles[name]:
        out[f"rotate_{tag(angle)}"] = F.rotate(img, angle, InterpolationMode.NEAREST, fill=FILL)
    if name == "square":
        return out
    out["hflip"] = F.hflip(img)
    out["grayscale"] = F.rgb_to_grayscale(img, num_output_channels=3)
    out["equalize"] = F.equalize(img)
    jitter = {
        "photo": {"brightness": [0.6, 1.4], "contrast": [1.7], "saturation": [0.3, 1.8], "hue": [0.1]},
        "noise": {"brightness": [1.23], "contrast": [2.5], "saturation": [0.0, 1.5],
                  "hue": [0.0, 0.05, -0.33, 0.5, -0.5]},
    }
    adjust = {"brightness": F.adjust_brightness, "contrast": F.adjust_contrast,
              "saturation": F.adjust_saturation, "hue": F.adjust_hue}
    for kind, factors in jitter[name].items():
        for factor in factors:
            out[f"{kind}_{tag(factor)}"] = adjust[kind](img, factor)
    assert all(v.size == (v.width, v.height) and v.mode == "RGB" for v in out.values()), name
    return out


def tensor_path_differences(images):
    """Largest |tensor path - PIL path| over a few random photo-sized images, per operation."""
    rng = np.random.default_rng(7)
    worst = {}
    for _ in range(3):
        base = rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)
        base = np.asarray(Image.fromarray(base).resize((96, 128), Image.BILINEAR))  # smoother than noise
        pil, t = Image.fromarray(base), torch.from_numpy(base.copy()).permute(2, 0, 1).contiguous()
        ops = {
            "resize 128x96 -> 75x64":
                lambda im: F.resize(im, [75, 64], InterpolationMode.BILINEAR, antialias=True),
            "rotate 10 (nearest)": lambda im: F.rotate(im, 10, InterpolationMode.NEAREST, fill=FILL),
            "brightness 1.3": lambda im: F.adjust_brightness(im, 1.3),
            "contrast 0.7": lambda im: F.adjust_contrast(im, 0.7),
            "saturation 1.6": lambda im: F.adjust_saturation(im, 1.6),
            "hue 0.1": lambda im: F.adjust_hue(im, 0.1),
            "grayscale": lambda im: F.rgb_to_grayscale(im, 3),
            "equalize": F.equalize,
        }
        for label, op in ops.items():
            a = np.asarray(op(pil)).astype(int)
            b = op(t).permute(1, 2, 0).numpy().astype(int)
            d = np.abs(a - b)
            max_diff, fraction = worst.get(label, (0, 0.0))
            worst[label] = max(max_diff, int(d.max())), max(fraction, float((d > 0).mean()))
    for label, (max_diff, fraction) in worst.items():
        print(f"  tensor vs PIL path, {label}: max |diff| {max_diff}, {100 * fraction:.2f}% of values differ")


def main():
    images = make_images()
    tensors = {}
    for name, array in images.items():
        tensors[name] = array.astype(np.float16)
        img = Image.fromarray(array)
        for key, result in cases(name, img).items():
            tensors[f"{name}.{key}"] = np.asarray(result).astype(np.float16)
    photo = Image.fromarray(images["photo"])
    tensors["photo.normalized"] = F.normalize(F.to_tensor(photo), MEAN, STD).numpy().astype(np.float32)
    for suffix, progressive in (("", False), ("_progressive", True)):
        path = os.path.join(FIXTURES, f"transform_photo{suffix}.jpg")
        photo.save(path, quality=90, progressive=progressive)
        with Image.open(path) as decoded:
            tensors["photo.jpeg" + suffix] = np.asarray(decoded.convert("RGB")).astype(np.float16)
    out = os.path.join(FIXTURES, "transform_fixtures.safetensors")
    save_file(tensors, out, metadata={"fill": ",".join(map(str, FILL))})
    print(f"wrote {len(tensors)} tensors, {os.path.getsize(out)} bytes, to {os.path.normpath(out)}")
    tensor_path_differences(images)


if __name__ == "__main__":
    main()
