r"""Lazy exports for package :obj:`__init__` modules (PEP 562).

Importing :mod:`torch_geometric` costs about 2.7 s here (it loads
:mod:`torch._dynamo`), more than the whole of a learning-free GTE run on a
small data set. Subpackages therefore resolve their public names on first
access, so that code touching only :mod:`pyg_recsys.data`,
:mod:`pyg_recsys.metrics`, :mod:`pyg_recsys.ops` and
:class:`pyg_recsys.nn.GTE` never imports :mod:`torch_geometric`.
"""
import importlib
from typing import Callable, Dict, List, Tuple


def lazy_exports(package: str, exports: Dict[str, str]
                 ) -> Tuple[Callable[[str], object], Callable[[], List[str]]]:
    r"""Returns :obj:`(__getattr__, __dir__)` for module :obj:`package` that
    import :obj:`exports[name]` (a module path) when :obj:`name` is first
    looked up and return its attribute :obj:`name`, or the module itself
    when the path is :obj:`package.name`."""
    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module '{package}' has no attribute "
                                 f"'{name}'")
        module = importlib.import_module(exports[name])
        value = (module if exports[name] == f'{package}.{name}'
                 else getattr(module, name))
        import sys
        setattr(sys.modules[package], name, value)  # cache: no second lookup
        return value

    def __dir__() -> List[str]:
        import sys
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
