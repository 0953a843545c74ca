#!/usr/bin/python3
"""The yardstick for bench_loader: Pillow + torchvision doing the loader's work on one core
(Image.open(f).convert("RGB"), Resize(224, BICUBIC), CenterCrop(224), ToTensor, Normalize with
CLIP's mean and std) over the JPEG files of a folder, in a loop, for about `seconds` seconds
after a warm-up pass. Prints {"images_per_second": ...} as JSON. Exits with status 77 when
Pillow or torchvision is missing.
    /usr/bin/python3 bench_loader_pillow.py FOLDER [seconds]
"""
import json
import os
import sys
import time

try:
    import torch
    from PIL import Image
    from torchvision import transforms as T
except ImportError as e:
    print(f"Pillow/torchvision unavailable: {e}", file=sys.stderr)
    sys.exit(77)


def main():
    folder = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
    files = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".jpg"))
    torch.set_num_threads(1)
    transform = T.Compose([
        T.Resize(224, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(224), T.ToTensor(),
        T.Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))])
    for f in files:  # warm-up: page cache, lazy imports
        transform(Image.open(f).convert("RGB"))
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for f in files:
            transform(Image.open(f).convert("RGB"))
        count += len(files)
    print(json.dumps({"images_per_second": count / (time.perf_counter() - start)}))


if __name__ == "__main__":
    main()
