r"""Interaction graphs, readers, data sets, splits and samplers."""
from pyg_recsys._lazy import lazy_exports
from pyg_recsys.data.datasets import (
    fetch_ml100k,
    get_cache_dir,
    get_data_root,
    list_datasets,
    load_dataset,
    register_dataset,
)
from pyg_recsys.data.files import load_interactions, load_lightgcn_folder
from pyg_recsys.data.graph import InteractionGraph, normalized_adjacency
from pyg_recsys.data.graph_generators import (
    PECO,
    NodeCopying,
    build_generator,
)
from pyg_recsys.data.io import (
    Interactions,
    read_lightgcn,
    read_recbole_atomic,
    read_table,
    remap_ids,
)
from pyg_recsys.data.sampler import BPRSampler
from pyg_recsys.data.split import leave_one_out, random_split, temporal_split

__all__ = [
    'InteractionGraph',
    'normalized_adjacency',
    'NodeCopying',
    'PECO',
    'build_generator',
    'BPRSampler',
    'SubgraphSampler',
    'TorchNeighborSampler',
    'sample_neighbors',
    'sample_fixed_neighbors',
    'sampled_adjacency',
    'Interactions',
    'read_lightgcn',
    'read_table',
    'read_recbole_atomic',
    'remap_ids',
    'random_split',
    'temporal_split',
    'leave_one_out',
    'load_dataset',
    'load_interactions',
    'load_lightgcn_folder',
    'register_dataset',
    'list_datasets',
    'get_data_root',
    'get_cache_dir',
    'fetch_ml100k',
]

# The neighbour samplers subclass PyG's, so they load torch_geometric: on
# first use only (see pyg_recsys._lazy).
__getattr__, __dir__ = lazy_exports(__name__, {
    name: 'pyg_recsys.data.neighbor'
    for name in ('SubgraphSampler', 'TorchNeighborSampler',
                 'sample_neighbors', 'sampled_adjacency',
                 'sample_fixed_neighbors')
})
