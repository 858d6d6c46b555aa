#!/usr/bin/env python3
"""PyTorch's own optimizers and two PyTorch ports of hypergradient descent, timed the way
`hd-native bench step` and `bench throughput` time hd: the peers of BENCHMARKS.md's GPU rows.

  python3 torch_peers.py step --model resnet18 [--device cuda] [--steps 50] [--rounds 5]
  python3 torch_peers.py step --model wrn-28-10
  python3 torch_peers.py throughput [--batch-size 128] [--iters 50] [--rounds 5]

Rows: torch SGD and Adam (fused=True and foreach=True); SGD-HD and Adam-HD as the reference
code (gbaydin/hypergradient-descent) writes them, with a host read (.item()) of the
hypergradient every step (Adam-HD: every tensor, its α updated inside the loop); and SGD-HD,
Adam-HD with foreach kernels and α kept on the device. GB/s uses DESIGN §7's bytes per
parameter (hd-core's `model_bytes_per_parameter`): SGD 12, SGD-HD 24, Adam 28, Adam-HD 40.
The models are hd-native's CIFAR ResNet-18 and WRN-28-10, layer for layer.
"""
import argparse
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

BYTES = {"SGD": 12, "SGD-HD": 24, "Adam": 28, "Adam-HD": 40}


def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride, 1, bias=False)


class Basic(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1, self.b1 = conv3x3(cin, cout, stride), nn.BatchNorm2d(cout)
        self.c2, self.b2 = conv3x3(cout, cout), nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.b1(self.c1(x)))
        y = self.b2(self.c2(y))
        return F.relu(y + (x if self.short is None else self.short(x)))


def resnet18(classes=10):
    layers = [conv3x3(3, 64), nn.BatchNorm2d(64), nn.ReLU()]
    cin = 64
    for stage, width in enumerate([64, 128, 256, 512]):
        for b in range(2):
            layers.append(Basic(cin, width, 2 if stage > 0 and b == 0 else 1))
            cin = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)]
    return nn.Sequential(*layers)


class Wide(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.b1, self.c1 = nn.BatchNorm2d(cin), conv3x3(cin, cout, stride)
        self.b2, self.c2 = nn.BatchNorm2d(cout), conv3x3(cout, cout)
        self.short = nn.Conv2d(cin, cout, 1, stride, bias=False) if stride != 1 or cin != cout else None

    def forward(self, x):
        a = F.relu(self.b1(x))
        y = self.c2(F.relu(self.b2(self.c1(a))))
        return y + (x if self.short is None else self.short(a))


def wrn(depth=28, width=10, classes=10):
    n = (depth - 4) // 6
    layers, cin = [conv3x3(3, 16)], 16
    for group, base in enumerate([16, 32, 64]):
        for b in range(n):
            layers.append(Wide(cin, base * width, 2 if group > 0 and b == 0 else 1))
            cin = base * width
    layers += [nn.BatchNorm2d(cin), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)]
    return nn.Sequential(*layers)


class SgdHdReference(torch.optim.Optimizer):
    """SGDHD of the reference code: flat gradient, h = g·d_{t-1} read to the host, α += β h."""

    def __init__(self, params, lr, hypergrad_lr):
        super().__init__(params, dict(lr=lr, hypergrad_lr=hypergrad_lr))
        self._params = self.param_groups[0]["params"]

    @torch.no_grad()
    def step(self):
        group = self.param_groups[0]
        grad = torch.cat([p.grad.reshape(-1) for p in self._params])
        state = self.state[self._params[0]]
        if "grad_prev" not in state:
            state["grad_prev"] = torch.zeros_like(grad)
        h = torch.dot(grad, state["grad_prev"]).item()
        group["lr"] += group["hypergrad_lr"] * h
        state["grad_prev"] = grad
        offset = 0
        for p in self._params:
            n = p.numel()
            p.add_(grad[offset:offset + n].view_as(p), alpha=-group["lr"])
            offset += n


