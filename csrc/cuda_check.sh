#!/usr/bin/env bash
# Compile-only check of the CUDA sources, for machines without a GPU (or with
# a CPU build of torch): every csrc/**/*.cu is compiled to an object file with
# nvcc against the installed torch headers. Exit 0 and a note when nvcc is
# absent. Usage: csrc/nvcc_check.sh [python] [arch, default 90]
set -euo pipefail
PY=${1:-python3}
ARCH=${2:-90}
NVCC=${NVCC:-$(command -v nvcc || true)}
if [ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ]; then NVCC=/usr/local/cuda/bin/nvcc; fi
if [ -z "$NVCC" ]; then echo "nvcc not found: CUDA compile check skipped"; exit 0; fi
here=$(cd "$(dirname "$0")" && pwd)
read -r TORCH_INC PY_INC ABI < <("$PY" - <<'PYEOF'
import sysconfig, torch
from torch.utils.cpp_extension import include_paths
print(':'.join(include_paths()), sysconfig.get_paths()['include'],
      int(torch._C._GLIBCXX_USE_CXX11_ABI))
PYEOF
)
incs=()
IFS=: read -ra parts <<< "$TORCH_INC"
for p in "${parts[@]}"; do incs+=("-I$p"); done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
status=0
for src in $(find "$here" -name '*.cu' | sort); do
  start=$(date +%s)
  if "$NVCC" -c "$src" -o "$out/$(basename "$src").o" -std=c++20 \
      "${incs[@]}" "-I$PY_INC" "-I$here" -D_GLIBCXX_USE_CXX11_ABI="$ABI" \
      -DC10_CUDA_NO_CMAKE_CONFIGURE_FILE -DTORCH_API_INCLUDE_EXTENSION_H \
      -DWITH_CUDA -D__CUDA_NO_HALF_OPERATORS__ -D__CUDA_NO_HALF_CONVERSIONS__ \
      -D__CUDA_NO_BFLOAT16_CONVERSIONS__ -D__CUDA_NO_HALF2_OPERATORS__ \
      --expt-relaxed-constexpr -Xcompiler -fPIC \
      "-gencode=arch=compute_${ARCH},code=sm_${ARCH}"; then
    echo "ok: ${src#$here/} ($(( $(date +%s) - start )) s)"
  else
    echo "FAILED: ${src#$here/}"; status=1
  fi
done
exit $status
