#!/usr/bin/python3
"""The PyTorch yardstick for `cftrain bench` on the CPU: the same steps on the same model sizes
(an OpenAI-CLIP-shaped ViT built like tests/fixtures/clip_reference.py), with random weights,
timed the same way (warm-up, then the median of N steps). Run both in one session, e.g.:

    build/cftrain bench --model tiny --device cpu --batch 64 --steps 10
    /usr/bin/python3 tests/bench/bench_steps_pytorch.py --model tiny --batch 64 --steps 10

Modes as in ../shared/DESIGN.md: infer, ft (CE step), ftfd (CE + 30 MSE to a frozen teacher on
the clean images), cam (MMCAM + ObjMaskSingleFill(0.3) only), full (the method's step).
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures"))
from clip_reference import VisionTransformer  # noqa: E402

MODELS = {"tiny": dict(width=64, layers=4, heads=4, patch=4, grid=8, output_dim=64, classes=10),
          "vit-b16": dict(width=768, layers=12, heads=12, patch=16, grid=14, output_dim=512, classes=1000)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="tiny", choices=MODELS)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mode", default="infer,ft,ftfd,cam,full")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    spec = dict(MODELS[args.model])
    classes = spec.pop("classes")
    student = VisionTransformer(**spec)
    teacher = VisionTransformer(**spec)
    teacher.load_state_dict(student.state_dict())
    head = torch.nn.Parameter(F.normalize(torch.randn(classes, spec["output_dim"]), dim=-1) * 100)
    size, grid, patch = spec["grid"] * spec["patch"], spec["grid"], spec["patch"]
    images = torch.randn(args.batch, 3, size, size)
    labels = torch.randint(0, classes, (args.batch,))
    params = list(student.parameters()) + [head]
    optimizer = torch.optim.AdamW(params, lr=3e-5, weight_decay=0.1)

    def logits_of(features):
        return F.normalize(features, dim=-1) @ head.t()

    def counterfactual(features, attention):
        score = logits_of(features).gather(1, labels[:, None]).sum()
        grads = torch.autograd.grad(score, attention, retain_graph=True)
        T = grid * grid + 1
        R = torch.eye(T).expand(args.batch, T, T)
        for p, g in zip(attention, grads):
            R = R + (g * p).clamp(min=0).mean(dim=1) @ R
        cam = R[:, 0, 1:]
        mask = cam / (cam.amax(dim=1, keepdim=True) + 1e-8) > 0.3
        pixels = mask.reshape(-1, 1, grid, 1, grid, 1).expand(-1, 1, grid, patch, grid, patch).reshape(-1, 1, size, size)
        return torch.where(pixels, images[torch.randperm(args.batch)], images)

    def step(mode):
        if mode == "infer":
            with torch.no_grad():
                logits_of(student(images)[0])
            return
        if mode == "cam":
            features, attention = student(images)
            counterfactual(features, attention)
            return
        optimizer.zero_grad()
        features, attention = student(images)
        loss = F.cross_entropy(logits_of(features), labels)
        if mode in ("ftfd", "full"):
            views = counterfactual(features, attention) if mode == "full" else images
            with torch.no_grad():
                target = teacher(views)[0]
            loss = loss + 30 * F.mse_loss(student(views)[0] if mode == "full" else features, target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()

    print(f"{'model':10}{'mode':8}{'batch':>7}{'ms/step':>12}{'images/s':>12}   (PyTorch {torch.__version__}, {args.threads} threads)")
    for mode in args.mode.split(","):
        for _ in range(args.warmup):
            step(mode)
        times = []
        for _ in range(args.steps):
            start = time.perf_counter()
            step(mode)
            times.append((time.perf_counter() - start) * 1000)
        median = sorted(times)[len(times) // 2]
        print(f"{args.model:10}{mode:8}{args.batch:>7}{median:>12.1f}{1000 * args.batch / median:>12.1f}", flush=True)


if __name__ == "__main__":
    main()