class AdamHdReference(torch.optim.Optimizer):
    """AdamHD of the reference code: per tensor, h read to the host and α updated in the loop."""

    def __init__(self, params, lr, hypergrad_lr, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, dict(lr=lr, hypergrad_lr=hypergrad_lr, betas=betas, eps=eps))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                grad = p.grad
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                m, v = state["exp_avg"], state["exp_avg_sq"]
                state["step"] += 1
                t = state["step"]
                if t > 1:
                    bc1, bc2 = 1 - beta1 ** (t - 1), 1 - beta2 ** (t - 1)
                    d = m / (v.sqrt() + group["eps"])
                    h = torch.dot(grad.reshape(-1), d.reshape(-1)).item() * math.sqrt(bc2) / bc1
                    group["lr"] += group["hypergrad_lr"] * h
                m.mul_(beta1).add_(grad, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = v.sqrt().add_(group["eps"])
                step = group["lr"] * math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
                p.addcdiv_(m, denom, value=-step)


class SgdHdForeach:
    """SGD-HD with foreach kernels and α a device tensor: no host read."""

    def __init__(self, params, lr, beta):
        self.params = [p for p in params]
        self.alpha = torch.tensor(lr, device=self.params[0].device)
        self.beta = beta
        self.prev = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self, set_to_none=True):
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self):
        grads = [p.grad for p in self.params]
        h = torch.stack([(g * d).sum() for g, d in zip(grads, self.prev)]).sum()
        self.alpha.add_(h, alpha=self.beta)
        torch._foreach_add_(self.params, torch._foreach_mul(grads, -self.alpha))
        torch._foreach_copy_(self.prev, grads)


class AdamHdForeach:
    """Adam-HD with foreach kernels and α a device tensor; d_{t-1} recomputed from m, v."""

    def __init__(self, params, lr, beta, betas=(0.9, 0.999), eps=1e-8):
        self.params = [p for p in params]
        self.alpha = torch.tensor(lr, device=self.params[0].device)
        self.beta, (self.b1, self.b2), self.eps = beta, betas, eps
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.t = 0

    def zero_grad(self, set_to_none=True):
        for p in self.params:
            p.grad = None

    def direction(self, t):
        bc1, bc2 = 1 - self.b1 ** t, 1 - self.b2 ** t
        den = torch._foreach_add(torch._foreach_sqrt(torch._foreach_mul(self.v, 1 / bc2)), self.eps)
        return torch._foreach_div(torch._foreach_mul(self.m, 1 / bc1), den)

    @torch.no_grad()
    def step(self):
        grads = [p.grad for p in self.params]
        self.t += 1
        if self.t > 1:
            d = self.direction(self.t - 1)
            h = torch.stack([(g * x).sum() for g, x in zip(grads, d)]).sum()
            self.alpha.add_(h, alpha=self.beta)
        torch._foreach_mul_(self.m, self.b1)
        torch._foreach_add_(self.m, grads, alpha=1 - self.b1)
        torch._foreach_mul_(self.v, self.b2)
        torch._foreach_addcmul_(self.v, grads, grads, value=1 - self.b2)
        torch._foreach_add_(self.params, torch._foreach_mul(self.direction(self.t), -self.alpha))


def contenders(params, which):
    lr = 1e-3
    table = {
        "torch SGD fused": ("SGD", lambda: torch.optim.SGD(params, lr=lr, fused=True)),
        "torch SGD foreach": ("SGD", lambda: torch.optim.SGD(params, lr=lr, foreach=True)),
        "torch Adam fused": ("Adam", lambda: torch.optim.Adam(params, lr=lr, fused=True)),
        "torch Adam foreach": ("Adam", lambda: torch.optim.Adam(params, lr=lr, foreach=True)),
        "SGD-HD reference port (.item())": ("SGD-HD", lambda: SgdHdReference(params, lr, 1e-3)),
        "SGD-HD foreach, α on device": ("SGD-HD", lambda: SgdHdForeach(params, lr, 1e-3)),
        "Adam-HD reference port (.item())": ("Adam-HD", lambda: AdamHdReference(params, lr, 1e-7)),
        "Adam-HD foreach, α on device": ("Adam-HD", lambda: AdamHdForeach(params, lr, 1e-7)),
    }
    return [(name, table[name][0], table[name][1]) for name in which]


