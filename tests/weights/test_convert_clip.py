#!/usr/bin/python3
"""Round trip of weights/convert_clip.py, run by ctest with Debian's PyTorch: a tiny random CLIP
(OpenAI layout as a plain state dict, a TorchScript archive and an open_clip training
checkpoint, and the same weights as HuggingFace directories with model.safetensors or
pytorch_model.bin) is converted, loaded by `cftrain embed`, and the features and zero-shot logits
are compared with the independent PyTorch reference (tests/fixtures/clip_reference.py). Where
HuggingFace transformers is installed, a tiny transformers.CLIPModel is converted too and
`cftrain embed` is compared with its get_image_features. Exits 77 (skipped) when PyTorch is not
installed.

    test_convert_clip.py --cftrain build/cftrain
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError:
    print("PyTorch / NumPy not installed (Debian: python3-torch); skipping")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "weights"))
sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures"))
import safetensors_io  # noqa: E402
from clip_reference import TextTransformer, VisionTransformer, perturb_norms_and_biases  # noqa: E402
from convert_clip import Tokenizer  # noqa: E402

CONVERTER = os.path.join(ROOT, "weights", "convert_clip.py")
failures = []


def check(condition, message):
    print(("ok   " if condition else "FAIL ") + message)
    if not condition:
        failures.append(message)


def run(*args):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True)


def close(a, b, rtol, atol):
    return np.allclose(a, b, rtol=rtol, atol=atol)


def same_tensors(path_a, path_b):
    a, b = safetensors_io.load(path_a), safetensors_io.load(path_b)
    return sorted(a) == sorted(b) and all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)


def embed(cftrain, weights, images, out, *extra):
    """`cftrain embed`; returns (process, features or None)."""
    result = run(cftrain, "embed", "--weights", weights, "--input", images, "--out", out, *extra)
    return result, (np.load(out) if result.returncode == 0 else None)


def write_merges(path):
    # A tiny BPE vocabulary: bytes, their end-of-word forms, and four merges.
    with open(path, "w") as f:
        f.write("#version: 0.2\nc a\nca t</w>\nd o\ndo g</w>\n")


def hf_directory(directory, state, merges, weights_file="model.safetensors", heads=1):
    """The same weights as a HuggingFace CLIPModel directory; weights_file is model.safetensors
    or (older transformers) pytorch_model.bin."""
    os.makedirs(directory)
    hf = {"visual_projection.weight": state["visual.proj"].t(), "logit_scale": state["logit_scale"],
          "text_projection.weight": state["text_projection"].t(),
          "vision_model.embeddings.position_ids": torch.arange(17).reshape(1, -1)}
    renames = {"visual.class_embedding": "vision_model.embeddings.class_embedding",
               "visual.conv1.weight": "vision_model.embeddings.patch_embedding.weight",
               "visual.positional_embedding": "vision_model.embeddings.position_embedding.weight",
               "visual.ln_pre.weight": "vision_model.pre_layrnorm.weight", "visual.ln_pre.bias": "vision_model.pre_layrnorm.bias",
               "visual.ln_post.weight": "vision_model.post_layernorm.weight", "visual.ln_post.bias": "vision_model.post_layernorm.bias",
               "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
               "positional_embedding": "text_model.embeddings.position_embedding.weight",
               "ln_final.weight": "text_model.final_layer_norm.weight", "ln_final.bias": "text_model.final_layer_norm.bias"}
    parts = {"attn.out_proj": "self_attn.out_proj", "ln_1": "layer_norm1", "ln_2": "layer_norm2",
             "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"}
    for name, t in state.items():
        if name in renames:
            hf[renames[name]] = t
            continue
        for tower, target in (("visual.transformer.resblocks.", "vision_model.encoder.layers."),
                              ("transformer.resblocks.", "text_model.encoder.layers.")):
            if name.startswith(tower):
                index, rest = name[len(tower):].split(".", 1)
                prefix = f"{target}{index}."
                if rest.startswith("attn.in_proj_"):
                    kind = rest[len("attn.in_proj_"):]
                    for which, chunk in zip("qkv", t.chunk(3)):
                        hf[f"{prefix}self_attn.{which}_proj.{kind}"] = chunk
                else:
                    module, kind = rest.rsplit(".", 1)
                    hf[f"{prefix}{parts[module]}.{kind}"] = t
                break
    if weights_file.endswith(".bin"):
        torch.save(hf, os.path.join(directory, weights_file))
    else:
        safetensors_io.save(os.path.join(directory, weights_file), hf, quiet=True)
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump({"architectures": ["CLIPModel"],
                   "vision_config": {"hidden_act": "quick_gelu", "num_attention_heads": heads}}, f)
    with open(merges) as src, open(os.path.join(directory, "merges.txt"), "w") as dst:
        dst.write(src.read())


CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def check_transformers(cftrain, path):
    """A tiny transformers.CLIPModel, saved as save_pretrained writes it, converts and embeds as
    get_image_features computes (only where transformers is installed)."""
    try:
        import transformers
    except ImportError:
        print("note: HuggingFace transformers not installed; skipping the transformers.CLIPModel cross-check")
        return
    # Two heads of 32: the converter records the config's head count for the C++ loader.
    config = transformers.CLIPConfig(
        vision_config=dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
                           patch_size=8, image_size=32, hidden_act="quick_gelu"),
        text_config=dict(vocab_size=100, hidden_size=32, intermediate_size=128, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=16, hidden_act="quick_gelu"),
        projection_dim=24)
    model = transformers.CLIPModel(config).eval()
    perturb_norms_and_biases(model)
    model.save_pretrained(path("transformers"))
    result = run(sys.executable, CONVERTER, path("transformers"), "--out", path("transformers.safetensors"))
    check(result.returncode == 0, f"convert transformers {transformers.__version__} save_pretrained directory: "
          + result.stderr.strip())
    pixels = torch.rand(3, 3, 32, 32)
    images = (pixels - torch.tensor(CLIP_MEAN).view(3, 1, 1)) / torch.tensor(CLIP_STD).view(3, 1, 1)
    np.save(path("transformers_x.npy"), images.numpy())
    with torch.no_grad():
        reference = model.get_image_features(pixel_values=images)
    # transformers 5 returns a BaseModelOutputWithPooling whose pooler_output is the projection.
    reference = getattr(reference, "pooler_output", reference).numpy()
    result, features = embed(cftrain, path("transformers.safetensors"), path("transformers_x.npy"), path("transformers_e.npy"))
    check(features is not None and features.shape == reference.shape == (3, 24) and close(features, reference, 1e-4, 1e-5),
          "cftrain embed matches transformers CLIPModel.get_image_features (max |diff| "
          + (f"{np.abs(features - reference).max():.2e}" if features is not None and features.shape == reference.shape
             else "n/a") + "): " + result.stderr.strip())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cftrain", required=True)
    args = parser.parse_args()
    torch.manual_seed(7)
    work = tempfile.mkdtemp(prefix="convert_clip_")
    path = lambda name: os.path.join(work, name)  # noqa: E731

    merges = path("merges.txt")
    write_merges(merges)
    tokenizer = Tokenizer(merges)
    ids = lambda s: tokenizer.encoder[s]  # noqa: E731
    check(tokenizer.encode("A cat, a  DOG!") == [ids("a</w>"), ids("cat</w>"), ids(",</w>"), ids("a</w>"),
                                                 ids("dog</w>"), ids("!</w>")], "tokenizer applies merges, lowercases, splits")
    vocab = len(tokenizer.encoder)

    visual = VisionTransformer(width=64, layers=2, heads=1, patch=8, grid=4, output_dim=24)
    text = TextTransformer(vocab=vocab, context=16, width=64, layers=2, heads=1, output_dim=24)
    perturb_norms_and_biases(visual)
    perturb_norms_and_biases(text)
    state = {"visual." + k: v for k, v in visual.state_dict().items()}
    state.update(text.state_dict())
    state["logit_scale"] = torch.tensor(2.0)
    torch.save(state, path("tiny.pt"))
    with open(path("classes.txt"), "w") as f:
        f.write("cat\ndog\nca\n")
    with open(path("templates.txt"), "w") as f:
        f.write("a {}.\na photo of a {}\n")

    result = run(sys.executable, CONVERTER, path("tiny.pt"), "--out", path("tiny.safetensors"),
                 "--classnames", path("classes.txt"), "--templates", path("templates.txt"),
                 "--head-out", path("head.npy"), "--bpe", merges)
    check(result.returncode == 0, "convert OpenAI-layout state dict: " + result.stderr.strip())

    # Reference head from the independent text tower.
    with torch.no_grad():
        rows = []
        for name in ("cat", "dog", "ca"):
            prompts = [f"a {name}.", f"a photo of a {name}"]
            rows.append(F.normalize(F.normalize(text(tokenizer.tokenize(prompts, 16)), dim=-1).mean(0), dim=0))
        head = (torch.stack(rows) * np.exp(2.0)).numpy()
    converted_head = np.load(path("head.npy"))
    check(converted_head.dtype == np.float32 and converted_head.shape == (3, 24), "head is float32 (3, 24)")
    check(close(converted_head, head, 1e-5, 1e-6), "head matches the reference text tower")

    images = torch.randn(4, 3, 32, 32)
    np.save(path("x.npy"), images.numpy())
    with torch.no_grad():
        features = visual(images)[0].numpy()
    logits = F.normalize(torch.from_numpy(features), dim=-1).numpy() @ converted_head.T
    result, embedded = embed(args.cftrain, path("tiny.safetensors"), path("x.npy"), path("e.npy"),
                             "--head", path("head.npy"), "--logits-out", path("l.npy"))
    check(result.returncode == 0, "cftrain embed on the converted file: " + result.stderr.strip())
    check(embedded is not None and close(embedded, features, 1e-5, 1e-6), "features match the PyTorch reference")
    check(result.returncode == 0 and close(np.load(path("l.npy")), logits, 1e-5, 1e-6), "logits match the PyTorch reference")

    # A TorchScript archive (as OpenAI releases them) converts to the same tensors.
    class Clip(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.visual = visual
            for name, module in text.named_children():
                self.add_module(name, module)
            self.positional_embedding, self.text_projection = text.positional_embedding, text.text_projection
            self.logit_scale = torch.nn.Parameter(state["logit_scale"].clone())

        def forward(self, x):
            return self.visual(x)[0]

    torch.jit.save(torch.jit.trace(Clip(), torch.randn(1, 3, 32, 32), check_trace=False), path("tiny_jit.pt"))
    result = run(sys.executable, CONVERTER, path("tiny_jit.pt"), "--out", path("jit.safetensors"))
    check(result.returncode == 0, "convert TorchScript archive: " + result.stderr.strip())
    check(same_tensors(path("tiny.safetensors"), path("jit.safetensors")), "TorchScript conversion equals state-dict conversion")

    # An open_clip training checkpoint: the state dict under "state_dict" next to the epoch and
    # optimizer, keys "module."-prefixed by DistributedDataParallel.
    torch.save({"epoch": 3, "name": "tiny", "state_dict": {"module." + k: v for k, v in state.items()},
                "optimizer": {"state": {}, "param_groups": []}}, path("open_clip.pt"))
    result = run(sys.executable, CONVERTER, path("open_clip.pt"), "--out", path("open_clip.safetensors"))
    check(result.returncode == 0, "convert open_clip checkpoint: " + result.stderr.strip())
    check(same_tensors(path("tiny.safetensors"), path("open_clip.safetensors")),
          "open_clip conversion equals state-dict conversion (prefix stripped, same names and values)")
    result, open_clip_features = embed(args.cftrain, path("open_clip.safetensors"), path("x.npy"), path("e_oc.npy"))
    check(open_clip_features is not None and embedded is not None and np.array_equal(open_clip_features, embedded),
          "cftrain embed of the open_clip conversion equals the state-dict one: " + result.stderr.strip())

    # f16 storage: the C++ loader widens to f32; compare with the reference on rounded weights.
    result = run(sys.executable, CONVERTER, path("tiny.pt"), "--out", path("tiny16.safetensors"), "--dtype", "f16")
    check(result.returncode == 0, "convert to f16: " + result.stderr.strip())
    check({e["dtype"] for e in safetensors_io.header(path("tiny16.safetensors")).values()} == {"F16"},
          "f16 file stores half precision")
    rounded = VisionTransformer(width=64, layers=2, heads=1, patch=8, grid=4, output_dim=24)
    rounded.load_state_dict({k: v.half().float() for k, v in visual.state_dict().items()})
    with torch.no_grad():
        features16 = rounded(images)[0].numpy()
    result, embedded16 = embed(args.cftrain, path("tiny16.safetensors"), path("x.npy"), path("e16.npy"))
    check(embedded16 is not None and close(embedded16, features16, 1e-5, 1e-6),
          "f16 checkpoint loads and matches the rounded reference")

    # A HuggingFace directory converts to the same tensors, tokenizer included.
    hf_directory(path("hf"), state, merges)
    result = run(sys.executable, CONVERTER, path("hf"), "--out", path("hf.safetensors"), "--classnames",
                 path("classes.txt"), "--templates", path("templates.txt"), "--head-out", path("hf_head.npy"))
    check(result.returncode == 0, "convert HuggingFace directory: " + result.stderr.strip())
    check(same_tensors(path("tiny.safetensors"), path("hf.safetensors")), "HF conversion equals OpenAI conversion")
    check(np.array_equal(np.load(path("hf_head.npy")), converted_head), "HF head equals OpenAI head")
    # The same directory as older transformers save it: pytorch_model.bin, no model.safetensors.
    hf_directory(path("hf_bin"), state, merges, "pytorch_model.bin")
    result = run(sys.executable, CONVERTER, path("hf_bin"), "--out", path("hf_bin.safetensors"))
    check(result.returncode == 0, "convert HuggingFace directory with pytorch_model.bin: " + result.stderr.strip())
    check(same_tensors(path("tiny.safetensors"), path("hf_bin.safetensors")), "HF pytorch_model.bin conversion equals OpenAI conversion")

    # Heads that are not 64 wide: given with --heads (OpenAI layout) or by a HuggingFace config,
    # recorded in the file, and used by the C++ loader.
    narrow = VisionTransformer(width=64, layers=2, heads=4, patch=8, grid=4, output_dim=24)
    perturb_norms_and_biases(narrow)
    narrow_state = dict(state, **{"visual." + k: v for k, v in narrow.state_dict().items()})
    torch.save(narrow_state, path("narrow.pt"))
    with torch.no_grad():
        narrow_features = narrow(images)[0].numpy()
    result = run(sys.executable, CONVERTER, path("narrow.pt"), "--out", path("narrow.safetensors"), "--heads", "4")
    check(result.returncode == 0 and safetensors_io.metadata(path("narrow.safetensors")).get("heads") == "4",
          "--heads is recorded in the file: " + result.stderr.strip())
    result, embedded_narrow = embed(args.cftrain, path("narrow.safetensors"), path("x.npy"), path("e_narrow.npy"))
    check(embedded_narrow is not None and close(embedded_narrow, narrow_features, 1e-5, 1e-6),
          "4 heads of 16: features match the PyTorch reference: " + result.stderr.strip())
    hf_directory(path("hf_narrow"), narrow_state, merges, heads=4)
    result = run(sys.executable, CONVERTER, path("hf_narrow"), "--out", path("hf_narrow.safetensors"))
    check(result.returncode == 0 and safetensors_io.metadata(path("hf_narrow.safetensors")).get("heads") == "4",
          "a HuggingFace config's num_attention_heads is recorded: " + result.stderr.strip())
    result = run(sys.executable, CONVERTER, path("narrow.pt"), "--out", path("bad.safetensors"), "--heads", "5")
    check(result.returncode != 0 and "5 attention heads do not divide the visual width 64" in result.stderr
          and not os.path.exists(path("bad.safetensors")), "heads that do not divide the width are refused")

    check_transformers(args.cftrain, path)

    # Bad input: one clear error line, non-zero exit, no output file.
    result = run(sys.executable, CONVERTER, path("missing.pt"), "--out", path("m.safetensors"))
    check(result.returncode != 0 and "missing.pt: no such file" in result.stderr, "missing source is an error")
    with open(path("junk.pt"), "w") as f:
        f.write("not a checkpoint")
    result = run(sys.executable, CONVERTER, path("junk.pt"), "--out", path("j.safetensors"))
    check(result.returncode != 0 and "junk.pt" in result.stderr and not os.path.exists(path("j.safetensors")),
          "a non-checkpoint is an error")
    result = run(sys.executable, CONVERTER, path("tiny.pt"), "--out", path("x.safetensors"), "--head-out", path("h.npy"))
    check(result.returncode != 0 and "go together" in result.stderr, "head options must come together")
    with open(path("bad_templates.txt"), "w") as f:
        f.write("a photo\n")
    result = run(sys.executable, CONVERTER, path("tiny.pt"), "--out", path("t.safetensors"), "--classnames",
                 path("classes.txt"), "--templates", path("bad_templates.txt"), "--head-out", path("t.npy"), "--bpe", merges)
    check(result.returncode != 0 and "needs a '{}'" in result.stderr and not os.path.exists(path("t.safetensors")),
          "bad head input is refused before the checkpoint is written")

    # Writes are atomic: a write that fails part-way (here: packing the header raises) leaves
    # the file that was there intact and no temporary file behind.
    safetensors_io.save(path("kept.safetensors"), {"x": torch.arange(4.0)}, quiet=True)
    real_pack = safetensors_io.struct.pack

    def failing_pack(*args):
        raise RuntimeError("simulated write failure")

    safetensors_io.struct.pack = failing_pack
    try:
        safetensors_io.save(path("kept.safetensors"), {"x": torch.zeros(4)}, quiet=True)
        check(False, "a failing write raises")
    except RuntimeError:
        pass
    finally:
        safetensors_io.struct.pack = real_pack
    kept = safetensors_io.load(path("kept.safetensors"))
    check(torch.equal(torch.as_tensor(kept["x"]), torch.arange(4.0)),
          "a failed write leaves the old file intact")
    check(not [n for n in os.listdir(work) if ".tmp." in n], "a failed write leaves no temporary file")

    if failures:
        print(f"{len(failures)} check(s) failed; files kept in {work}")
        sys.exit(1)
    shutil.rmtree(work)
    print("all checks passed")


if __name__ == "__main__":
    main()
