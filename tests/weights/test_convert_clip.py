#!/usr/bin/python3
"""Round trip of weights/convert_clip.py, run by ctest with Debian's PyTorch: a tiny random CLIP
(OpenAI layout as a plain state dict, a TorchScript archive and an open_clip training
checkpoint, and the same weights as HuggingFace directories with model.safetensors or
pytorch_model.bin, CLIPModel or vision-only) is converted, loaded by `cftrain embed`, and the
features are compared with the independent PyTorch reference (tests/fixtures/clip_reference.py);
`cftrain zeroshot-head` makes the zero-shot head of every converted layout that has a text tower
(those towers have CLIP's real vocabulary), compared with the head computed in PyTorch
(zero_shot_head_reference.py) within 1e-4 of its scale, and the logits of `cftrain embed --head`
with it. Malformed input of every kind must be refused in one `error:` line, with no traceback
and no output file. Where HuggingFace transformers is installed, a tiny transformers.CLIPModel is
converted too: `cftrain embed` is compared with its get_image_features and the head with one made
from its get_text_features. Exits 77 (skipped) when PyTorch is not installed.

    test_convert_clip.py --cftrain build/cftrain
"""
import argparse
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback

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
sys.path.insert(0, HERE)
import safetensors_io  # noqa: E402
from clip_reference import TextTransformer, VisionTransformer, perturb_norms_and_biases  # noqa: E402
import convert_clip  # noqa: E402
import zero_shot_head_reference as reference_head  # noqa: E402

CONVERTER = os.path.join(ROOT, "weights", "convert_clip.py")
failures = []


def check(condition, message):
    print(("ok   " if condition else "FAIL ") + message)
    if not condition:
        failures.append(message)


def run(*args):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True)


def convert_in_process(*args):
    """weights/convert_clip.py run in this process, for the many refusals (a process each would
    import PyTorch each time): a CompletedProcess with the exit status and stderr the interpreter
    would give, a traceback included for any exception other than SystemExit."""
    argv, stderr = sys.argv, io.StringIO()
    sys.argv = [CONVERTER] + [str(a) for a in args]
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            convert_clip.main()
        code = 0
    except SystemExit as e:  # sys.exit("error: ...") prints the message and exits with 1
        if isinstance(e.code, str):
            stderr.write(e.code + "\n")
        code = 1 if isinstance(e.code, str) else (e.code or 0)
    except Exception:
        stderr.write(traceback.format_exc())
        code = 1
    finally:
        sys.argv = argv
    return subprocess.CompletedProcess(args, code, "", stderr.getvalue())


def close(a, b, rtol, atol):
    return np.allclose(a, b, rtol=rtol, atol=atol)


def same_tensors(path_a, path_b):
    a, b = safetensors_io.load(path_a), safetensors_io.load(path_b)
    return sorted(a) == sorted(b) and all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)


def embed(cftrain, weights, images, out, *extra):
    """`cftrain embed`; returns (process, features or None)."""
    result = run(cftrain, "embed", "--weights", weights, "--input", images, "--out", out, *extra)
    return result, (np.load(out) if result.returncode == 0 else None)


VOCAB = 49408  # CLIP's: cftrain zeroshot-head tokenizes with the shipped vocabulary
CLASSES = ("cat", "dog", "ca", "hot-dog stand")
TEMPLATES = ("a {}.", "a photo of a {}")


def write_prompts(path):
    """The class-name and template files every head of this test is made from."""
    with open(path("classes.txt"), "w") as f:
        f.write("".join(name + "\n" for name in CLASSES))
    with open(path("templates.txt"), "w") as f:
        f.write("".join(template + "\n" for template in TEMPLATES))


def zeroshot_head(cftrain, path, weights, out):
    """`cftrain zeroshot-head` of the test's classes and templates; returns (process, head or None)."""
    out = path(out)
    result = run(cftrain, "zeroshot-head", "--weights", weights, "--classnames", path("classes.txt"),
                 "--templates", path("templates.txt"), "--out", out)
    return result, (np.load(out) if result.returncode == 0 else None)


