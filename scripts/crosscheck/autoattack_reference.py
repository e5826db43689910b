"""Runs the reference AutoAttack attacks (fra31/auto-attack) on a robust checkpoint, in PyTorch.

The checkpoint's model.json is executed layer by layer in torch (tfjs_torch.py: TF 'same' padding reproduced), so
both tools attack the same function on the same CIFAR-10 test images. Each attack runs alone on
the clean-correct images, as `robust attack` does; "worst" counts an image robust only if it
survives all of them (AutoAttack's cascade gives the same final number up to randomness).

With --cascade VERSION (standard, plus, rand) it runs AutoAttack itself as its
run_standard_evaluation does: the version's attacks with its settings (set_version), each on the
images still robust, and writes the robust mask after each attack to --out (a JSON file that is
also the resume point: attacks already in it are not run again).

usage: python3 autoattack_reference.py --checkpoint DIR --cifar10 ARCHIVE.tar.gz --autoattack SRC_DIR
                                        [--eps 8/255] [--n 200] [--attacks apgd-ce,apgd-t,square] [--norm Linf]
                                        [--cascade standard --out masks.json] [--bs 250] [--threads 2]
The AutoAttack sources are not part of this project: fetch fra31/auto-attack and pass its folder.
"""
import os
import argparse, hashlib, json, sys, tarfile, time
from fractions import Fraction
import numpy as np
import torch

from tfjs_torch import TfjsModel, load_checkpoint


