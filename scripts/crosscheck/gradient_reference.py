"""What every attack steps on, computed by PyTorch on a robust checkpoint: logits, the input
gradient of the cross-entropy loss, FGSM and PGD (Linf, no random start). The test
test/crosscheck/pytorch.test.ts compares robust's with these; the files are .npy both ways.

In DIR (from the caller): x.npy, N×H×W×C float32 images in [0,1] (exactly the tensor robust
attacks), y.npy, N integer labels, and optionally pgd.npy, STEPS+1 × M×H×W×C float32: robust's
PGD iterates x_0 … x_STEPS on the first M images. Written to DIR:

  logits.npy      N×K float64
  grad.npy        N×H×W×C float64, d CE(f(x), y) / dx per image
  fgsm.npy        N×H×W×C float32, x stepped by eps·sign(grad), projected as robust projects
  pgd.npy present, at each of robust's iterates (so a difference at step k is that step's, not
  carried over from the steps before):
  pgd_next.npy    STEPS × M×H×W×C float32: one PGD step from x_0 … x_STEPS-1
  pgd_grad.npy    STEPS × M×H×W×C float64: the gradient that step took
  pgd_logits.npy  STEPS+1 × M×K float64: the logits at x_0 … x_STEPS

Logits, gradient and FGSM are computed in float64 by default (the weights and images are float32
values, converted exactly): a reference whose own rounding is ~1e-16, so what differs is robust's
float32 error. PGD's model runs in float32 by default, as PyTorch users run it: Debian's torch
has no fast float64 convolution (generic BLAS; a float64 gradient is ~13× slower), and a step
only looks at the gradient's signs. Steps are taken in float32 by the same operations robust
uses (x + alpha·sign(g), delta clipped to [-eps, eps], clipped to [0,1]), so equal signs give
bit-identical images.

usage: python3 gradient_reference.py --checkpoint DIR --dir DIR [--eps 8/255] [--alpha 2/255]
                                     [--dtype float64] [--pgd-dtype float32] [--threads 1]
"""
import argparse, os
from fractions import Fraction
import numpy as np
import torch

from tfjs_torch import TfjsModel, load_checkpoint


def ce_input_gradient(model, x, y):
    """d CE / dx per image (NCHW), and the logits. The gradient on the logits is softmax − one-hot
    with its true entry written as −Σ_{j≠y} p_j, as robust's loss does: p_y − 1 cancels on
    confident images."""
    x = x.clone().requires_grad_(True)
    z = model(x)
    with torch.no_grad():
        p = torch.softmax(z, 1)
        onehot = torch.nn.functional.one_hot(y, z.shape[1]).to(p.dtype)
        others = p * (1 - onehot)
        gz = others - onehot * others.sum(1, keepdim=True)
    (g,) = torch.autograd.grad(z, x, gz)
    return g, z.detach()


def linf_step(x0, xk, g, alpha, eps):
    """robust's Linf step in float32: x_k + alpha·sign(g), delta to x0 clipped to eps, then to [0,1]."""
    moved = xk + np.sign(g).astype(np.float32) * np.float32(alpha)
    delta = np.clip(moved - x0, np.float32(-eps), np.float32(eps))
    return np.clip(x0 + delta, np.float32(0), np.float32(1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--eps", default="8/255")
    p.add_argument("--alpha", default="2/255")
    p.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    p.add_argument("--pgd-dtype", default="float32", choices=["float64", "float32"])
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    eps, alpha = float(Fraction(a.eps)), float(Fraction(a.alpha))
    checkpoint = load_checkpoint(a.checkpoint)
    model = TfjsModel(*checkpoint, dtype=getattr(torch, a.dtype)).eval()
    path = lambda name: os.path.join(a.dir, name)
    x = np.load(path("x.npy"))
    y = torch.from_numpy(np.load(path("y.npy")).astype(np.int64))
    if x.dtype != np.float32 or x.ndim != 4 or len(x) != len(y):
        raise SystemExit(f"x.npy must be N×H×W×C float32 with one label each in y.npy, got {x.dtype} {x.shape} and {tuple(y.shape)}")

    nchw = lambda arr, m: torch.from_numpy(arr).permute(0, 3, 1, 2).to(m.dtype)
    nhwc = lambda t: t.permute(0, 2, 3, 1).contiguous().numpy()
    g, z = ce_input_gradient(model, nchw(x, model), y)
    g = nhwc(g)
    np.save(path("logits.npy"), z.double().numpy())
    np.save(path("grad.npy"), g.astype(np.float64))
    np.save(path("fgsm.npy"), linf_step(x, x, g, eps, eps))

    if os.path.exists(path("pgd.npy")):
        iterates = np.load(path("pgd.npy"))
        m = iterates.shape[1] if iterates.ndim == 5 else 0
        if iterates.dtype != np.float32 or len(iterates) < 2 or not 0 < m <= len(x) or iterates.shape[2:] != x.shape[1:]:
            raise SystemExit(f"pgd.npy must be (steps+1)×M×{x.shape[1:]} float32 with M ≤ {len(x)}, got {iterates.dtype} {iterates.shape}")
        x0, ym = x[:m], y[:m]
        model = TfjsModel(*checkpoint, dtype=getattr(torch, a.pgd_dtype)).eval()
        nxt, grads, logits = [], [], []
        for xk in iterates[:-1]:
            g, z = ce_input_gradient(model, nchw(xk, model), ym)
            grads.append(nhwc(g).astype(np.float64))
            logits.append(z.double().numpy())
            nxt.append(linf_step(x0, xk, grads[-1], alpha, eps))
        with torch.no_grad():
            logits.append(model(nchw(iterates[-1], model)).double().numpy())
        np.save(path("pgd_next.npy"), np.stack(nxt))
        np.save(path("pgd_grad.npy"), np.stack(grads))
        np.save(path("pgd_logits.npy"), np.stack(logits))


if __name__ == "__main__":
    main()
