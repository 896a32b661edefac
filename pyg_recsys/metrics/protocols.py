r"""Compatibility switches that reproduce the evaluation protocols of other
codebases, named after them. They are not the package's protocol (see
:class:`~pyg_recsys.metrics.Evaluator`) and are reported under their names.
"""
from typing import Dict, Optional, Sequence, Union

import torch
from torch import Tensor

from pyg_recsys.metrics import ranking
from pyg_recsys.metrics.evaluator import (
    SPLITS,
    Exclude,
    _check_emb,
    _csr_of,
    _gather_rows,
)
from pyg_recsys.metrics.ranking import _check_ks


@torch.no_grad()
def sheaf4rec_code_metrics(user_emb: Tensor, item_emb: Tensor, train,
                           test: Union[Tensor, str] = 'test',
                           ks: Union[int, Sequence[int]] = (10, 20),
                           batch_size: int = 1024) -> Dict[str, float]:
    r"""Precision, Recall, F1 and NDCG at :math:`K` under the protocol of
    the released Sheaf4Rec code (``get_metrics`` of its ``evaluation.py``),
    not the package's.

    It differs from :class:`~pyg_recsys.metrics.Evaluator` in two ways:

    * **masking by zero**: the scores of the masked (training) items are
      multiplied by zero instead of set to :math:`-\infty`, so a masked item
      scores exactly 0 and still outranks every item with a negative score
      (and may then be recommended, never counting as a hit);
    * **F1 of the averages**: :math:`\mathrm{F1@K} = 2 \bar{P} \bar{R} /
      (\bar{P} + \bar{R})` from the Precision@K and Recall@K averaged over
      the evaluated users (0 when both are 0), not the average of per-user
      F1 (the :obj:`'f1'` of :class:`~pyg_recsys.metrics.Evaluator`).

    Precision@K is :math:`H_u / K`, Recall@K :math:`H_u / R_u`, averaged
    over the users with at least one test item, as in the code. Items are
    ranked by descending masked score with ties broken by lower item id (the
    code's :func:`torch.topk` leaves the order of ties unspecified; ties
    arise among masked items, which all score 0). NDCG@K is the standard
    binary NDCG of :func:`~pyg_recsys.metrics.ranking.ranking_metrics` on
    these ranked lists: the released code's NDCG sums item ids as gains over
    all users and is not reproduced.

    Args:
        user_emb (torch.Tensor): User embeddings, shape :obj:`[U, d]`.
        item_emb (torch.Tensor): Item embeddings, shape :obj:`[I, d]`.
        train: The masked items: an
            :class:`~pyg_recsys.data.InteractionGraph` (then every split
            before :obj:`test` is masked, as the package's evaluator does;
            the released code has only a training split), the
            :obj:`(rowptr, col)` of
            :meth:`~pyg_recsys.data.InteractionGraph.csr` or :obj:`[2, E]`
            (user, item) pairs.
        test (torch.Tensor or str, optional): The held-out (user, item) pairs
            :obj:`[2, E]`, or a split name when :obj:`train` is a graph.
            (default: :obj:`'test'`)
        ks (int or Sequence[int], optional): The cut-offs :math:`K`, at most
            the number of items. (default: :obj:`(10, 20)`)
        batch_size (int, optional): Users per scoring batch.
            (default: :obj:`1024`)

    Returns:
        Dict[str, float]: :obj:`'precision@K'`, :obj:`'recall@K'`,
        :obj:`'f1@K'` (of the averages) and :obj:`'ndcg@K'` for every
        :math:`K`.
    """
    where = 'sheaf4rec_code_metrics'
    num_users, num_items = user_emb.size(0), item_emb.size(0)
    user_emb, item_emb = _check_emb(user_emb, item_emb, num_users, num_items,
                                    where)
    ks = _check_ks(ks)
    if max(ks) > num_items:
        raise ValueError(f"{where}: the cut-offs {ks} exceed the number of "
                         f"items ({num_items})")
    if batch_size <= 0:
        raise ValueError(f"{where}: batch_size must be positive, got "
                         f"{batch_size}")
    if hasattr(train, 'csr') and hasattr(train, 'split'):  # a graph
        graph = train
        if (graph.num_users, graph.num_items) != (num_users, num_items):
            raise ValueError(f"{where}: the graph has {graph.num_users} users "
                             f"and {graph.num_items} items but the "
                             f"embeddings {num_users} and {num_items}")
        split = test
        if not isinstance(split, str) or split not in SPLITS:
            raise ValueError(f"{where}: with a graph, 'test' must be a split "
                             f"name among {SPLITS}, got {split!r}")
        test = graph.split(split)
        masked = [graph.split(s) for s in SPLITS[:SPLITS.index(split)]
                  if getattr(graph, s, None) is not None]
        exclude: Optional[Exclude] = torch.cat(masked, dim=1) if masked \
            else None
    else:
        exclude = train
        if isinstance(test, str):
            raise ValueError(f"{where}: 'test' must be a [2, E] tensor of "
                             f"(user, item) pairs unless 'train' is a graph")
    test_ptr, test_col = _csr_of(test, num_users, num_items, f"{where} test")
    if exclude is not None:
        ex_ptr, ex_col = _csr_of(exclude, num_users, num_items, where)
        if ex_ptr.numel() != num_users + 1:
            raise ValueError(f"{where}: the masked items' rowptr must have "
                             f"num_users + 1 = {num_users + 1} entries")
    users = (test_ptr.diff() > 0).nonzero().view(-1)
    if users.numel() == 0:
        raise ValueError(f"{where}: no user has a test item")
    num_relevant = test_ptr.diff()[users]
    test_keys = torch.unique(
        torch.repeat_interleave(torch.arange(num_users), test_ptr.diff()) *
        num_items + test_col)

    max_k = max(ks)
    item_t = item_emb.t()
    index = torch.empty(users.numel(), max_k, dtype=torch.long)
    for start in range(0, users.numel(), batch_size):
        batch = users[start:start + batch_size]
        scores = user_emb.index_select(0, batch.to(user_emb.device)) @ item_t
        if exclude is not None:
            ptr, items = _gather_rows(ex_ptr, ex_col, batch)
            rows = torch.repeat_interleave(torch.arange(batch.numel()),
                                           ptr.diff(),
                                           output_size=items.numel())
            mask = torch.zeros(batch.numel(), num_items, dtype=torch.bool)
            mask[rows, items] = True
            # The code multiplies by (1 - mask): masked scores become 0.
            scores = scores.masked_fill(mask.to(scores.device), 0.0)
        index[start:start + batch.numel()] = \
            ranking._select_topk(scores, max_k)[1].cpu()
    query = users.view(-1, 1) * num_items + index
    pos = torch.searchsorted(test_keys, query).clamp(max=test_keys.numel() - 1)
    hits = test_keys[pos] == query
    per_user = ranking.ranking_metrics(hits, num_relevant, ks,
                                       ('precision', 'recall', 'ndcg'))
    out: Dict[str, float] = {}
    for k in ks:
        p = float(per_user[f'precision@{k}'].mean())
        r = float(per_user[f'recall@{k}'].mean())
        out[f'precision@{k}'] = p
        out[f'recall@{k}'] = r
        out[f'f1@{k}'] = 2 * p * r / (p + r) if p + r > 0 else 0.0
        out[f'ndcg@{k}'] = float(per_user[f'ndcg@{k}'].mean())
    return out


