"""torch's own initialisers, called the way each model's reference code calls them.

Run by tests/init.rs (through `cargo xtask test`, which names the torch venv's python in
HD_TORCH_PYTHON). Reads on stdin

    {"seed": S, "min_samples": N, "layers": [{"rule": R, "kind": K, "weight": SHAPE,
                                              "bias": BOOL, "params": [NAME, ...]}, ...]}

and, for each layer, makes a fresh torch module of that shape, initialises it as rule R's
reference code does, and repeats that (a fresh module each time) until every parameter named has
N values or more. It prints on stdout

    {"layers": [{NAME: {"n", "mean", "std", "kurtosis", "min", "max", "dist"}, ...}, ...]}

where "dist" is what the initialiser called draws from: "uniform", "normal" or "constant".

The rules:
  pytorch  the paper's LogReg and MLP: nn.Linear as constructed.
  vgg      the paper's VGG (pytorch-vgg-cifar10 lineage): every Conv2d
           `n = k*k*out_channels; weight.normal_(0, math.sqrt(2. / n)); bias.zero_()`, nn.Linear
           and nn.BatchNorm2d as constructed.
  resnet   torchvision's ResNet: every Conv2d
           `nn.init.kaiming_normal_(weight, mode="fan_out", nonlinearity="relu")`, BatchNorm2d
           `constant_(weight, 1); constant_(bias, 0)`, nn.Linear as constructed.
  wrn      xternalz/WideResNet-pytorch: Conv2d as vgg (without the bias), BatchNorm2d
           `weight.fill_(1); bias.zero_()`, Linear `bias.zero_()`.
"""

import json
import math
import sys
import warnings

# The venv has no numpy, which torch mentions on import; nothing here needs it.
warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
import torch  # noqa: E402


def linear(rule, weight, bias):
    out_features, in_features = weight
    m = torch.nn.Linear(in_features, out_features, bias=bias)
    dist = {"weight": "uniform", "bias": "uniform"}
    if rule == "wrn":
        m.bias.data.zero_()
        dist["bias"] = "constant"
    elif rule not in ("pytorch", "vgg", "resnet"):
        raise ValueError(f"no linear layers in rule {rule}")
    return m, dist


def conv(rule, weight, bias):
    out_channels, in_channels, kh, kw = weight
    m = torch.nn.Conv2d(in_channels, out_channels, (kh, kw), bias=bias)
    dist = {"weight": "normal", "bias": "uniform"}  # nn.Conv2d's own bias: U(±1/√fan_in)
    if rule in ("vgg", "wrn"):
        n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
        m.weight.data.normal_(0, math.sqrt(2.0 / n))
        if rule == "vgg" and m.bias is not None:
            m.bias.data.zero_()
            dist["bias"] = "constant"
    elif rule == "resnet":
        torch.nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    else:
        raise ValueError(f"no convolutions in rule {rule}")
    return m, dist


def batch_norm(rule, weight, bias):
    (channels,) = weight
    m = torch.nn.BatchNorm2d(channels, affine=bias)
    if rule == "resnet":
        torch.nn.init.constant_(m.weight, 1)
        torch.nn.init.constant_(m.bias, 0)
    elif rule == "wrn":
        m.weight.data.fill_(1)
        m.bias.data.zero_()
    elif rule != "vgg":
        raise ValueError(f"no batch norm in rule {rule}")
    return m, dict.fromkeys(["weight", "bias", "running_mean", "running_var"], "constant")


KINDS = {"linear": linear, "conv": conv, "batch_norm": batch_norm}


class Moments:
    """Running sums of x, x², x³, x⁴ in float64, and the extremes."""

    def __init__(self):
        self.n = 0
        self.sums = [0.0] * 4
        self.min = math.inf
        self.max = -math.inf

    def add(self, t):
        x = t.detach().to(torch.float64).flatten()
        self.n += x.numel()
        p = torch.ones_like(x)
        for i in range(4):
            p = p * x
            self.sums[i] += p.sum().item()
        self.min = min(self.min, x.min().item())
        self.max = max(self.max, x.max().item())

    def stats(self, dist):
        n = self.n
        s1, s2, s3, s4 = (s / n for s in self.sums)
        constant = self.min == self.max
        if constant != (dist == "constant"):
            raise AssertionError(f"a {dist} initialiser drew min {self.min}, max {self.max}")
        if constant:
            mean, var, kurtosis = self.min, 0.0, None
        else:
            mean = s1
            var = max(s2 - mean * mean, 0.0)
            m4 = s4 - 4 * mean * s3 + 6 * mean * mean * s2 - 3 * mean**4
            kurtosis = m4 / (var * var)
        return {
            "n": n,
            "mean": mean,
            "std": math.sqrt(var * n / (n - 1)) if n > 1 else 0.0,
            "kurtosis": kurtosis,
            "min": self.min,
            "max": self.max,
            "dist": dist,
        }


def reference(layer, min_samples):
    make = KINDS[layer["kind"]]
    moments = {name: Moments() for name in layer["params"]}
    while True:
        m, dist = make(layer["rule"], layer["weight"], layer["bias"])
        tensors = dict(m.named_parameters()) | dict(m.named_buffers())
        # A constant needs one draw; anything random, min_samples values.
        wanted = [
            name for name, acc in moments.items() if acc.n == 0 or (acc.n < min_samples and acc.min < acc.max)
        ]
        if not wanted:
            return {name: acc.stats(dist[name]) for name, acc in moments.items()}
        for name in wanted:
            if name not in tensors:
                raise KeyError(f"torch's {type(m).__name__} has no {name}")
            moments[name].add(tensors[name])


def main():
    request = json.load(sys.stdin)
    torch.manual_seed(request["seed"])
    layers = [reference(layer, request["min_samples"]) for layer in request["layers"]]
    json.dump({"torch": torch.__version__, "layers": layers}, sys.stdout)


if __name__ == "__main__":
    main()
