#!/usr/bin/env bash
# Compile check of the CUDA build, for machines without a GPU (or with a CPU
# build of torch), against the installed torch headers:
#   * every C++ source that setup.py builds is syntax-checked with -DWITH_CUDA
#     by the host compiler ($CXX, default c++), with the CUDA toolkit's
#     include folder (for cuda.h);
#   * every CUDA source that setup.py builds is compiled to an object file by
#     nvcc for one GPU architecture.
# Sources and flags come from setup.py (cpp_sources, cuda_sources, CXX_FLAGS,
# NVCC_FLAGS) plus the defines that torch's BuildExtension adds; a .cpp or .cu
# under csrc/ that setup.py does not build is an error. Without nvcc the check
# is skipped with a note (exit 0).
# Usage: csrc/cuda_check.sh [python] [arch, default 90]   (make cuda-check)
set -euo pipefail
PY=${1:-python3}
ARCH=${2:-90}
NVCC=${NVCC:-$(command -v nvcc || true)}
if [ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ]; then NVCC=/usr/local/cuda/bin/nvcc; fi
if [ -z "$NVCC" ]; then echo "nvcc not found: CUDA compile check skipped"; exit 0; fi
# The toolkit's include folder (cuda.h): $CUDA_INC, $CUDA_HOME/include, or
# where nvcc itself looks (it may be a wrapper script on the PATH).
cuda_top=$("$NVCC" --dryrun -c -x cu /dev/null -o /dev/null 2>&1 |
           sed -n 's/^#\$ TOP=//p' | head -n 1 || true)
for inc in "${CUDA_INC:-}" "${CUDA_HOME:+$CUDA_HOME/include}" \
           "${cuda_top:+$cuda_top/include}" \
           "$(dirname "$(readlink -f "$NVCC")")/../include" /usr/local/cuda/include; do
  if [ -n "$inc" ] && [ -f "$inc/cuda.h" ]; then CUDA_INC=$inc; break; fi
done
if [ -z "${CUDA_INC:-}" ] || [ ! -f "$CUDA_INC/cuda.h" ]; then
  echo "FAILED: cuda.h not found next to $NVCC (set CUDA_INC or CUDA_HOME)"
  exit 1
fi
CXX=${CXX:-c++}
cd "$(dirname "$0")/.."
t0=$(date +%s)

# Shell arrays CPP_SRCS, CU_SRCS, CXX_ARGS, NVCC_ARGS, from setup.py and torch.
eval "$("$PY" - <<'PYEOF'
import runpy, shlex, sysconfig
import torch
from torch.utils.cpp_extension import COMMON_NVCC_FLAGS, include_paths
s = runpy.run_path('setup.py', run_name='pyg_recsys_setup')  # no setup() run
common = (['-I' + p for p in include_paths()] +
          ['-I' + sysconfig.get_paths()['include'], '-Icsrc',
           '-DWITH_CUDA', '-DTORCH_API_INCLUDE_EXTENSION_H',
           '-DTORCH_EXTENSION_NAME=_C',
           f'-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}',
           # the CPU wheel lacks c10/cuda/impl/cuda_cmake_macros.h
           '-DC10_CUDA_NO_CMAKE_CONFIGURE_FILE'])
def arr(name, items):
    print(f"{name}=({' '.join(shlex.quote(i) for i in items)})")
arr('CPP_SRCS', s['cpp_sources']())
arr('CU_SRCS', s['cuda_sources']())
arr('CXX_ARGS', s['CXX_FLAGS'] + ['-fPIC'] + common)
arr('NVCC_ARGS', list(dict.fromkeys(s['NVCC_FLAGS'] + COMMON_NVCC_FLAGS)) +
    ['-std=c++20', '-Xcompiler', '-fPIC'] + common)
PYEOF
)"

status=0
# Every source under csrc/ must be one that setup.py builds.
while IFS= read -r f; do
  case " ${CPP_SRCS[*]} ${CU_SRCS[*]} " in
    *" $f "*) ;;
    *) echo "FAILED: $f is not among the sources setup.py builds"; status=1 ;;
  esac
done < <(find csrc -name '*.cpp' -o -name '*.cu' | sort)

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for src in "${CPP_SRCS[@]}"; do
  start=$(date +%s)
  if "$CXX" -fsyntax-only "$src" "${CXX_ARGS[@]}" "-I$CUDA_INC" 2>&1; then
    echo "ok: $src ($CXX -fsyntax-only -DWITH_CUDA, $(( $(date +%s) - start )) s)"
  else
    echo "FAILED: $src ($CXX -fsyntax-only -DWITH_CUDA)"; status=1
  fi
done
for src in "${CU_SRCS[@]}"; do
  start=$(date +%s)
  if "$NVCC" -c "$src" -o "$out/$(basename "$src").o" "${NVCC_ARGS[@]}" \
      "-gencode=arch=compute_${ARCH},code=sm_${ARCH}" 2>&1; then
    echo "ok: $src (nvcc sm_${ARCH}, $(( $(date +%s) - start )) s)"
  else
    echo "FAILED: $src (nvcc sm_${ARCH})"; status=1
  fi
done
echo "CUDA compile check: $([ $status = 0 ] && echo passed || echo FAILED)," \
     "${#CPP_SRCS[@]} C++ and ${#CU_SRCS[@]} CUDA sources," \
     "$(( $(date +%s) - t0 )) s"
exit $status
