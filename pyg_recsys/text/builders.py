r"""The text models by name, for :func:`~pyg_recsys.nn.models.build_model`
and the CLI: each builder encodes the item text of the graph's data set
(cached, see :func:`~pyg_recsys.text.encode_texts`) and builds the model,
so that a checkpoint rebuilds it from the data set's name alone.

    ==================  ===================================================
    name                model
    ==================  ===================================================
    ``text-zero-shot``  :class:`~pyg_recsys.nn.models.text.TextZeroShot`
                        (users: mean text vector of their training items)
    ``text-align``      :class:`~pyg_recsys.nn.models.text.TextAlign`
    ``text-fusion``     :class:`~pyg_recsys.nn.models.text.TextFusion`
    ``text-lightgcn``   :class:`~pyg_recsys.nn.models.text.TextRegularizedLightGCN`
    ==================  ===================================================

Every builder takes :obj:`encoder` (:obj:`'minilm'`, the packaged
all-MiniLM-L6-v2, or :obj:`'hashing'`) besides the model's own arguments.
"""
from typing import Dict

from torch import Tensor

from pyg_recsys.nn.models.registry import _check_kwargs, register_model

ENCODERS = ('minilm', 'hashing')
# Graph names whose items have text, and the data set that holds it.
_TEXT_SOURCES: Dict[str, str] = {'mind-reclm': 'mind-reclm',
                                 'ml-100k': 'ml-100k',
                                 'ml-100k-cold': 'ml-100k'}


def graph_item_vectors(graph, encoder: str = 'minilm') -> Tensor:
    r"""The encoded item text of :obj:`graph`'s data set, :obj:`[I, d]`."""
    from pyg_recsys.data.item_text import load_item_records
    from pyg_recsys.text.encoders import (
        HashingEncoder,
        SentenceEncoder,
        encode_texts,
    )
    from pyg_recsys.text.profiles import item_texts
    source = _TEXT_SOURCES.get(str(graph.name))
    if source is None:
        raise ValueError(f"the text models need item text, and data set "
                         f"'{graph.name}' has none (available: "
                         f"{', '.join(sorted(_TEXT_SOURCES))})")
    if encoder not in ENCODERS:
        raise ValueError(f"unknown encoder '{encoder}' (expected one of "
                         f"{ENCODERS})")
    records = load_item_records(source)
    if len(records) != graph.num_items:
        raise ValueError(f"'{source}' has text for {len(records)} items but "
                         f"the graph has {graph.num_items}")
    enc = SentenceEncoder() if encoder == 'minilm' else HashingEncoder()
    return encode_texts(enc, item_texts(records))


def _builder(cls_name: str):
    def build(graph, encoder: str = 'minilm', **kwargs):
        from pyg_recsys.nn.models import text
        from pyg_recsys.text.profiles import mean_of_items
        cls = getattr(text, cls_name)
        _check_kwargs(f'text model {cls_name}', cls.__init__, kwargs)
        vectors = graph_item_vectors(graph, encoder)
        if cls_name == 'TextZeroShot':
            rowptr, col = graph.csr('train')
            return cls(mean_of_items(rowptr, col, vectors), vectors,
                       **kwargs)
        if cls_name == 'TextAlign':
            return cls(vectors, history=graph.csr('train'), **kwargs)
        return cls(graph.num_users, vectors, **kwargs)

    build.__name__ = f'build_{cls_name}'
    build.model_class = f'pyg_recsys.nn.models.text.{cls_name}'
    return build


BUILDERS = {'text-zero-shot': _builder('TextZeroShot'),
            'text-align': _builder('TextAlign'),
            'text-fusion': _builder('TextFusion'),
            'text-lightgcn': _builder('TextRegularizedLightGCN')}
for _name, _fn in BUILDERS.items():
    register_model(_name, _fn, overwrite=True)
