import pytest
import torch
from graphs import clustered_graph

from pyg_recsys.metrics import Evaluator
from pyg_recsys.nn import MF, LightGCN, ScoreEnsemble, SimpleX


def members(graph):
    torch.manual_seed(0)
    U, I = graph.num_users, graph.num_items
    return [LightGCN(num_users=U, num_items=I, embedding_dim=8,
                     num_layers=2),
            SimpleX(U, I, embedding_dim=6, gamma=0.5, init_std=0.1),
            MF(U, I, embedding_dim=4)]


def dense_fused_scores(models, weights, adj, num_users):
    # Each member's full score matrix, standardised per user over all items
    # (population standard deviation), then the weighted sum.
    total = 0
    for model, w in zip(models, weights):
        model.eval()
        out = model.get_embedding(adj)
        s = out[:num_users] @ out[num_users:].t()
        z = (s - s.mean(1, keepdim=True)) / s.std(1, unbiased=False,
                                                   keepdim=True)
        total = total + w * z
    return total


@pytest.mark.parametrize('weights', [None, (2.0, 0.5, 1.0)])
def test_fused_scores_are_the_weighted_standardised_scores(weights):
    graph = clustered_graph()
    models = members(graph)
    adj = graph.norm_adj()
    ens = ScoreEnsemble(models, weights).eval()
    out = ens.get_embedding(adj)
    U = graph.num_users
    fused = (out[:U] @ out[U:].t()).double()
    ref = dense_fused_scores(models, weights or (1.0, 1.0, 1.0), adj,
                             U).double()
    # Equal up to a per-user constant (the dropped mean terms).
    diff = fused - ref
    torch.testing.assert_close(diff - diff.mean(1, keepdim=True),
                               torch.zeros_like(diff), atol=1e-4, rtol=0)
    ev = Evaluator(graph, split='test', ks=(5, 10))
    got = ev.evaluate(out[:U], out[U:])
    expected = ev.evaluate_scores(lambda u: ref[u].float())
    assert got == pytest.approx(expected, abs=1e-6)


def test_bad_members_and_weights_are_refused():
    graph = clustered_graph()
    a, b, _ = members(graph)
    with pytest.raises(ValueError, match='at least two'):
        ScoreEnsemble([a])
    with pytest.raises(ValueError, match='share users and items'):
        ScoreEnsemble([a, MF(graph.num_users + 1, graph.num_items, embedding_dim=4)])
    with pytest.raises(ValueError, match='2 models but 3 weights'):
        ScoreEnsemble([a, b], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match='positive'):
        ScoreEnsemble([a, b], [1.0, -1.0])
    with pytest.raises(ValueError, match='get_embedding'):
        ScoreEnsemble([a, torch.nn.Linear(2, 2)])
