"""Compares our projection onto the L1 ball ∩ box (JSON from dist/scripts/crosscheck/l1-projection.js)
with the reference L1_projection of fra31/auto-attack (autopgd_base.py, used by its L1-APGD and
Square-L1), and both with the exact projection in float64 (bisection on the soft threshold to
machine precision). Prints the largest differences over all cases.
usage: python3 l1_projection_reference.py CASES.json AUTOATTACK_SRC_DIR"""
import json, sys
import torch

sys.path.insert(0, sys.argv[2])
from autoattack.autopgd_base import L1_projection


def exact(x, delta, eps):
    """d = sign(δ)·min(max(|δ| − λ, 0), cap), λ the smallest ≥ 0 with ‖d‖₁ ≤ eps, in float64."""
    a, cap = delta.abs(), torch.where(delta > 0, 1 - x, x)
    mass = lambda lam: torch.minimum((a - lam).clamp(min=0), cap).sum().item()
    lo, hi = 0.0, a.max().item()
    if mass(0.0) <= eps:
        hi = 0.0
    else:
        for _ in range(200):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if mass(mid) > eps else (lo, mid)
    return delta.sign() * torch.minimum((a - hi).clamp(min=0), cap)


worst = {"ours_vs_reference": 0.0, "ours_vs_exact": 0.0, "reference_vs_exact": 0.0}
for c in json.load(open(sys.argv[1])):
    x, delta = (torch.tensor([c[k]], dtype=torch.float32) for k in ("x", "delta"))
    ref = (delta + L1_projection(x, delta, c["eps"])).double()  # the reference returns the correction
    ours = torch.tensor([c["solution"]], dtype=torch.float64)
    truth = exact(x.double(), delta.double(), c["eps"])
    for k, (p, q) in {"ours_vs_reference": (ours, ref), "ours_vs_exact": (ours, truth), "reference_vs_exact": (ref, truth)}.items():
        worst[k] = max(worst[k], (p - q).abs().max().item())
print(json.dumps(worst))
