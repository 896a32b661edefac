r"""Text for recommendation: encoders that run offline (a packaged sentence
encoder, a hashing encoder, precomputed vectors) with an on-disk cache, and
item and user profiles. Models take the encoded vectors, never an encoder
(see :mod:`pyg_recsys.nn.models.text`)."""
from pyg_recsys.text.encoders import (
    HashingEncoder,
    PrecomputedEncoder,
    SentenceEncoder,
    TextEncoder,
    default_cache_dir,
    encode_texts,
)
from pyg_recsys.text.profiles import (
    item_texts,
    load_profiles,
    mean_of_items,
    user_profiles,
)

__all__ = [
    'TextEncoder',
    'SentenceEncoder',
    'HashingEncoder',
    'PrecomputedEncoder',
    'encode_texts',
    'default_cache_dir',
    'item_texts',
    'user_profiles',
    'load_profiles',
    'mean_of_items',
]
