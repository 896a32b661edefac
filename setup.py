"""Build script: everything but the optional C++/CUDA extension is in setup.cfg.

The extension in ``csrc/`` is compiled into ``pyg_recsys._C`` when torch is
importable at build time (``pip install --no-build-isolation``) and a C++
compiler works. Without a compiler the package installs without it, with a
warning, and every op uses its pure-PyTorch path.

No flag depends on the build machine: the CPU kernels are compiled for the
portable baseline and carry AVX2/FMA versions that are chosen at run time
(``csrc/ops/cpu/isa.h``), so a wheel runs on any CPU of its architecture.

Environment switches:
    PYG_RECSYS_NO_EXT=1   never build the extension.
    FORCE_CUDA=1          build the CUDA kernels even if torch reports no GPU.
    PYG_RECSYS_STRICT=1   fail the install if our sources do not compile (or
                          torch is missing at build time); a machine with no
                          working C++ compiler still installs without the
                          extension, with a warning. CI installs this way.

``csrc/cuda_check.sh`` (``make cuda-check``) reads the sources and flags
below, so keep them here.
"""
import glob
import os
import os.path as osp
import shlex
import subprocess
import sysconfig
import tempfile
import warnings

from setuptools import setup

ROOT = osp.dirname(osp.abspath(__file__))

CXX_FLAGS = ['-O3', '-fopenmp', '-std=c++20']
NVCC_FLAGS = ['-O3', '--expt-relaxed-constexpr']
LINK_FLAGS = ['-fopenmp']


def _flag(name):
    return os.getenv(name, '0') == '1'




def cpp_sources():
    return sorted(
        glob.glob(osp.join('csrc', '*.cpp')) +
        glob.glob(osp.join('csrc', 'ops', '*.cpp')) +
        glob.glob(osp.join('csrc', 'ops', 'cpu', '*.cpp')))


def cuda_sources():
    return sorted(glob.glob(osp.join('csrc', 'ops', 'cuda', '*.cu')))


def compiler_problem():
    """Why no usable C++ compiler is found, or None when one works.

    Probes the commands the build runs: ``$CXX`` (default ``c++``, torch's
    compile step) and ``$CC`` (default: Python's, which setuptools links
    with), each compiling a trivial C++ file.
    """
    if os.name == 'nt':  # MSVC is found by setuptools itself
        return None
    commands = dict.fromkeys([
        os.environ.get('CXX') or 'c++',
        os.environ.get('CC') or sysconfig.get_config_var('CC') or 'cc'])
    with tempfile.TemporaryDirectory() as tmp:
        src = osp.join(tmp, 'probe.cpp')
        with open(src, 'w') as f:
            f.write('int main() { return 0; }\n')
        for command in commands:
            cmd = shlex.split(command) + ['-c', src, '-o',
                                          osp.join(tmp, 'probe.o')]
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True,
                                      timeout=300)
            except (OSError, subprocess.SubprocessError) as e:
                return f'{command!r} does not run ({e})'
            if proc.returncode != 0:
                return (f'{command!r} cannot compile a trivial C++ file '
                        f'(exit {proc.returncode})')
    return None


def get_extensions():
    if _flag('PYG_RECSYS_NO_EXT'):
        return []
    try:
        import torch
        from torch.utils.cpp_extension import CUDA_HOME, CppExtension
    except ImportError:
        msg = ('torch is not importable at build time (use '
               '--no-build-isolation)')
        if _flag('PYG_RECSYS_STRICT'):
            raise RuntimeError(f'pyg_recsys: {msg}; PYG_RECSYS_STRICT=1 '
                               f'needs the compiled extension')
        warnings.warn(f'pyg_recsys: {msg}; installing without the '
                      f'compiled extension')
        return []
    problem = compiler_problem()
    if problem is not None:
        warnings.warn(f'pyg_recsys: no working C++ compiler: {problem}; '
                      f'installing the pure-PyTorch version without the '
                      f'compiled extension')
        return []

    sources = cpp_sources()
    define_macros = []
    extra_compile_args = {'cxx': list(CXX_FLAGS)}

    with_cuda = (torch.version.cuda is not None and CUDA_HOME is not None
                 and (torch.cuda.is_available() or _flag('FORCE_CUDA')))
    if with_cuda:
        from torch.utils.cpp_extension import CUDAExtension
        sources += cuda_sources()
        define_macros.append(('WITH_CUDA', None))
        extra_compile_args['nvcc'] = list(NVCC_FLAGS)
        cls = CUDAExtension
    else:
        cls = CppExtension

    return [
        cls('pyg_recsys._C', sources, include_dirs=[osp.join(ROOT, 'csrc')],
            define_macros=define_macros,
            extra_compile_args=extra_compile_args,
            extra_link_args=list(LINK_FLAGS))
    ]


def get_cmdclass(extensions):
    if not extensions:
        return {}
    from torch.utils.cpp_extension import BuildExtension

    class OptionalBuildExtension(BuildExtension):
        """torch's BuildExtension, made optional: a failed compile warns,
        unless PYG_RECSYS_STRICT=1."""

        def run(self):
            try:
                super().run()
            except Exception as e:  # noqa: BLE001
                if _flag('PYG_RECSYS_STRICT'):
                    raise
                warnings.warn(f'pyg_recsys: building the C++ extension '
                              f'failed ({e}); installing the pure-PyTorch '
                              f'version')

    return {'build_ext': OptionalBuildExtension.with_options(
        no_python_abi_suffix=True)}


if __name__ == '__main__':  # setuptools runs this file as __main__
    extensions = get_extensions()
    setup(ext_modules=extensions, cmdclass=get_cmdclass(extensions))