def check_head(cftrain, path, weights, out, reference, what):
    """cftrain's head of a converted file equals the reference (float64 PyTorch) within 1e-4 of
    the head's scale, float32 (classes, dim); returns it (or None)."""
    result, head = zeroshot_head(cftrain, path, weights, out)
    error = reference_head.max_error(head, reference) if head is not None and head.shape == reference.shape else None
    good = head is not None and head.dtype == np.float32 and error is not None and error <= 1e-4
    check(good, f"{what}: cftrain zeroshot-head equals the PyTorch head (max |diff| "
          + (f"{error:.1e}" if error is not None else "n/a") + " of the scale)"
          + ("" if good else ": " + result.stderr.strip()))
    return head


def hf_directory(directory, state, weights_file="model.safetensors", heads=1, text_heads=1,
                 vision_only=False, nested=True):
    """The same weights as a HuggingFace directory with a config.json stating every size, as
    transformers writes them: a CLIPModel (vision_config and text_config nested), or with
    vision_only the visual tower alone as CLIPVisionModelWithProjection (its fields at the top
    unless nested; no text model). weights_file is model.safetensors or (older
    transformers) pytorch_model.bin. Returns the config."""
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
    width, _, patch, _ = state["visual.conv1.weight"].shape
    grid = int(round((state["visual.positional_embedding"].shape[0] - 1) ** 0.5))
    layers = 1 + max(int(k.split(".")[3]) for k in state if k.startswith("visual.transformer.resblocks."))
    vision = {"hidden_size": width, "intermediate_size": 4 * width, "num_hidden_layers": layers,
              "num_attention_heads": heads, "patch_size": patch, "image_size": patch * grid,
              "hidden_act": "quick_gelu", "layer_norm_eps": 1e-05}
    projection_dim = state["visual.proj"].shape[1]
    if vision_only:
        hf = {k: v for k, v in hf.items() if k.startswith("vision_model.") or k == "visual_projection.weight"}
        config = {"architectures": ["CLIPVisionModelWithProjection"], "model_type": "clip_vision_model",
                  "projection_dim": projection_dim}
        config.update({"vision_config": vision} if nested else vision)
    else:
        vocab, text_width = state["token_embedding.weight"].shape
        text_layers = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("transformer.resblocks."))
        config = {"architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": projection_dim,
                  "vision_config": vision,
                  "text_config": {"vocab_size": vocab, "max_position_embeddings": state["positional_embedding"].shape[0],
                                  "hidden_size": text_width, "intermediate_size": 4 * text_width,
                                  "num_hidden_layers": text_layers, "num_attention_heads": text_heads,
                                  "hidden_act": "quick_gelu"}}
    if weights_file.endswith(".bin"):
        torch.save(hf, os.path.join(directory, weights_file))
    else:
        safetensors_io.save(os.path.join(directory, weights_file), hf, quiet=True)
    write_json(os.path.join(directory, "config.json"), config)
    return config


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f)


def refused(result, fragment, what, output=None):
    """A refusal as the converter promises it: non-zero exit, one line `error: ...` naming
    `fragment`, no Python traceback, and no output file."""
    lines = result.stderr.strip().splitlines()
    check(result.returncode != 0 and len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0]
          and "Traceback" not in result.stderr and not (output and os.path.exists(output)),
          f"{what} is refused in one line: {result.stderr.strip()!r}")


def refused_by_cftrain(result, fragment, what, output):
    """A refusal by `cftrain zeroshot-head`: non-zero exit, one line `error: ...` naming
    `fragment` (after at most its opening line `zero-shot head: N classes x M templates from
    ...`), and no output file."""
    lines = result.stderr.strip().splitlines()
    check(result.returncode != 0 and len(lines) in (1, 2) and lines[-1].startswith("error: ")
          and fragment in lines[-1] and (len(lines) == 1 or lines[0].startswith("zero-shot head: "))
          and not os.path.exists(output), f"{what} is refused in one error line: {result.stderr.strip()!r}")


CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def check_transformers(cftrain, path):
    """A tiny transformers.CLIPModel, saved as save_pretrained writes it, converts and embeds as
    get_image_features computes, and cftrain's head of the conversion equals the head made from
    get_text_features (only where transformers is installed)."""
    try:
        import transformers
    except ImportError:
        print("note: HuggingFace transformers not installed; skipping the transformers.CLIPModel cross-check")
        return
    # Two heads of 32: the converter records the config's head count for the C++ loader.
    config = transformers.CLIPConfig(
        vision_config=dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
                           patch_size=8, image_size=32, hidden_act="quick_gelu"),
        text_config=dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=128, num_hidden_layers=1,
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
    with torch.no_grad():
        rows = []
        for name in CLASSES:
            ids = torch.tensor(reference_head.tokenizer().tokenize([t.replace("{}", name) for t in TEMPLATES], 16))
            text_features = model.get_text_features(input_ids=ids)
            text_features = getattr(text_features, "pooler_output", text_features)
            rows.append(F.normalize(F.normalize(text_features.double(), dim=-1).mean(dim=0), dim=0))
        reference = (torch.stack(rows) * model.logit_scale.double().exp()).numpy()
    check_head(cftrain, path, path("transformers.safetensors"), "transformers_head.npy", reference,
               "transformers CLIPModel (2 text heads of 16), head from get_text_features")


def check_vision_only(cftrain, path, narrow_state, narrow_features):
    """A vision-only HuggingFace directory (CLIPVisionModelWithProjection: no text model) converts
    to the visual tower with the config's heads, and its model.safetensors also loads directly
    with the config.json beside it; cftrain zeroshot-head refuses it (no text tower)."""
    hf_directory(path("hf_vision"), narrow_state, heads=4, vision_only=True, nested=False)
    result = run(sys.executable, CONVERTER, path("hf_vision"), "--out", path("hf_vision.safetensors"))
    check(result.returncode == 0, "convert a vision-only HuggingFace directory: " + result.stderr.strip())
    converted = safetensors_io.load(path("hf_vision.safetensors")) if result.returncode == 0 else {}
    check(sorted(converted) == sorted(k for k in narrow_state if k.startswith("visual."))
          and safetensors_io.metadata(path("hf_vision.safetensors")).get("heads") == "4"
          and "text_heads" not in safetensors_io.metadata(path("hf_vision.safetensors")),
          "vision-only: the visual tower alone, with the config's 4 heads recorded and no text_heads")
    result = run(sys.executable, CONVERTER, path("hf_vision"), "--out", path("hf_vision_text.safetensors"),
                 "--text-heads", "2")
    refused(result, "--text-heads is given, but the checkpoint has no text tower", "--text-heads for a vision-only model",
            path("hf_vision_text.safetensors"))
    result, features = embed(cftrain, path("hf_vision.safetensors"), path("x.npy"), path("e_vision.npy"))
    check(features is not None and close(features, narrow_features, 1e-5, 1e-6),
          "vision-only conversion: cftrain embed matches the PyTorch reference: " + result.stderr.strip())
    # The same config with the vision fields under vision_config converts to the same file.
    hf_directory(path("hf_vision_nested"), narrow_state, heads=4, vision_only=True, nested=True)
    result = run(sys.executable, CONVERTER, path("hf_vision_nested"), "--out", path("hf_vision_nested.safetensors"))
    check(result.returncode == 0 and same_tensors(path("hf_vision.safetensors"), path("hf_vision_nested.safetensors")),
          "vision-only with vision_config nested converts the same: " + result.stderr.strip())
    # model.safetensors given to cftrain directly: the C++ loader reads config.json beside it.
    result, features = embed(cftrain, os.path.join(path("hf_vision"), "model.safetensors"), path("x.npy"),
                             path("e_direct.npy"))
    check(features is not None and close(features, narrow_features, 1e-5, 1e-6),
          "a HuggingFace model.safetensors loaded directly takes the config's 4 heads: " + result.stderr.strip())
    result, _ = zeroshot_head(cftrain, path, path("hf_vision.safetensors"), "hf_vision_head.npy")
    refused_by_cftrain(result, "CLIP text tower: checkpoint has no 'token_embedding.weight'",
                       "cftrain zeroshot-head of a vision-only conversion", path("hf_vision_head.npy"))