STEP_ROWS = [
    "torch SGD fused", "torch SGD foreach", "torch Adam fused", "torch Adam foreach",
    "SGD-HD reference port (.item())", "SGD-HD foreach, α on device",
    "Adam-HD reference port (.item())", "Adam-HD foreach, α on device",
]
THROUGHPUT_ROWS = [
    "torch SGD foreach", "SGD-HD foreach, α on device", "torch Adam fused",
    "Adam-HD foreach, α on device", "Adam-HD reference port (.item())",
]


def build(model, device):
    torch.manual_seed(0)
    net = resnet18() if model == "resnet18" else wrn()
    return net.to(device)


def step_bench(args):
    device = torch.device(args.device)
    rows = []
    for name, rule, make in contenders(None, STEP_ROWS):
        net = build(args.model, device)
        params = [p for p in net.parameters() if p.requires_grad]
        n = sum(p.numel() for p in params)
        for p in params:
            p.grad = torch.randn_like(p) * 1e-3
        opt = contenders(params, [name])[0][2]()
        times = []
        for r in range(args.rounds + 1):
            torch.cuda.synchronize(device)
            total = 0.0
            for _ in range(args.steps):
                torch.cuda.synchronize(device)
                t0 = time.perf_counter()
                opt.step()
                torch.cuda.synchronize(device)
                total += time.perf_counter() - t0
            if r > 0:
                times.append(total / args.steps)
        t = statistics.median(times)
        rows.append((name, t, BYTES[rule] * n / t / 1e9))
    print(f"PyTorch peers, optimizer step, {args.model} parameter set ({n} parameters), "
          f"{torch.cuda.get_device_name(device)}, median of {args.rounds} rounds of {args.steps} steps\n")
    print("| optimizer | ms/step | GB/s (§7 bytes) |\n|---|---:|---:|")
    for name, t, gbs in rows:
        print(f"| {name} | {t * 1e3:.3f} | {gbs:.0f} |")


def throughput_bench(args):
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    g = torch.Generator(device="cpu").manual_seed(0)
    images = torch.randn(args.batch_size * args.iters, 3, 32, 32, generator=g).to(device)
    labels = torch.randint(0, 10, (args.batch_size * args.iters,), generator=g).to(device)
    runs = []
    for name, _, _ in contenders(None, THROUGHPUT_ROWS):
        net = build("resnet18", device)
        net.train()
        params = [p for p in net.parameters() if p.requires_grad]
        opt = contenders(params, [name])[0][2]()
        rates = []
        for r in range(args.rounds + 1):
            perm = torch.randperm(len(labels), device=device)
            torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            for i in range(args.iters):
                idx = perm[i * args.batch_size:(i + 1) * args.batch_size]
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(net(images[idx]), labels[idx])
                loss.backward()
                opt.step()
            torch.cuda.synchronize(device)
            if r > 0:
                rates.append(args.batch_size * args.iters / (time.perf_counter() - t0))
        runs.append((name, statistics.median(rates)))
    print(f"PyTorch peers, training throughput, ResNet-18 on CIFAR-10-shaped data, batch "
          f"{args.batch_size}, {torch.cuda.get_device_name(device)}, median of {args.rounds} rounds "
          f"of {args.iters} iterations\n")
    print("| optimizer | images/s |\n|---|---:|")
    for name, rate in runs:
        print(f"| {name} | {rate:.0f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    s = sub.add_parser("step")
    s.add_argument("--model", choices=["resnet18", "wrn-28-10"], default="resnet18")
    s.add_argument("--steps", type=int, default=50)
    t = sub.add_parser("throughput")
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--iters", type=int, default=50)
    for p in (s, t):
        p.add_argument("--device", default="cuda")
        p.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("torch_peers.py: no CUDA device visible")
    step_bench(args) if args.what == "step" else throughput_bench(args)


if __name__ == "__main__":
    main()
