r"""Toy graphs shared by the tests (importable: ``tests/`` is on the path
through its ``conftest.py``)."""
import torch

from pyg_recsys.data import InteractionGraph


def clustered_graph(seed: int = 0, users: int = 40, items: int = 30,
                    picks: int = 9, test_part: int = 6,
                    valid: bool = True) -> InteractionGraph:
    r"""Two communities: the first half of the users interact with the
    first half of the items, the rest with the rest (:obj:`picks` random
    items each). Held-out pairs (:obj:`1 / test_part` for test, as much again
    for validation) come from the same community, so a model that learns
    anything beats random and popularity ranking by far."""
    g = torch.Generator().manual_seed(seed)
    pairs = []
    for u in range(users):
        base = 0 if u < users // 2 else items // 2
        chosen = torch.randperm(items // 2, generator=g)[:picks] + base
        pairs += [(u, int(i)) for i in chosen]
    pairs = torch.tensor(pairs).t()
    perm = torch.randperm(pairs.size(1), generator=g)
    n = pairs.size(1) // test_part
    test = pairs[:, perm[:n]]
    if not valid:
        return InteractionGraph(users, items, pairs[:, perm[n:]], test=test)
    return InteractionGraph(users, items, pairs[:, perm[2 * n:]],
                            valid=pairs[:, perm[n:2 * n]], test=test)


def popularity_recall(graph, k: int = 10) -> float:
    r"""Test Recall@k of the most-popular baseline on :obj:`graph`, the bar
    a trained model must clear in the training tests."""
    from pyg_recsys.nn import MostPopular
    from pyg_recsys.train import TrainConfig, Trainer
    pop = MostPopular(graph.item_degree(), graph.num_users)
    report = Trainer(pop, graph, TrainConfig(monitor=f'recall@{k}',
                                             select='last'),
                     progress=False).fit()
    return report['test'][f'recall@{k}']
