#!/usr/bin/python3
"""The PyTorch yardstick for `cftrain bench`: the same steps on the same model sizes (an
OpenAI-CLIP-shaped ViT built like tests/fixtures/clip_reference.py), with random weights, timed
the same way (warm-up, then the median of N steps; CUDA events on the GPU). Run both in one
session, e.g.:

    build/cftrain bench --model tiny --device cpu --batch 64 --steps 10
    /usr/bin/python3 tests/bench/bench_steps_pytorch.py --model tiny --batch 64 --steps 10

    build/cftrain bench --model vit-b16 --device cuda --batch 128 --precision bf16 --steps 20
    python3 tests/bench/bench_steps_pytorch.py --model vit-b16 --device cuda --batch 128 --precision bf16 --steps 20

Modes as in `cftrain bench` (train/tools/bench.h): infer, ft (CE step), ftfd (CE + 30 MSE to a frozen teacher on
the clean images), cam (MMCAM + ObjMaskSingleFill(0.3) only), full (the method's step).
Precisions: fp32, tf32 (TF32 matmuls), bf16 (autocast to bf16, fp32 master weights). Forwards
that need no attention probabilities use scaled_dot_product_attention (PyTorch's fused
kernels), so the yardstick is PyTorch at its eager best.
"""
import argparse
import contextlib
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures"))
from clip_reference import VisionTransformer  # noqa: E402

MODELS = {"tiny": dict(width=64, layers=4, heads=4, patch=4, grid=8, output_dim=64, classes=10),
          "vit-b16": dict(width=768, layers=12, heads=12, patch=16, grid=14, output_dim=512, classes=1000)}


def attend(q, k, v):
    """Attention without keeping the probabilities: PyTorch's fused kernel where it has one
    (2.0 and later). q, k, v: (N, H, T, d)."""
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v)
    return (q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5).softmax(dim=-1) @ v


def fused_forward(model, x):
    """The model's features, with fused attention (no probabilities kept). x: (N, 3, S, S)."""
    x = model.conv1(x).flatten(2).transpose(1, 2)                     # (N, P, width)
    cls = model.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)  # (N, 1, width)
    x = model.ln_pre(torch.cat([cls, x], dim=1) + model.positional_embedding.to(x.dtype))
    N, T, W = x.shape
    for block in model.transformer.resblocks:
        H = block.attn.num_heads
        q, k, v = F.linear(block.ln_1(x), block.attn.in_proj_weight, block.attn.in_proj_bias).chunk(3, dim=-1)
        heads = lambda t: t.reshape(N, T, H, W // H).transpose(1, 2)  # noqa: E731  (N, H, T, d)
        out = attend(heads(q), heads(k), heads(v)).transpose(1, 2).reshape(N, T, W)
        x = x + F.linear(out, block.attn.out_proj.weight, block.attn.out_proj.bias)
        x = x + block.mlp(block.ln_2(x))
    return model.ln_post(x[:, 0, :]) @ model.proj


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="tiny", choices=MODELS)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "bf16"])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads")
    parser.add_argument("--mode", default="infer,ft,ftfd,cam,full")
    args = parser.parse_args()
    if args.device == "cpu" and args.precision != "fp32":
        sys.exit("bench_steps_pytorch.py: tf32 and bf16 are measured on cuda only")
    torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = args.precision == "tf32"
    torch.backends.cudnn.allow_tf32 = args.precision == "tf32"
    device = torch.device(args.device)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if args.precision == "bf16" \
        else contextlib.nullcontext
    torch.manual_seed(0)
    spec = dict(MODELS[args.model])
    classes = spec.pop("classes")
    student = VisionTransformer(**spec).to(device)
    teacher = VisionTransformer(**spec).to(device)
    teacher.load_state_dict(student.state_dict())
    head = torch.nn.Parameter(F.normalize(torch.randn(classes, spec["output_dim"], device=device), dim=-1) * 100)
    size, grid, patch = spec["grid"] * spec["patch"], spec["grid"], spec["patch"]
    images = torch.randn(args.batch, 3, size, size, device=device)
    labels = torch.randint(0, classes, (args.batch,), device=device)
    params = list(student.parameters()) + [head]
    optimizer = torch.optim.AdamW(params, lr=3e-5, weight_decay=0.1)

    def logits_of(features):
        return F.normalize(features.float(), dim=-1) @ head.t()

    def counterfactual(features, attention):
        score = logits_of(features).gather(1, labels[:, None]).sum()
        grads = torch.autograd.grad(score, attention, retain_graph=True)
        T = grid * grid + 1
        R = torch.eye(T, device=device).expand(args.batch, T, T)
        for p, g in zip(attention, grads):
            R = R + (g.float() * p.float()).clamp(min=0).mean(dim=1) @ R
        cam = R[:, 0, 1:]                                                          # (N, P)
        mask = cam / (cam.amax(dim=1, keepdim=True) + 1e-8) > 0.3
        pixels = mask.reshape(-1, 1, grid, 1, grid, 1).expand(-1, 1, grid, patch, grid, patch).reshape(-1, 1, size, size)
        return torch.where(pixels, images[torch.randperm(args.batch, device=device)], images)

    def step(mode):
        with autocast():
            if mode == "infer":
                with torch.no_grad():
                    logits_of(fused_forward(student, images))
                return
            if mode == "cam":
                features, attention = student(images)
                counterfactual(features, attention)
                return
            optimizer.zero_grad()
            if mode == "full":
                features, attention = student(images)
            else:
                features = fused_forward(student, images)
            loss = F.cross_entropy(logits_of(features), labels)
            if mode in ("ftfd", "full"):
                views = counterfactual(features, attention) if mode == "full" else images
                with torch.no_grad():
                    target = fused_forward(teacher, views)
                student_view = fused_forward(student, views) if mode == "full" else features
                loss = loss + 30 * F.mse_loss(student_view.float(), target.float())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()

    def time_ms(mode):
        if args.device == "cpu":
            start = time.perf_counter()
            step(mode)
            return (time.perf_counter() - start) * 1000
        torch.cuda.synchronize()
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step(mode)
        stop.record()
        stop.synchronize()
        return start.elapsed_time(stop)

    threads = f"{args.threads} threads" if args.device == "cpu" else torch.cuda.get_device_name()
    print(f"{'model':10}{'mode':8}{'prec':7}{'device':7}{'batch':>7}{'ms/step':>12}{'images/s':>12}{'peak MiB':>12}"
          f"   (PyTorch {torch.__version__}, {threads})")
    for mode in args.mode.split(","):
        if args.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        for _ in range(args.warmup):
            time_ms(mode)
        times = sorted(time_ms(mode) for _ in range(args.steps))
        median = times[len(times) // 2]
        peak = torch.cuda.max_memory_allocated() / 2**20 if args.device == "cuda" else float("nan")
        print(f"{args.model:10}{mode:8}{args.precision:7}{args.device:7}{args.batch:>7}{median:>12.1f}"
              f"{1000 * args.batch / median:>12.1f}{peak:>12.1f}", flush=True)


if __name__ == "__main__":
    main()