def cifar10_test(archive, n):
    with tarfile.open(archive) as t:
        member = next(m for m in t.getmembers() if m.name.endswith("test_batch.bin"))
        raw = np.frombuffer(t.extractfile(member).read(), np.uint8).reshape(-1, 3073)[:n]
    x = torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255)
    return x, torch.from_numpy(raw[:, 0].astype(np.int64))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--cifar10", required=True)
    p.add_argument("--autoattack", required=True)
    p.add_argument("--eps", default="8/255")
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--attacks", default="apgd-ce,apgd-t,fab-t,square")
    p.add_argument("--norm", default="Linf")
    p.add_argument("--queries", type=int, default=5000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cascade", help="an AutoAttack version: standard, plus or rand")
    p.add_argument("--out", help="with --cascade: the JSON file of per-attack robust masks")
    p.add_argument("--bs", type=int, default=250)
    # 1 when other jobs share the cores: torch's OpenMP threads spin while they wait for each other
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    sys.path.insert(0, a.autoattack)
    from autoattack.autopgd_base import APGDAttack, APGDAttack_targeted
    from autoattack.square import SquareAttack
    from autoattack.fab_pt import FABAttack_PT

    torch.set_num_threads(a.threads)
    eps = float(Fraction(a.eps))
    model = TfjsModel(*load_checkpoint(a.checkpoint)).eval()
    x, y = cifar10_test(a.cifar10, a.n)
    with torch.no_grad():
        correct = model(x).argmax(1) == y
    if a.cascade:
        return cascade(a, model, x, y, correct, eps)
    xc, yc = x[correct], y[correct]
    result = {"n": a.n, "clean_acc": correct.float().mean().item(), "eps": eps, "norm": a.norm, "attacks": {}}
    robust_all = torch.ones(len(yc), dtype=torch.bool)
    for name in a.attacks.split(","):
        if name in ("apgd-ce", "apgd-dlr"):
            atk = APGDAttack(model, n_restarts=1, n_iter=100, eps=eps, norm=a.norm, rho=0.75, seed=a.seed, device="cpu", loss=name[5:])
        elif name == "apgd-t":
            atk = APGDAttack_targeted(model, n_restarts=1, n_iter=100, eps=eps, norm=a.norm, rho=0.75, seed=a.seed, device="cpu", n_target_classes=9)
        elif name in ("fab", "fab-t"):
            atk = FABAttack_PT(model, n_restarts=1, n_iter=100, eps=eps, seed=a.seed, norm=a.norm, device="cpu", targeted=name == "fab-t", n_target_classes=9)
        elif name == "square":
            atk = SquareAttack(model, p_init=0.8, n_queries=a.queries, eps=eps, norm=a.norm, n_restarts=1, seed=a.seed, device="cpu", resc_schedule=False)
        else:
            raise SystemExit(f"unknown attack {name}")
        t0 = time.time()
        adv = torch.cat([atk.perturb(xc[i:i + 250], yc[i:i + 250]) for i in range(0, len(yc), 250)])
        with torch.no_grad():
            robust = model(adv).argmax(1) == yc
        robust_all &= robust
        result["attacks"][name] = {"robust_acc": robust.sum().item() / a.n, "seconds": round(time.time() - t0, 1)}
        print(json.dumps({name: result["attacks"][name]}), file=sys.stderr, flush=True)
    result["worst_robust_acc"] = robust_all.sum().item() / a.n
    print(json.dumps(result, indent=2))


def save(path, done):
    with open(path + ".tmp", "w") as f:
        json.dump(done, f)
    os.replace(path + ".tmp", path)


def digest(paths):
    """sha-256 over files' bytes, in the order given."""
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def run_settings(a, eps):
    """Everything that changes a cascade's masks: the weights, the images, the attacks' code and settings, the batches (seeds are per batch)."""
    aa = os.path.join(a.autoattack, "autoattack")
    return {
        "weights_sha256": digest([os.path.join(a.checkpoint, f) for f in ("model.json", "weights.bin")]),
        "cifar10_sha256": digest([a.cifar10]),
        "autoattack_sha256": digest(sorted(os.path.join(aa, f) for f in os.listdir(aa) if f.endswith(".py"))),
        "torch": torch.__version__,
        "n": a.n,
        "norm": a.norm,
        "eps": eps,
        "version": a.cascade,
        "seed": a.seed,
        "bs": a.bs,
    }


def cascade(a, model, x, y, correct, eps):
    """AutoAttack's protocol, attack by attack, saving the robust mask after each batch (atomically): a killed run resumes."""
    from autoattack import AutoAttack

    adversary = AutoAttack(model, norm=a.norm, eps=eps, version=a.cascade, device="cpu", seed=a.seed, verbose=False)
    settings = run_settings(a, eps)
    done = json.load(open(a.out)) if a.out and os.path.exists(a.out) else {"n": a.n, "norm": a.norm, "eps": eps, "version": a.cascade, "clean": correct.int().tolist(), "after": {}, "settings": settings}
    # a file of another run would mix two runs' masks: resume only the same one
    if "settings" not in done:
        print(f"{a.out}: written before runs recorded their settings; resuming it as this run's ({a.n} images, eps {eps}, bs {a.bs})", file=sys.stderr)
        done["settings"] = settings
    saved = done["settings"]
    different = ", ".join(f"{k} {saved.get(k)} -> {settings[k]}" for k in settings if saved.get(k) != settings[k])
    if different:
        sys.exit(f"autoattack_reference: {a.out} holds a run with other settings ({different}): give another --out, or delete it to start over")
    robust = correct.clone()
    for name in adversary.attacks_to_run:
        if name in done["after"]:
            robust = torch.tensor(done["after"][name]["robust"], dtype=torch.bool)
            continue
        t0 = time.time()
        # a run killed inside an attack continues at its next batch (the batches and seeds are the same)
        partial = done.get("partial")
        first = 0
        if partial and partial["attack"] == name:
            idx = torch.tensor(partial["robust_before"], dtype=torch.bool).nonzero().squeeze(1)
            robust = torch.tensor(partial["robust"], dtype=torch.bool)
            first = partial["next"]
            t0 -= partial["seconds"]
        else:
            idx = robust.nonzero().squeeze(1)
        before = robust.int().tolist() if first == 0 else partial["robust_before"]
        for start in range(first, len(idx), a.bs):
            at = idx[start:start + a.bs]
            xb, yb = x[at].clone(), y[at].clone()
            if name in ("apgd-ce", "apgd-dlr"):
                adversary.apgd.loss = name[5:]
                adversary.apgd.seed = adversary.get_seed()
                adv = adversary.apgd.perturb(xb, yb)
            elif name == "apgd-t":
                adversary.apgd_targeted.seed = adversary.get_seed()
                adv = adversary.apgd_targeted.perturb(xb, yb)
            elif name in ("fab", "fab-t"):
                adversary.fab.targeted = name == "fab-t"
                if name == "fab-t":
                    adversary.fab.n_restarts = 1
                adversary.fab.seed = adversary.get_seed()
                adv = adversary.fab.perturb(xb, yb)
            elif name == "square":
                adversary.square.seed = adversary.get_seed()
                adv = adversary.square.perturb(xb, yb)
            with torch.no_grad():
                robust[at[model(adv).argmax(1) != yb]] = False
            if a.out:
                done["partial"] = {"attack": name, "next": start + a.bs, "robust_before": before, "robust": robust.int().tolist(), "seconds": round(time.time() - t0, 1)}
                save(a.out, done)
        done.pop("partial", None)
        done["after"][name] = {"robust_acc": robust.sum().item() / a.n, "seconds": round(time.time() - t0, 1), "robust": robust.int().tolist()}
        print(json.dumps({name: {k: v for k, v in done["after"][name].items() if k != "robust"}}), file=sys.stderr, flush=True)
        if a.out:
            save(a.out, done)
    print(json.dumps({"clean_acc": correct.float().mean().item(), **{k: v["robust_acc"] for k, v in done["after"].items()}}, indent=2))


if __name__ == "__main__":
    main()
