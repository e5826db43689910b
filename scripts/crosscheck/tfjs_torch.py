"""A robust checkpoint (a TF.js functional LayersModel: model.json + weight shards) executed layer
by layer in PyTorch, so reference implementations run on the very function robust computes.

Imported by autoattack_reference.py and gradient_reference.py (run from this folder, or with it on
sys.path). Only the layer classes robust's zoo is built from are supported; anything else stops.
"""
import json, math
import numpy as np
import torch
import torch.nn.functional as F


def load_checkpoint(folder):
    """The model's config and its weights by name (float32, as stored)."""
    with open(f"{folder}/model.json") as f:
        j = json.load(f)
    specs = [w for g in j["weightsManifest"] for w in g["weights"]]
    data = b"".join(open(f"{folder}/{p}", "rb").read() for g in j["weightsManifest"] for p in g["paths"])
    weights, offset = {}, 0
    for s in specs:
        if s.get("dtype", "float32") != "float32" or "quantization" in s:
            raise SystemExit(f"weight {s['name']}: only plain float32 weights are supported by this script")
        n = int(np.prod(s["shape"]))
        weights[s["name"]] = torch.from_numpy(np.frombuffer(data, "<f4", n, offset).reshape(s["shape"]).copy())
        offset += 4 * n
    if offset != len(data):
        raise SystemExit(f"{folder}: the weight files hold {len(data)} bytes, the manifest {offset}")
    return j["modelTopology"]["config"], weights


def same_pad(x, k, s, d):
    """TF 'same' padding (more at the bottom/right when the total is odd)."""
    pads = []
    for size, kk, ss, dd in ((x.shape[3], k[1], s[1], d[1]), (x.shape[2], k[0], s[0], d[0])):
        total = max((math.ceil(size / ss) - 1) * ss + (kk - 1) * dd + 1 - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class TfjsModel(torch.nn.Module):
    """A robust/TF.js functional LayersModel (NHWC) as an NCHW torch module in inference mode.

    `dtype` is the precision it computes in: float32 as TF.js does, or float64 for a reference
    whose own rounding is negligible next to float32's (the weights are converted exactly)."""

    def __init__(self, config, weights, dtype=torch.float32):
        super().__init__()
        self.layers, self.dtype = config["layers"], dtype
        self.w = {k: v.to(dtype) for k, v in weights.items()}
        self.outputs = [o[0] for o in config["output_layers"]]
        # TF kernels [kh, kw, in, out] → torch [out, in, kh, kw], made contiguous once (a permuted
        # view sends conv2d down a path ~10× slower)
        for l in self.layers:
            if l["class_name"] == "Conv2D":
                k = f'{l["name"]}/kernel'
                self.w[k] = self.w[k].permute(3, 2, 0, 1).contiguous()

    def activation(self, x, name):
        if name in (None, "linear"):
            return x
        if name in ("relu", "softmax"):
            return F.relu(x) if name == "relu" else F.softmax(x, 1)
        raise SystemExit(f"activation {name} is not supported by this script")

    def forward(self, x):
        out = {}
        for l in self.layers:
            c, n, cls = l["config"], l["name"], l["class_name"]
            ins = [out[r[0]] for call in l["inbound_nodes"] for r in call]
            w = lambda k: self.w[f"{n}/{k}"]
            if cls == "InputLayer":
                y = x
            elif cls == "Rescaling":
                shape = (1, -1, 1, 1)
                y = ins[0] * torch.tensor(c["scale"], dtype=self.dtype).reshape(shape) + torch.tensor(c["offset"], dtype=self.dtype).reshape(shape)
            elif cls == "Conv2D":
                k, s, d = c["kernel_size"], c["strides"], c["dilation_rate"]
                xi = same_pad(ins[0], k, s, d) if c["padding"] == "same" else ins[0]
                y = F.conv2d(xi, w("kernel"), w("bias") if c["use_bias"] else None, s, 0, d)
                y = self.activation(y, c["activation"])
            elif cls == "BatchNormalization":
                y = F.batch_norm(ins[0], w("moving_mean"), w("moving_variance"), w("gamma"), w("beta"), False, 0.0, c["epsilon"])
            elif cls == "ReLU":
                y = F.relu(ins[0])
            elif cls == "Activation":
                y = self.activation(ins[0], c["activation"])
            elif cls == "Add":
                y = sum(ins)
            elif cls == "Dropout":
                y = ins[0]
            elif cls == "GlobalAveragePooling2D":
                y = ins[0].mean((2, 3))
            elif cls == "Dense":
                y = self.activation(ins[0] @ w("kernel") + w("bias"), c["activation"])
            else:
                raise SystemExit(f"layer class {cls} is not supported by this script")
            out[n] = y
        return out[self.outputs[0]]
