"""Minimal safetensors reading and writing with NumPy/PyTorch only (no safetensors package), for
weights/convert_clip.py and the test-fixture scripts."""
import json
import os
import struct

import numpy as np
import torch

TO_FILE = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
           torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL"}
FROM_FILE = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
             "I32": np.int32, "U8": np.uint8, "BOOL": np.bool_}


def save(path, tensors, metadata=None, quiet=False):
    """Writes {name: tensor} (any device, any layout) as safetensors, names sorted."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        raw = t.view(torch.int16) if t.dtype in (torch.float16, torch.bfloat16) else t
        data = raw.numpy().tobytes()
        header[name] = {"dtype": TO_FILE[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"))
    text += " " * ((8 - len(text) % 8) % 8)
    # Written beside the target, synced, then renamed over it: an interrupted write never
    # leaves a partial file under `path`.
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text.encode())
            for blob in blobs:
                f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    if not quiet:
        print(f"wrote {path}: {len(tensors)} tensors, {offset} bytes of data")


def read_header(path):
    """The whole JSON header, "__metadata__" included."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(length))


def header(path):
    """The tensor entries of a safetensors header: {name: {dtype, shape, data_offsets}}."""
    entries = read_header(path)
    entries.pop("__metadata__", None)
    return entries


def metadata(path):
    """The "__metadata__" strings of a safetensors file ({} when it has none)."""
    return read_header(path).get("__metadata__", {})


def load(path):
    """Reads a safetensors file into {name: torch tensor} (BF16 becomes float32)."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        data = f.read()
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        if entry["dtype"] == "BF16":
            words = np.frombuffer(data[begin:end], dtype=np.uint16).astype(np.uint32) << 16
            array = words.view(np.float32)
        else:
            array = np.frombuffer(data[begin:end], dtype=FROM_FILE[entry["dtype"]])
        tensors[name] = torch.from_numpy(array.copy().reshape(entry["shape"]))
    return tensors
