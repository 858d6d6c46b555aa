"""The learning-rate-free peers as their reference packages run them, for tests/peers.rs.

Reads one JSON request on stdin: a list of cases, each
{"optimizer": "prodigy" | "sgd_schedulefree" | "adamw_schedulefree", "kwargs": {...},
 "shapes": [[...], ...], "params": [u32 bits], "grads": [[u32 bits] per step]},
where the f32 values travel as their bit patterns so that nothing is rounded on the way.
Runs each case's optimizer (prodigyopt.Prodigy, schedulefree.SGDScheduleFree or
schedulefree.AdamWScheduleFree) on float32 CPU tensors of those shapes, setting each step's
gradient and calling step(), and writes one JSON line: the packages' versions and, per case,
the parameters after every step (bits), Prodigy's d after every step, and for Schedule-Free
z and the parameters after optimizer.eval() (the evaluation point x) at the end.
"""

import contextlib
import json
import struct
import sys
from importlib.metadata import version

import torch
import prodigyopt
import schedulefree


def floats(bits):
    """The f32 values of these bit patterns, exactly, as Python floats."""
    return list(struct.unpack(f"<{len(bits)}f", struct.pack(f"<{len(bits)}I", *bits)))


def bits(tensors):
    """The bit patterns of the f32 tensors' elements, concatenated in order."""
    values = [v for t in tensors for v in t.detach().reshape(-1).tolist()]
    return list(struct.unpack(f"<{len(values)}I", struct.pack(f"<{len(values)}f", *values)))


def split(values, shapes):
    """Float32 tensors of `shapes` holding `values` one after another."""
    out, at = [], 0
    for shape in shapes:
        n = 1
        for s in shape:
            n *= s
        out.append(torch.tensor(values[at : at + n], dtype=torch.float32).reshape(shape))
        at += n
    return out


def run(case):
    shapes = case["shapes"]
    params = [p.requires_grad_(False) for p in split(floats(case["params"]), shapes)]
    # null stands for the package's default (JSON has no infinity for growth_rate).
    name = case["optimizer"]
    kwargs = {k: v for k, v in case["kwargs"].items() if v is not None}
    if name == "prodigy":
        opt = prodigyopt.Prodigy(params, **kwargs)
    elif name == "sgd_schedulefree":
        opt = schedulefree.SGDScheduleFree(params, **kwargs)
    elif name == "adamw_schedulefree":
        opt = schedulefree.AdamWScheduleFree(params, **kwargs)
    else:
        raise ValueError(f"unknown optimizer {name}")
    schedule_free = name != "prodigy"
    if schedule_free:
        opt.train()  # the parameters hold y while training
    trajectory, d = [], []
    for g in case["grads"]:
        for p, gt in zip(params, split(floats(g), shapes)):
            p.grad = gt
        opt.step()
        trajectory.append(bits(params))
        if not schedule_free:
            d.append(opt.param_groups[0]["d"])
    out = {"params": trajectory, "d": d}
    if schedule_free:
        out["z"] = bits([opt.state[p]["z"] for p in params])
        opt.eval()  # the parameters now hold x
        out["x"] = bits(params)
    return out


def main():
    torch.set_num_threads(1)
    cases = json.load(sys.stdin)
    versions = {m: version(m) for m in ("prodigyopt", "schedulefree", "torch")}
    # Prodigy prints a notice to stdout when it decouples weight decay; stdout is the answer's.
    with contextlib.redirect_stdout(sys.stderr):
        results = [run(c) for c in cases]
    print(json.dumps({"versions": versions, "cases": results}))


if __name__ == "__main__":
    main()