def check_text_heads(cftrain, path, state):
    """Text heads 16 wide (4 of them; width / 64 would be one), stated by a HuggingFace config's
    text_config or given with --text-heads, are recorded, and cftrain's head made with them
    equals PyTorch's."""
    text = TextTransformer(vocab=VOCAB, context=16, width=64, layers=2, heads=4, output_dim=24)
    perturb_norms_and_biases(text)
    text_state = dict(state, **text.state_dict())
    reference = reference_head.zero_shot_head(text_state, 4, CLASSES, TEMPLATES)
    hf_directory(path("hf_text4"), text_state, text_heads=4)
    result = run(sys.executable, CONVERTER, path("hf_text4"), "--out", path("hf_text4.safetensors"))
    check(result.returncode == 0, "convert a HuggingFace directory whose text heads are 16 wide: " + result.stderr.strip())
    check(safetensors_io.metadata(path("hf_text4.safetensors")).get("text_heads") == "4",
          "a HuggingFace config's text_config.num_attention_heads is recorded as text_heads")
    check_head(cftrain, path, path("hf_text4.safetensors"), "hf_text4_head.npy", reference,
               "HuggingFace directory with text_config.num_attention_heads 4")
    # An OpenAI-layout checkpoint: --text-heads, recorded and used for the head.
    torch.save(text_state, path("text4.pt"))
    result = run(sys.executable, CONVERTER, path("text4.pt"), "--out", path("text4.safetensors"), "--text-heads", "4")
    check(result.returncode == 0 and safetensors_io.metadata(path("text4.safetensors")).get("text_heads") == "4",
          "--text-heads is recorded as text_heads: " + result.stderr.strip())
    check_head(cftrain, path, path("text4.safetensors"), "text4_head.npy", reference,
               "OpenAI state dict converted with --text-heads 4")
    result = run(sys.executable, CONVERTER, path("text4.pt"), "--out", path("text3.safetensors"), "--text-heads", "3")
    refused(result, "3 attention heads do not divide the text width 64", "--text-heads that do not divide the width",
            path("text3.safetensors"))


def check_width_96(cftrain, path, images):
    """A width that is not a multiple of 64 (3 heads of 32) needs --heads; recorded, it loads."""
    wide = VisionTransformer(width=96, layers=2, heads=3, patch=8, grid=4, output_dim=24)
    perturb_norms_and_biases(wide)
    torch.save({"visual." + k: v for k, v in wide.state_dict().items()}, path("wide.pt"))
    result = run(sys.executable, CONVERTER, path("wide.pt"), "--out", path("wide_guess.safetensors"))
    refused(result, "the visual width 96 is not a multiple of CLIP's head size 64: give the attention heads with "
            "--heads", "a width not a multiple of 64 without --heads", path("wide_guess.safetensors"))
    result = run(sys.executable, CONVERTER, path("wide.pt"), "--out", path("wide.safetensors"), "--heads", "3")
    check(result.returncode == 0 and safetensors_io.metadata(path("wide.safetensors")).get("heads") == "3",
          "a width of 96 converts with --heads 3: " + result.stderr.strip())
    with torch.no_grad():
        reference = wide(images)[0].numpy()
    result, features = embed(cftrain, path("wide.safetensors"), path("x.npy"), path("e_wide.npy"))
    check(features is not None and close(features, reference, 1e-5, 1e-6),
          "width 96 with 3 recorded heads: cftrain embed matches the PyTorch reference: " + result.stderr.strip())


