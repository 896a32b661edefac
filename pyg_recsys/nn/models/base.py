r"""The interface shared by the embedding recommenders of the package."""
import inspect
from typing import Any, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.typing import Adj, OptTensor
from torch_geometric.utils import is_sparse, to_edge_index

from pyg_recsys.nn.loss import l2_reg_rows, ranking_loss


def _node_ids(name: str, where: str, index, num_nodes: int) -> Tensor:
    index = torch.as_tensor(index)
    if index.is_floating_point() or index.dtype == torch.bool:
        raise TypeError(f"{where}: '{name}' must hold integer node ids, got "
                        f"{index.dtype}")
    index = index.long()
    if index.numel() and (int(index.min()) < 0
                          or int(index.max()) >= num_nodes):
        raise ValueError(f"{where}: '{name}' holds node ids outside "
                         f"[0, {num_nodes}) (min {int(index.min())}, max "
                         f"{int(index.max())})")
    return index


def _plain(value) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


class EmbeddingRecommender(torch.nn.Module):
    r"""Base of the recommenders that score a pair of nodes by the dot
    product of their final embeddings.

    **Ids.** Every id a model takes or returns is a node id of the
    homogeneous graph, users at :obj:`0..U-1` and items at
    :obj:`U..U+I-1` (PyG's :class:`~torch_geometric.nn.models.LightGCN`
    convention); item :obj:`i` of an
    :class:`~pyg_recsys.data.InteractionGraph` is node :obj:`U + i`.

    **Subclasses** implement :meth:`get_embedding` (the final table of all
    nodes, :obj:`[N, d]`) and keep their layer-0 table in
    :obj:`self.embedding`. Everything else is defined here once, with PyG's
    signatures where PyG has the method: :meth:`forward`,
    :meth:`predict_link`, :meth:`recommend` (batched, optionally excluding
    known links), :meth:`link_pred_loss`, :meth:`recommendation_loss` (PyG's
    BPR on given scores) and :meth:`training_loss` (BPR on triples with the
    package's exact L2 scalings, as the Trainer uses it). Models that add
    terms to the training objective override :meth:`extra_losses`.

    Args:
        num_users (int, optional): The number of users :math:`U`.
        num_items (int, optional): The number of items :math:`I`.
        embedding_dim (int, optional): The size of the layer-0 table; no
            table is made if :obj:`None`. (default: :obj:`None`)
        init_std (float, optional): Standard deviation of the normal
            initialisation (the LightGCN code's 0.1); :obj:`None` uses
            Xavier-uniform as PyG does. (default: :obj:`0.1`)
        num_nodes (int, optional): The number of nodes :math:`N`, for a
            model built without the user/item split (as PyG's
            :obj:`LightGCN(num_nodes, ...)`). (default: :obj:`None`)
    """
    num_users: Optional[int]
    num_items: Optional[int]
    embedding: torch.nn.Embedding
    #: Whether :meth:`get_embedding` takes :obj:`n_id` (a sampled subgraph,
    #: for mini-batch training with :obj:`TrainConfig(num_neighbors=...)`).
    subgraphs: bool = False
    #: Whether the model trains with dynamic negative sampling
    #: (:meth:`hardest_negatives`).
    dns: bool = True

    def __new__(cls, *args, **kwargs):
        # Keep the constructor's arguments, so that a checkpoint can rebuild
        # the model whoever built it (see :attr:`init_kwargs`).
        self = super().__new__(cls)
        try:
            bound = inspect.signature(cls.__init__).bind(None, *args,
                                                          **kwargs)
        except TypeError:  # __init__ reports it; copies carry __dict__
            return self
        given: Dict[str, Any] = {}
        for key, param in list(inspect.signature(
                cls.__init__).parameters.items())[1:]:
            if key not in bound.arguments:
                continue
            if param.kind == param.VAR_KEYWORD:
                given.update(bound.arguments[key])
            elif param.kind != param.VAR_POSITIONAL:
                given[key] = bound.arguments[key]
        object.__setattr__(self, '_given_kwargs', given)
        return self

    @property
    def init_kwargs(self) -> Dict[str, Any]:
        r"""The constructor arguments this model was built with, as plain
        numbers, strings and lists (a :obj:`torch.dtype` as its name), or
        :obj:`None` if one of them is not plain data (e.g. a module)."""
        out: Dict[str, Any] = {}
        for key, value in getattr(self, '_given_kwargs', {}).items():
            if isinstance(value, torch.dtype):
                value = str(value).replace('torch.', '')
            elif isinstance(value, Tensor):
                value = value.tolist()
            if not _plain(value):
                return None
            out[key] = value
        return out

    def __init__(self, num_users: Optional[int] = None,
                 num_items: Optional[int] = None,
                 embedding_dim: Optional[int] = None,
                 init_std: Optional[float] = 0.1,
                 num_nodes: Optional[int] = None):
        super().__init__()
        name = self.__class__.__name__
        if (num_users is None) != (num_items is None):
            raise ValueError(f"{name}: give both num_users and num_items (or "
                             f"num_nodes alone), got num_users={num_users}, "
                             f"num_items={num_items}")
        if num_users is not None:
            if int(num_users) <= 0 or int(num_items) <= 0:
                raise ValueError(f"{name}: needs users and items, got "
                                 f"num_users={num_users}, "
                                 f"num_items={num_items}")
            total = int(num_users) + int(num_items)
            if num_nodes is not None and int(num_nodes) != total:
                raise ValueError(f"{name}: num_nodes={num_nodes} but "
                                 f"num_users + num_items = {total}")
            num_nodes = total
            num_users, num_items = int(num_users), int(num_items)
        elif num_nodes is None or int(num_nodes) <= 0:
            raise ValueError(f"{name}: needs num_users and num_items (or a "
                             f"positive num_nodes), got num_nodes={num_nodes}")
        if embedding_dim is not None and int(embedding_dim) <= 0:
            raise ValueError(f"{name}: embedding_dim must be positive, got "
                             f"{embedding_dim}")
        self.num_users = num_users
        self.num_items = num_items
        self.num_nodes = int(num_nodes)
        self.embedding_dim = embedding_dim
        self.init_std = init_std
        if embedding_dim is not None:
            self.embedding = torch.nn.Embedding(self.num_nodes,
                                                int(embedding_dim))

    def reset_parameters(self):
        r"""Normal initialisation with :obj:`init_std`, or Xavier-uniform as
        PyG does when :obj:`init_std` is :obj:`None`."""
        if self.init_std is None:
            torch.nn.init.xavier_uniform_(self.embedding.weight)
        else:
            torch.nn.init.normal_(self.embedding.weight, std=self.init_std)

    @property
    def item_index(self) -> Tensor:
        r"""The node ids of all items, :obj:`U..U+I-1` (the :obj:`dst_index`
        that recommends items only)."""
        if self.num_users is None:
            raise ValueError(f"{self.__class__.__name__} was built from "
                             f"num_nodes alone and does not know which "
                             f"nodes are items")
        return torch.arange(self.num_users, self.num_nodes,
                            device=self._device())

    def _device(self) -> torch.device:
        for t in self.parameters():
            return t.device
        for t in self.buffers():
            return t.device
        return torch.device('cpu')

    # ------------------------------------------------------------------
    def get_embedding(self, edge_index: Adj,
                      edge_weight: OptTensor = None) -> Tensor:
        r"""The final embeddings of all nodes, shape :obj:`[N, d]`."""
        raise NotImplementedError

    def split_embedding(self, out: Tensor) -> Tuple[Tensor, Tensor]:
        r"""Cuts a node table :obj:`[N, d]` into users :obj:`[U, d]` and
        items :obj:`[I, d]`."""
        if self.num_users is None:
            raise ValueError(f"{self.__class__.__name__} was built from "
                             f"num_nodes alone: pass num_users and num_items "
                             f"to split users from items")
        return out[:self.num_users], out[self.num_users:]

    def forward(self, edge_index: Adj, edge_label_index: OptTensor = None,
                edge_weight: OptTensor = None) -> Tensor:
        r"""Scores of the node pairs in :obj:`edge_label_index`
        (default: the edges of :obj:`edge_index`), shape :obj:`[E]`."""
        if edge_label_index is None:
            if edge_index is None:
                raise ValueError(f"{self.__class__.__name__}: give "
                                 f"edge_label_index (the pairs to score)")
            edge_label_index = (to_edge_index(edge_index)[0]
                                if is_sparse(edge_index) else edge_index)
        edge_label_index = _node_ids('edge_label_index',
                                     self.__class__.__name__,
                                     edge_label_index, self.num_nodes)
        out = self.get_embedding(edge_index, edge_weight)
        src = out.index_select(0, edge_label_index[0].to(out.device))
        dst = out.index_select(0, edge_label_index[1].to(out.device))
        return (src * dst).sum(dim=-1)

    def predict_link(self, edge_index: Adj,
                     edge_label_index: OptTensor = None,
                     edge_weight: OptTensor = None,
                     prob: bool = False) -> Tensor:
        r"""Link probabilities :math:`\sigma(\text{score})` of the pairs in
        :obj:`edge_label_index` if :obj:`prob`, else their rounding to
        0 / 1 (as PyG's :obj:`LightGCN.predict_link`)."""
        pred = self(edge_index, edge_label_index, edge_weight).sigmoid()
        return pred if prob else pred.round()

    @torch.no_grad()
    def recommend(self, edge_index: Adj, edge_weight: OptTensor = None,
                  src_index: OptTensor = None, dst_index: OptTensor = None,
                  k: int = 1, sorted: bool = True,
                  exclude_links: OptTensor = None,
                  batch_size: Optional[int] = None) -> Tensor:
        r"""The top-:obj:`k` nodes of :obj:`dst_index` for every node of
        :obj:`src_index`, best first.

        With the arguments of PyG's :obj:`LightGCN.recommend` the result is
        the same (ties here go to the lower node id). Scores are computed
        in batches of source nodes, so memory stays bounded for any number
        of users.

        Args:
            edge_index (torch.Tensor or SparseTensor): The graph to
                propagate on.
            edge_weight (torch.Tensor, optional): Its edge weights.
            src_index (torch.Tensor, optional): The nodes to recommend for,
                e.g. users. (default: all nodes)
            dst_index (torch.Tensor, optional): The candidate nodes, e.g.
                :attr:`item_index`. (default: all nodes)
            k (int, optional): The number of recommendations.
                (default: :obj:`1`)
            sorted (bool, optional): Accepted for PyG compatibility; the
                result is always sorted. (default: :obj:`True`)
            exclude_links (torch.Tensor, optional): :obj:`[2, E]` node
                pairs :obj:`(src, dst)` never to recommend, e.g. the training
                edges (pairs whose nodes are not in :obj:`src_index` /
                :obj:`dst_index` are ignored). (default: :obj:`None`)
            batch_size (int, optional): Source nodes per scoring batch.
                (default: chosen from the number of candidates)

        Returns:
            torch.Tensor: node ids, shape :obj:`[len(src_index), k]`;
            :obj:`-1` pads rows with fewer than :obj:`k` candidates left.
        """
        from pyg_recsys.metrics import topk
        name = f'{self.__class__.__name__}.recommend'
        if int(k) <= 0:
            raise ValueError(f"{name}: k must be positive, got {k}")
        n = self.num_nodes
        src = torch.arange(n) if src_index is None else \
            _node_ids('src_index', name, src_index, n).view(-1).cpu()
        dst = torch.arange(n) if dst_index is None else \
            _node_ids('dst_index', name, dst_index, n).view(-1).cpu()
        if dst.numel() == 0:
            raise ValueError(f"{name}: dst_index is empty")
        uniq, inverse = torch.unique(src, return_inverse=True)
        exclude = None
        if exclude_links is not None:
            links = _node_ids('exclude_links', name, exclude_links, n).cpu()
            if links.dim() != 2 or links.size(0) != 2:
                raise ValueError(f"{name}: exclude_links must have shape "
                                 f"[2, E], got {tuple(links.shape)}")
            src_pos = torch.full((n, ), -1, dtype=torch.long)
            src_pos[uniq] = torch.arange(uniq.numel())
            dst_pos = torch.full((n, ), -1, dtype=torch.long)
            dst_pos[dst] = torch.arange(dst.numel())
            a, b = src_pos[links[0]], dst_pos[links[1]]
            keep = (a >= 0) & (b >= 0)
            exclude = torch.stack([a[keep], b[keep]])
        out = self.get_embedding(edge_index, edge_weight)
        _, top = topk(out.index_select(0, uniq.to(out.device)),
                      out.index_select(0, dst.to(out.device)), None,
                      min(int(k), dst.numel()), exclude=exclude,
                      batch_size=batch_size)
        top = top.cpu()[inverse]
        result = torch.where(top >= 0, dst[top.clamp(min=0)], -1)
        if int(k) > dst.numel():  # as many candidates as there are
            pad = result.new_full((result.size(0), int(k) - dst.numel()), -1)
            result = torch.cat([result, pad], dim=1)
        return result.to(out.device)

    def link_pred_loss(self, pred: Tensor, edge_label: Tensor,
                       **kwargs) -> Tensor:
        r"""Binary cross-entropy of the logits :obj:`pred` against
        :obj:`edge_label` (:class:`torch.nn.BCEWithLogitsLoss` with
        :obj:`kwargs`), as PyG's :obj:`LightGCN.link_pred_loss`."""
        return torch.nn.BCEWithLogitsLoss(**kwargs)(
            pred, edge_label.to(pred.dtype))

    def recommendation_loss(self, pos_edge_rank: Tensor,
                            neg_edge_rank: Tensor,
                            node_id: OptTensor = None,
                            lambda_reg: float = 1e-4, **kwargs) -> Tensor:
        r"""PyG's BPR objective on given scores: :math:`\frac1B \sum_b
        -\ln\sigma(s^+_b - s^-_b) + \lambda \|\mathbf{E}^{(0)}_S\|^2 / B`
        over the ego rows :math:`S` of :obj:`node_id` (all rows if
        :obj:`None`), exactly as PyG's :obj:`LightGCN.recommendation_loss`
        (:obj:`kwargs` are accepted for its signature and unused). For
        training on :obj:`(user, positive, negative)` triples see
        :meth:`training_loss`."""
        loss = -F.logsigmoid(pos_edge_rank - neg_edge_rank).mean()
        if lambda_reg != 0:
            emb = self.embedding.weight
            emb = emb if node_id is None else emb[node_id]
            loss = loss + lambda_reg * emb.norm(p=2).pow(2) / \
                pos_edge_rank.size(0)
        return loss

    # ------------------------------------------------------------------
    def _check_batch(self, users: Tensor, pos: Tensor, neg: Tensor) -> None:
        shared = neg.dim() == 2 and neg.size(0) == 1
        if users.dim() != 1 or users.shape != pos.shape or \
                (users.size(0) != neg.size(0) and not shared):
            raise ValueError(f"{self.__class__.__name__}: users "
                             f"{tuple(users.shape)}, positives "
                             f"{tuple(pos.shape)} and negatives "
                             f"{tuple(neg.shape)} must have the same length "
                             f"(or negatives of shape [1, M], shared)")

    def propagate_for_loss(self, edge_index: Adj):
        r"""The final node table used by :meth:`training_loss` and whatever
        :meth:`extra_losses` needs from the same pass (default:
        :obj:`None`)."""
        return self.get_embedding(edge_index), None

    def extra_losses(self, state, users: Tensor, pos: Tensor
                     ) -> Dict[str, Tensor]:
        r"""Model-specific weighted terms added to the training objective
        (e.g. DCCF's contrastive loss), given the :obj:`state` of
        :meth:`propagate_for_loss`. (default: none)"""
        return {}

    def training_loss(self, edge_index: Adj, users: Tensor, pos: Tensor,
                      neg: Tensor, lambda_reg: float = 1e-4,
                      reg_scaling: str = 'lightgcn',
                      hard_negatives: bool = False, n_id: OptTensor = None,
                      loss: str = 'bpr',
                      loss_kwargs: Optional[Dict[str, Any]] = None
                      ) -> Tuple[Tensor, Dict[str, float]]:
        r"""The ranking loss (BPR unless :obj:`loss` names another, see
        :func:`~pyg_recsys.nn.loss.ranking_loss`, with :obj:`loss_kwargs`) of
        the triples :obj:`(users, pos, neg)` (node ids; :obj:`neg` of shape
        :obj:`[B]`, :obj:`[B, M]` for :math:`M` negatives per positive, or
        :obj:`[1, M]` for :math:`M` negatives shared by the whole batch) plus
        L2 regularisation of their ego embeddings in the named scaling (see
        :mod:`pyg_recsys.nn.loss`; shared negatives count once each) and the
        model's :meth:`extra_losses`.

        With :obj:`hard_negatives=True`, :obj:`neg` of shape :obj:`[B, M]`
        holds :math:`M` candidates per triple and only the one the current
        model scores highest for the user is used (dynamic negative
        sampling, Zhang et al., SIGIR 2013); the choice uses the same final
        embeddings as the loss and passes no gradient.

        With :obj:`n_id`, :obj:`edge_index` is a sampled subgraph (see
        :func:`pyg_recsys.data.sampled_adjacency`) whose nodes have the
        global ids :obj:`n_id`, and the triples are local indices into it;
        only models with :attr:`subgraphs` set take it.

        Returns:
            (torch.Tensor, dict): the total, to back-propagate, and its
            parts as floats (:obj:`'bpr'`, :obj:`'reg'` and the extra
            terms), which sum to the total.
        """
        if n_id is None:
            self._check_batch(users, pos, neg)
            final, state = self.propagate_for_loss(edge_index)
        else:
            if not self.subgraphs:
                raise ValueError(f"{self.__class__.__name__} does not train "
                                 f"on sampled subgraphs")
            final, state = self.get_embedding(edge_index, n_id=n_id), None
        if hard_negatives:
            neg = self.hardest_negatives(final, users, neg)
        rank, reg = self.bpr_and_reg(final, users, pos, neg, lambda_reg,
                                     reg_scaling, n_id, loss=loss,
                                     loss_kwargs=loss_kwargs)
        extra = {} if n_id is not None else self.extra_losses(state, users,
                                                               pos)
        total = rank + reg
        for value in extra.values():
            total = total + value
        parts = {'bpr': float(rank.detach()), 'reg': float(reg.detach())}
        parts.update({key: float(v.detach()) for key, v in extra.items()})
        return total, parts

    def embedding_rows(self, final, node_index: Tensor) -> Tensor:
        r"""The rows :obj:`node_index` of the final node table, given what
        :meth:`propagate_for_loss` returned as :obj:`final` (by default the
        table itself). A model that can compute a batch's rows without the
        whole table (e.g. :class:`~pyg_recsys.nn.models.SimpleX`) returns
        something else there and overrides this."""
        return final.index_select(0, node_index)

    def bpr_and_reg(self, final: Tensor, users: Tensor, pos: Tensor,
                    neg: Tensor, lambda_reg: float, reg_scaling: str,
                    n_id: OptTensor = None, loss: str = 'bpr',
                    loss_kwargs: Optional[Dict[str, Any]] = None
                    ) -> Tuple[Tensor, Tensor]:
        r"""The ranking loss (:obj:`loss`, BPR by default) of the triples
        (node ids) on the final node table :obj:`final` and the L2 penalty
        of their ego rows, as two tensors (with :obj:`n_id`, the triples
        index the rows of :obj:`final`, whose global ids are
        :obj:`n_id`). A :obj:`neg` of shape :obj:`[1, M]` is shared by every
        triple: the scores are one :obj:`[B, d] x [d, M]` product."""
        # One gather from the final table, cut with split (its backward
        # concatenates; slicing zero-fills a [3B, d] gradient per slice), and
        # the ego penalty from per-row counts without a gather (measured on
        # Yelp2018 at batch 32768: a step's backward 47 -> 26 ms).
        node_index = torch.cat([users, pos, neg.reshape(-1)])
        u, p, n = self.embedding_rows(final, node_index).split(
            [users.numel(), users.numel(), neg.numel()])
        pos_score = (u * p).sum(-1)
        if neg.dim() == 2 and neg.size(0) == 1 and users.numel() != 1:
            neg_score = u @ n.t()
        elif neg.dim() == 2:
            n = n.view(*neg.shape, -1)
            neg_score = torch.bmm(n, u.unsqueeze(-1)).squeeze(-1)
        else:
            neg_score = (u * n).sum(-1)
        loss = ranking_loss(loss, pos_score, neg_score, **(loss_kwargs or {}))
        reg = loss.new_zeros(())
        if lambda_reg:
            if n_id is not None:
                node_index = n_id.index_select(0, node_index)
            reg = l2_reg_rows(self.embedding.weight, node_index,
                              users.numel(), lambda_reg, reg_scaling)
        return loss, reg

    @torch.no_grad()
    def hardest_negatives(self, final: Tensor, users: Tensor,
                          candidates: Tensor) -> Tensor:
        r"""Per row of :obj:`candidates` (node ids, shape :obj:`[B, M]`),
        the node with the highest score for :obj:`users` under the final
        node table :obj:`final`; ties go to the first candidate. Returns
        shape :obj:`[B]`."""
        if not self.dns:
            raise ValueError(f"{self.__class__.__name__} does not train with "
                             f"negative_sampling='dns'")
        if candidates.dim() != 2:
            raise ValueError(f"{self.__class__.__name__}: hard negatives need "
                             f"candidates of shape [B, M], got "
                             f"{tuple(candidates.shape)}")
        final = final.detach()
        u = final.index_select(0, users)
        c = final.index_select(0, candidates.reshape(-1))
        score = torch.bmm(c.view(*candidates.shape, -1).to(u.dtype),
                          u.unsqueeze(-1)).squeeze(-1)
        return candidates.gather(1, score.argmax(1, keepdim=True)).view(-1)

    def interactions(self, edge_index: Adj) -> Tuple[Tensor, Tensor]:
        r"""The distinct user-item pairs of a graph on this model's nodes
        (an :obj:`edge_index` of node ids, either or both directions, or a
        sparse adjacency, whose values are ignored), as :obj:`(users,
        items)` in user ids and item ids, sorted by user, then item."""
        name = self.__class__.__name__
        if self.num_users is None:
            raise ValueError(f"{name}: needs num_users and num_items to tell "
                             f"users from items")
        if edge_index is None:
            raise ValueError(f"{name} needs the interaction graph "
                             f"(edge_index or a sparse adjacency)")
        if is_sparse(edge_index):
            edge_index = to_edge_index(edge_index)[0]
        edge_index = torch.as_tensor(edge_index)
        if edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise ValueError(f"{name}: edge_index must have shape [2, E], "
                             f"got {tuple(edge_index.shape)}")
        row, col = edge_index[0].long(), edge_index[1].long()
        U, N = self.num_users, self.num_nodes
        if row.numel() and (int(torch.minimum(row, col).min()) < 0 or
                            int(torch.maximum(row, col).max()) >= N):
            raise ValueError(f"{name}: node ids of the graph must lie in "
                             f"[0, {N})")
        fwd = (row < U) & (col >= U)
        bwd = (col < U) & (row >= U)
        key = torch.unique(torch.cat([row[fwd] * N + col[fwd],
                                      col[bwd] * N + row[bwd]]))  # sorted
        return key // N, key % N - U

    def _size_repr(self) -> str:
        if self.num_users is None:
            return f'{self.num_nodes}'
        return f'num_users={self.num_users}, num_items={self.num_items}'

    def _extra_repr(self) -> str:
        return ''

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self._size_repr()}, '
                f'embedding_dim={self.embedding_dim}{self._extra_repr()})')
