"""Compares our FAB projections (JSON from dist/scripts/crosscheck/fab-projections.js) with the
reference fab_projections.py of fra31/auto-attack; prints the largest difference per norm.
usage: python3 fab_projections_reference.py CASES.json AUTOATTACK_SRC_DIR"""
import json, sys
import torch

sys.path.insert(0, sys.argv[2])
from autoattack.fab_projections import projection_l1, projection_l2, projection_linf

worst = {}
for c in json.load(open(sys.argv[1])):
    t, w, b = (torch.tensor([v], dtype=torch.float64) for v in (c["t"], c["w"], c["b"]))
    for norm, f in (("linf", projection_linf), ("l2", projection_l2), ("l1", projection_l1)):
        diff = (f(t.clone(), w.clone(), b.clone())[0] - torch.tensor(c["solutions"][norm], dtype=torch.float64)).abs().max().item()
        worst[norm] = max(worst.get(norm, 0.0), diff)
print(json.dumps(worst))
