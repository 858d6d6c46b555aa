#!/usr/bin/env bash
# Runs the hd-native binary that sits next to this script against the torch wheel of $PYTHON
# (default python3): libtorch from torch/lib (LD_LIBRARY_PATH, searched before the binary's
# build-machine rpath) and, for the fused GPU kernels, NVRTC from the wheel's nvidia/cu13/lib
# (HD_NVRTC). `cargo xtask gpu-bundle DIR` puts both files in DIR.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PYTHON=${PYTHON:-python3}
PATHS=$("$PYTHON" -W ignore -c 'import glob, os, torch
site = os.path.dirname(os.path.dirname(torch.__file__))
print(os.path.join(os.path.dirname(torch.__file__), "lib"))
found = sorted(glob.glob(os.path.join(site, "nvidia", "*", "lib", "libnvrtc.so.*")))
print(found[-1] if found else "")')
TORCH_LIB=$(sed -n 1p <<<"$PATHS")
NVRTC=$(sed -n 2p <<<"$PATHS")
export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [[ -z "${HD_NVRTC:-}" && -n "$NVRTC" && -e "$NVRTC" ]]; then
    export HD_NVRTC="$NVRTC"
fi
exec "$HERE/hd-native" "$@"
