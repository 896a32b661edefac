"""Build script: everything but the optional C++/CUDA extension is in setup.cfg.

The extension in ``csrc/`` is compiled into ``pyg_recsys._C`` when torch is
importable at build time (``pip install --no-build-isolation``) and a compiler
works. Without either, the package installs without it and every op uses its
pure-PyTorch path.

Environment switches:
    PYG_RECSYS_NO_EXT=1   never build the extension.
    FORCE_CUDA=1          build the CUDA kernels even if torch reports no GPU.
    PYG_RECSYS_STRICT=1   fail the install if the extension does not build.
"""
import glob
import os
import os.path as osp
import warnings

from setuptools import setup

ROOT = osp.dirname(osp.abspath(__file__))


def _flag(name):
    return os.getenv(name, '0') == '1'


def _cpu_has(flag):
    try:
        with open('/proc/cpuinfo') as f:
            return any(line.startswith('flags') and f' {flag}' in line
                       for line in f)
    except OSError:
        return False


def get_extensions():
    if _flag('PYG_RECSYS_NO_EXT'):
        return []
    try:
        import torch
        from torch.utils.cpp_extension import CUDA_HOME, CppExtension
    except ImportError:
        warnings.warn('torch is not importable at build time (use '
                      '--no-build-isolation); installing pyg_recsys without '
                      'its compiled extension')
        return []

    sources = sorted(
        glob.glob(osp.join('csrc', '*.cpp')) +
        glob.glob(osp.join('csrc', 'ops', '*.cpp')) +
        glob.glob(osp.join('csrc', 'ops', 'cpu', '*.cpp')))
    define_macros = []
    cxx = ['-O3', '-fopenmp', '-std=c++20']
    if _cpu_has('avx2') and _cpu_has('fma'):  # the build machine's vector ISA
        cxx += ['-mavx2', '-mfma']
    extra_compile_args = {'cxx': cxx}
    extra_link_args = ['-fopenmp']

    with_cuda = (torch.version.cuda is not None and CUDA_HOME is not None
                 and (torch.cuda.is_available() or _flag('FORCE_CUDA')))
    if with_cuda:
        from torch.utils.cpp_extension import CUDAExtension
        sources += sorted(glob.glob(osp.join('csrc', 'ops', 'cuda', '*.cu')))
        define_macros.append(('WITH_CUDA', None))
        extra_compile_args['nvcc'] = ['-O3', '--expt-relaxed-constexpr']
        cls = CUDAExtension
    else:
        cls = CppExtension

    return [
        cls('pyg_recsys._C', sources, include_dirs=[osp.join(ROOT, 'csrc')],
            define_macros=define_macros,
            extra_compile_args=extra_compile_args,
            extra_link_args=extra_link_args)
    ]


def get_cmdclass(extensions):
    if not extensions:
        return {}
    from torch.utils.cpp_extension import BuildExtension

    class OptionalBuildExtension(BuildExtension):
        """torch's BuildExtension, made optional: a failed compile warns."""

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


extensions = get_extensions()
setup(ext_modules=extensions, cmdclass=get_cmdclass(extensions))
