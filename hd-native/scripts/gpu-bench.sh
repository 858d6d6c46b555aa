#!/usr/bin/env bash
# hd-native's GPU benchmark in one call: ResNet-18 on CIFAR-shaped data, optimizer step time
# (next to libtorch's own SGD and Adam) and training throughput (images/s) for every optimizer.
#
# Meant for a CUDA machine that has torch 2.11 installed with pip but no network:
#   here:   cargo xtask native -- --version        # builds target/release/hd-native
#           copy target/release/hd-native and this script to the GPU machine
#   there:  bash gpu-bench.sh ./hd-native [cuda:N] > gpu-bench.md
#
# The binary's rpath points at this project's libtorch cache, which the GPU machine lacks;
# LD_LIBRARY_PATH (searched first) points it at that machine's torch/lib instead. A binary built
# on Debian 12 needs glibc 2.34 and GCC 11's libstdc++ or newer there (Ubuntu 22.04 or later);
# on an older system, build it there instead.
set -euo pipefail

BIN=${1:-./hd-native}
DEVICE=${2:-cuda}
PYTHON=${PYTHON:-python3}

TORCH_LIB=$("$PYTHON" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

"$PYTHON" - <<'PY'
import torch
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU visible'}")
if not torch.__version__.startswith("2.11."):
    print("warning: hd-native is built against torch 2.11.0; other versions may not load")
PY
echo

if ! "$BIN" --version >/dev/null 2>&1; then
    echo "error: $BIN does not start here:" >&2
    "$BIN" --version >&2 || true
    exit 1
fi

"$BIN" bench step --device "$DEVICE" --model resnet18 --steps 50 --rounds 5
echo
"$BIN" bench throughput --device "$DEVICE" --model resnet18 --dataset cifar10 \
    --batch-size 128 --iters 50 --rounds 5
