r"""Bayesian graph recommenders: a base model trained and evaluated on
sampled interaction graphs."""
import math
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor

from pyg_recsys.nn.models.base import EmbeddingRecommender

# Offsets of the seed streams of the training and the inference graphs.
_TRAIN_STREAM = 0
_INFER_STREAM = 1 << 40


class BayesianRecommender(EmbeddingRecommender):
    r"""A Bayesian graph recommender in the BGCF framework of the `"A
    Framework for Recommending Accurate and Diverse Items Using Bayesian
    Graph Convolutional Neural Networks"
    <https://doi.org/10.1145/3394486.3403254>`_ paper, with the graph
    generator of BGCF (:class:`~pyg_recsys.data.NodeCopying`) or of the
    `"Preference and Concurrence Aware Bayesian Graph Neural Networks for
    Recommender Systems" <https://arxiv.org/abs/2312.11486>`_ paper
    (:class:`~pyg_recsys.data.PECO`).

    The observed graph is treated as one draw of a random graph
    :math:`\mathcal{G}`. Training follows a Monte Carlo estimate of the
    expected BPR loss over :math:`\mathcal{G}`: every optimiser step
    propagates the base model on one sampled graph, a new one every
    :obj:`resample_every` steps. Scores are the posterior-predictive mean
    over :math:`S` sampled graphs,

    .. math::
        \hat{y}_{ui} = \frac{1}{S} \sum_{s=1}^{S} \mathbf{e}_u^{(s)\top}
        \mathbf{e}_i^{(s)} = \Big[\tfrac{\mathbf{e}_u^{(1)}}{\sqrt{S}}
        \,\Vert\, \cdots \,\Vert\, \tfrac{\mathbf{e}_u^{(S)}}{\sqrt{S}}
        \Big]^{\top} \Big[\tfrac{\mathbf{e}_i^{(1)}}{\sqrt{S}} \,\Vert\,
        \cdots \,\Vert\, \tfrac{\mathbf{e}_i^{(S)}}{\sqrt{S}}\Big],

    which is why :meth:`get_embedding` returns the scaled concatenation
    (:obj:`[U + I, S d]`) in evaluation mode: any evaluator taking
    :obj:`(user_emb, item_emb)` ranks by the averaged scores.

    Graph :math:`t` of training is :obj:`generator.sample(seed=seed + t)`,
    and the :math:`S` inference graphs come from a separate seed stream, so
    a run is reproducible, the inference graphs are the same at every
    evaluation (they are sampled once and cached), and a resumed run (the
    step counter is a buffer of the state dict) continues with the graphs
    it would have seen.

    Args:
        base (EmbeddingRecommender): The model propagated on the sampled
            graphs (e.g. :class:`~pyg_recsys.nn.LightGCN`); it receives the
            sampled graph's normalised adjacency.
        generator: A fitted graph generator with :obj:`sample_adj(seed=...)`
            (:class:`~pyg_recsys.data.NodeCopying` or
            :class:`~pyg_recsys.data.PECO`).
        num_samples (int, optional): Sampled graphs :math:`S` averaged at
            inference. (default: :obj:`4`)
        resample_every (int, optional): Optimiser steps (calls of
            :meth:`training_loss` in training mode) per sampled
            training graph; the command line and the benchmark set it to one
            epoch's steps. (default: :obj:`1`)
        seed (int, optional): Seed of the graph streams. (default: :obj:`0`)
    """
    def __init__(self, base: EmbeddingRecommender, generator,
                 num_samples: int = 4, resample_every: int = 1,
                 seed: int = 0):
        name = self.__class__.__name__
        if getattr(base, 'num_users', None) is None:
            raise ValueError(f"{name}: the base model must know its users "
                             f"and items (num_users, num_items)")
        super().__init__(base.num_users, base.num_items)
        for key, value in (('num_samples', num_samples),
                           ('resample_every', resample_every)):
            if isinstance(value, bool) or int(value) != value \
                    or int(value) < 1:
                raise ValueError(f"{name}: {key} must be a positive integer, "
                                 f"got {value}")
        if not hasattr(generator, 'sample_adj'):
            raise TypeError(f"{name}: generator must have sample_adj() (e.g. "
                            f"pyg_recsys.data.PECO), got "
                            f"{type(generator).__name__}")
        for what in ('num_users', 'num_items'):
            if getattr(generator, what) != getattr(base, what):
                raise ValueError(f"{name}: the generator has {what}="
                                 f"{getattr(generator, what)} but the base "
                                 f"model {getattr(base, what)}")
        self.base = base
        self.generator = generator
        self.num_samples = int(num_samples)
        self.resample_every = int(resample_every)
        self.seed = int(seed)
        self.register_buffer('step', torch.zeros((), dtype=torch.int64))
        self._train_graph: Tuple[int, Optional[Tensor]] = (-1, None)
        self._infer_graphs: Dict[str, list] = {}

    # ------------------------------------------------------------------
    @property
    def embedding(self) -> torch.nn.Embedding:
        return self.base.embedding

    def reset_parameters(self):
        self.base.reset_parameters()
        self.step.zero_()

    def _device(self):
        return self.base.embedding.weight.device

    def train_adj(self, index: Optional[int] = None) -> Tensor:
        r"""The normalised adjacency of training graph :obj:`index`
        (default: the current one, :obj:`step // resample_every`)."""
        if index is None:
            index = int(self.step) // self.resample_every
        if self._train_graph[0] != index:
            adj = self.generator.sample_adj(
                seed=self.seed + _TRAIN_STREAM + index,
                device=self._device())
            self._train_graph = (index, adj)
        return self._train_graph[1]  # type: ignore[return-value]

    def inference_adjs(self) -> list:
        r"""The :math:`S` normalised adjacencies averaged at inference
        (sampled once, then cached)."""
        key = str(self._device())
        if key not in self._infer_graphs:
            self._infer_graphs[key] = [
                self.generator.sample_adj(
                    seed=self.seed + _INFER_STREAM + s,
                    device=self._device())
                for s in range(self.num_samples)]
        return self._infer_graphs[key]

    # ------------------------------------------------------------------
    def training_loss(self, edge_index, users: Tensor, pos: Tensor,
                      neg: Tensor, *args, **kwargs) -> Tuple[Tensor, dict]:
        r"""The base model's :meth:`training_loss` on the current sampled
        training graph (:obj:`edge_index`, the observed graph the trainer
        passes, is not used). In training mode each call is one step of the
        :obj:`resample_every` count."""
        out = self.base.training_loss(self.train_adj(), users, pos, neg,
                                      *args, **kwargs)
        if self.training:
            self.step += 1
        return out

    def get_embedding(self, edge_index=None, edge_weight=None) -> Tensor:
        r"""In evaluation mode, the scaled concatenation
        :math:`[\mathbf{e}^{(1)} \Vert \cdots \Vert \mathbf{e}^{(S)}] /
        \sqrt{S}` of all nodes over the inference graphs (:obj:`[N, S d]`),
        whose dot products are the averaged scores; in training mode, the
        base model's embeddings on the current training graph. The observed
        graph :obj:`edge_index` is not used."""
        if self.training:
            return self.base.get_embedding(self.train_adj())
        scale = 1.0 / math.sqrt(self.num_samples)
        return torch.cat([self.base.get_embedding(sampled) * scale
                          for sampled in self.inference_adjs()], dim=1)

    def sample_scores(self, users: Tensor) -> Tensor:
        r"""The scores of every item for :obj:`users` (user ids) on each
        inference graph, shape :obj:`[S, B, I]` (their mean is what the
        embeddings of :meth:`get_embedding` score)."""
        out = []
        with torch.no_grad():
            for sampled in self.inference_adjs():
                u, i = self.split_embedding(self.base.get_embedding(sampled))
                out.append(u[users] @ i.t())
        return torch.stack(out)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}({self.base}, {self.generator}, '
                f'num_samples={self.num_samples}, '
                f'resample_every={self.resample_every})')