RECLM_SETTINGS = ('zero-shot', 'full-shot')


def reclm_protocol(graph, setting: str = 'zero-shot',
                   split: str = 'test') -> Dict[str, object]:
    r"""The :class:`~pyg_recsys.metrics.Evaluator` arguments of RecLM's
    evaluation (Jiang et al., ACL 2025, the HKUDS/RecLM code) on a graph
    whose test split holds items never seen in training:

    * :obj:`'zero-shot'`: rank only the items with no training (or
      validation) interaction that occur in :obj:`split`, **without
      masking**; labels are the :obj:`split` interactions with those items;
    * :obj:`'full-shot'`: rank every item that occurs in :obj:`split` and
      mask the training (and validation) interactions.

    Users with at least one relevant candidate are evaluated, as in RecLM.
    Use as :obj:`Evaluator(graph, ks=(20, 40), **reclm_protocol(graph,
    'zero-shot'))`.
    """
    if setting not in RECLM_SETTINGS:
        raise ValueError(f"reclm_protocol: unknown setting '{setting}' "
                         f"(expected one of {RECLM_SETTINGS})")
    if split not in SPLITS or getattr(graph, split, None) is None:
        raise ValueError(f"reclm_protocol: the graph has no '{split}' split")
    seen_splits = [s for s in SPLITS[:SPLITS.index(split)]
                   if getattr(graph, s, None) is not None]
    occurs = torch.zeros(graph.num_items, dtype=torch.bool)
    occurs[graph.split(split)[1]] = True
    if setting == 'full-shot':
        return {'split': split, 'candidates': occurs,
                'exclude': tuple(seen_splits)}
    seen = torch.zeros(graph.num_items, dtype=torch.bool)
    for s in seen_splits:
        seen[graph.split(s)[1]] = True
    new = occurs & ~seen
    if not bool(new.any()):
        raise ValueError(f"reclm_protocol: every item of '{split}' also "
                         f"occurs in {seen_splits}: there is nothing to rank "
                         f"zero-shot")
    return {'split': split, 'candidates': new, 'exclude': ()}