def check_malformed(cftrain, path, state, narrow_state):
    """Bad input of every kind: one `error:` line, no traceback, no output file. A few cases run
    the converter as a process; the rest run the same code in this process."""
    def refuse(source, fragment, what, *extra, process=False):
        out = path("malformed.safetensors")
        if os.path.exists(out):  # left by a case that was not refused
            os.remove(out)
        if process:
            result = run(sys.executable, CONVERTER, source, "--out", out, *extra)
        else:
            result = convert_in_process(source, "--out", out, *extra)
        refused(result, fragment, what, out)

    def directory(name, **options):
        hf_directory(path(name), narrow_state, heads=4, **options)
        return path(name)

    def edit_weights(source, change):
        weights = os.path.join(source, "model.safetensors")
        tensors = safetensors_io.load(weights)
        change(tensors)
        safetensors_io.save(weights, tensors, quiet=True)

    source = directory("bad_missing")
    edit_weights(source, lambda t: t.pop("vision_model.post_layernorm.bias"))
    refuse(source, "model.safetensors: missing vision_model.post_layernorm.bias", "a missing tensor", process=True)
    source = directory("bad_missing_vision", vision_only=True)
    edit_weights(source, lambda t: t.pop("visual_projection.weight"))
    refuse(source, "missing visual_projection.weight (a CLIPVisionModel without projection",
           "a vision model without projection")
    source = directory("bad_qkv")
    edit_weights(source, lambda t: t.pop("vision_model.encoder.layers.1.self_attn.k_proj.bias"))
    refuse(source, "missing vision_model.encoder.layers.1.self_attn.k_proj.bias", "a missing k projection")
    source = directory("bad_text", vision_only=False)
    edit_weights(source, lambda t: t.pop("text_model.final_layer_norm.weight"))
    refuse(source, "missing text_model.final_layer_norm.weight", "a text tower missing a tensor")
    source = directory("bad_shape")
    edit_weights(source, lambda t: t.update({"vision_model.embeddings.position_embedding.weight": torch.zeros(16, 64)}))
    refuse(source, "position_embedding.weight has shape [16, 64]", "a positional embedding of no square grid")
    source = directory("bad_safetensors")
    with open(os.path.join(source, "model.safetensors"), "wb") as f:
        f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    refuse(source, "model.safetensors: not a readable safetensors file", "a broken model.safetensors")
    source = directory("bad_bin", weights_file="pytorch_model.bin")
    with open(os.path.join(source, "pytorch_model.bin"), "w") as f:
        f.write("not a checkpoint")
    refuse(source, "pytorch_model.bin: not a PyTorch checkpoint", "a broken pytorch_model.bin", process=True)
    source = directory("bad_json")
    with open(os.path.join(source, "config.json"), "w") as f:
        f.write('{"vision_config": {"hidden_size": 64,')
    refuse(source, "config.json: not valid JSON", "a config that is not JSON", process=True)
    source = directory("bad_json_list")
    write_json(os.path.join(source, "config.json"), [1, 2])
    refuse(source, "config.json: not a JSON object", "a config that is not an object")
    # Every field is checked by the C++ loader's test (HuggingFaceConfig); a few of them here.
    for field, value, message in (("hidden_size", 96, "vision_config.hidden_size = 96 contradicts the width 64"),
                                  ("num_hidden_layers", 3, "vision_config.num_hidden_layers = 3 contradicts the layers 2"),
                                  ("num_attention_heads", 5, "vision_config.num_attention_heads = 5 does not divide the width 64"),
                                  ("num_attention_heads", "4", 'vision_config.num_attention_heads = "4" is not a positive integer'),
                                  ("hidden_act", "gelu", 'vision_config.hidden_act = "gelu": only CLIP\'s quick_gelu')):
        source = directory(f"bad_config_{field}_{value}")
        config = json.load(open(os.path.join(source, "config.json")))
        config["vision_config"][field] = value
        write_json(os.path.join(source, "config.json"), config)
        refuse(source, message, f"a config with {field} {value!r}")
    for field, value, message in (("num_hidden_layers", 3, "text_config.num_hidden_layers = 3 contradicts the layers 2"),
                                  ("vocab_size", 49408, "text_config.vocab_size = 49408 contradicts the vocabulary size"),
                                  ("num_attention_heads", 3, "text_config.num_attention_heads = 3 does not divide the text width 64")):
        source = directory(f"bad_text_config_{field}")
        config = json.load(open(os.path.join(source, "config.json")))
        config["text_config"][field] = value
        write_json(os.path.join(source, "config.json"), config)
        refuse(source, message, f"a text_config with {field} {value!r}")
    source = directory("bad_projection_dim")
    config = json.load(open(os.path.join(source, "config.json")))
    config["projection_dim"] = 32
    write_json(os.path.join(source, "config.json"), config)
    refuse(source, "projection_dim = 32 contradicts the projection's output size 24", "a wrong projection_dim")
    source = directory("bad_absent", vision_only=True, nested=False)
    config = json.load(open(os.path.join(source, "config.json")))
    del config["hidden_size"]
    write_json(os.path.join(source, "config.json"), config)
    refuse(source, "hidden_size (absent: transformers' default 768) contradicts the width 64",
           "a config leaving out a size that is not transformers' default")

    # OpenAI-layout state dicts and the options.
    torch.save([1, 2], path("list.pt"))
    refuse(path("list.pt"), "list.pt: does not hold a state dict of tensors", "a checkpoint that is a list")
    torch.save(dict(state, **{"visual.conv1.weight": torch.zeros(64, 3, 8)}), path("conv3d.pt"))
    refuse(path("conv3d.pt"), "visual.conv1.weight has shape [64, 3, 8], expected (width, 3, patch, patch)",
           "a patch embedding of the wrong rank")
    refuse(path("tiny.pt"), "0 attention heads do not divide the visual width 64", "--heads 0", "--heads", "0")
    result = run(sys.executable, CONVERTER, path("tiny.pt"), "--out", path("no_such_dir/x.safetensors"))
    refused(result, "no_such_dir/x.safetensors: no such directory", "an output in a missing directory")
    # The converter's former zero-shot head options are refused with a pointer to cftrain.
    for option in convert_clip.HEAD_OPTIONS:
        refuse(path("tiny.pt"), f"{option}: the converter no longer makes zero-shot heads; convert, then make the "
               "head with `cftrain zeroshot-head --weights", f"the removed option {option}", option, path("x.txt"),
               process=option == "--head-out")
    # The converter keeps a text tower as it finds it; cftrain zeroshot-head refuses an incomplete one.
    torch.save({k: v for k, v in state.items() if k != "ln_final.bias"}, path("text_less.pt"))
    result = run(sys.executable, CONVERTER, path("text_less.pt"), "--out", path("text_less.safetensors"))
    check(result.returncode == 0, "a text tower lacking ln_final.bias converts as it is: " + result.stderr.strip())
    result, _ = zeroshot_head(cftrain, path, path("text_less.safetensors"), "text_less_head.npy")
    refused_by_cftrain(result, "missing: ln_final.bias", "cftrain zeroshot-head of a text tower lacking ln_final.bias",
            path("text_less_head.npy"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cftrain", required=True)
    args = parser.parse_args()
    torch.manual_seed(7)
    work = tempfile.mkdtemp(prefix="convert_clip_")
    path = lambda name: os.path.join(work, name)  # noqa: E731

    write_prompts(path)
    visual = VisionTransformer(width=64, layers=2, heads=1, patch=8, grid=4, output_dim=24)
    text = TextTransformer(vocab=VOCAB, context=16, width=64, layers=2, heads=1, output_dim=24)
    perturb_norms_and_biases(visual)
    perturb_norms_and_biases(text)
    state = {"visual." + k: v for k, v in visual.state_dict().items()}
    state.update(text.state_dict())
    state["logit_scale"] = torch.tensor(2.0)
    torch.save(state, path("tiny.pt"))
    # The head computed in PyTorch (float64) from the weights converted below.
    reference = reference_head.zero_shot_head(state, 1, CLASSES, TEMPLATES)

    result = run(sys.executable, CONVERTER, path("tiny.pt"), "--out", path("tiny.safetensors"))
    check(result.returncode == 0, "convert OpenAI-layout state dict: " + result.stderr.strip())
    check(safetensors_io.metadata(path("tiny.safetensors")).get("text_heads") == "1",
          "the text tower's heads (width 64 / 64) are recorded as text_heads")
    head = check_head(args.cftrain, path, path("tiny.safetensors"), "head.npy", reference, "OpenAI state dict")

    images = torch.randn(4, 3, 32, 32)
    np.save(path("x.npy"), images.numpy())
    with torch.no_grad():
        features = visual(images)[0].numpy()
    logits = F.normalize(torch.from_numpy(features), dim=-1).numpy() @ (head.T if head is not None else 0)
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
    check_head(args.cftrain, path, path("jit.safetensors"), "jit_head.npy", reference, "TorchScript archive")

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
    check_head(args.cftrain, path, path("open_clip.safetensors"), "open_clip_head.npy", reference, "open_clip checkpoint")

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

    # A HuggingFace directory converts to the same tensors.
    hf_directory(path("hf"), state)
    result = run(sys.executable, CONVERTER, path("hf"), "--out", path("hf.safetensors"))
    check(result.returncode == 0, "convert HuggingFace directory: " + result.stderr.strip())
    check(same_tensors(path("tiny.safetensors"), path("hf.safetensors")), "HF conversion equals OpenAI conversion")
    check_head(args.cftrain, path, path("hf.safetensors"), "hf_head.npy", reference, "HuggingFace directory")
    # The same directory as older transformers save it: pytorch_model.bin, no model.safetensors.
    hf_directory(path("hf_bin"), state, "pytorch_model.bin")
    result = run(sys.executable, CONVERTER, path("hf_bin"), "--out", path("hf_bin.safetensors"))
    check(result.returncode == 0, "convert HuggingFace directory with pytorch_model.bin: " + result.stderr.strip())
    check(same_tensors(path("tiny.safetensors"), path("hf_bin.safetensors")), "HF pytorch_model.bin conversion equals OpenAI conversion")
    check_head(args.cftrain, path, path("hf_bin.safetensors"), "hf_bin_head.npy", reference,
               "HuggingFace directory with pytorch_model.bin")

    # Heads that are not 64 wide: given with --heads (OpenAI layout) or by a HuggingFace config,
    # recorded in the file, and used by the C++ loader. These checkpoints (and the many
    # HuggingFace directories made from them below) make no heads: their text tower has a
    # vocabulary of 100, to keep the files small.
    narrow = VisionTransformer(width=64, layers=2, heads=4, patch=8, grid=4, output_dim=24)
    small_text = TextTransformer(vocab=100, context=16, width=64, layers=2, heads=1, output_dim=24)
    perturb_norms_and_biases(narrow)
    perturb_norms_and_biases(small_text)
    narrow_state = {"visual." + k: v for k, v in narrow.state_dict().items()}
    narrow_state.update(small_text.state_dict(), logit_scale=state["logit_scale"])
    torch.save(narrow_state, path("narrow.pt"))
    with torch.no_grad():
        narrow_features = narrow(images)[0].numpy()
    result = run(sys.executable, CONVERTER, path("narrow.pt"), "--out", path("narrow.safetensors"), "--heads", "4")
    check(result.returncode == 0 and safetensors_io.metadata(path("narrow.safetensors")).get("heads") == "4",
          "--heads is recorded in the file: " + result.stderr.strip())
    result, embedded_narrow = embed(args.cftrain, path("narrow.safetensors"), path("x.npy"), path("e_narrow.npy"))
    check(embedded_narrow is not None and close(embedded_narrow, narrow_features, 1e-5, 1e-6),
          "4 heads of 16: features match the PyTorch reference: " + result.stderr.strip())
    hf_directory(path("hf_narrow"), narrow_state, heads=4)
    result = run(sys.executable, CONVERTER, path("hf_narrow"), "--out", path("hf_narrow.safetensors"))
    check(result.returncode == 0 and safetensors_io.metadata(path("hf_narrow.safetensors")).get("heads") == "4",
          "a HuggingFace config's num_attention_heads is recorded: " + result.stderr.strip())
    result = run(sys.executable, CONVERTER, path("narrow.pt"), "--out", path("bad.safetensors"), "--heads", "5")
    check(result.returncode != 0 and "5 attention heads do not divide the visual width 64" in result.stderr
          and not os.path.exists(path("bad.safetensors")), "heads that do not divide the width are refused")

    check_vision_only(args.cftrain, path, narrow_state, narrow_features)
    check_text_heads(args.cftrain, path, state)
    check_width_96(args.cftrain, path, images)
    check_malformed(args.cftrain, path, state, narrow_state)

    check_transformers(args.cftrain, path)

    # Bad input: one clear error line, non-zero exit, no output file.
    result = run(sys.executable, CONVERTER, path("missing.pt"), "--out", path("m.safetensors"))
    refused(result, "missing.pt: no such file", "a missing source")
    with open(path("junk.pt"), "w") as f:
        f.write("not a checkpoint")
    result = run(sys.executable, CONVERTER, path("junk.pt"), "--out", path("j.safetensors"))
    refused(result, "junk.pt: not a TorchScript archive or PyTorch checkpoint", "a non-checkpoint", path("j.safetensors"))

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
