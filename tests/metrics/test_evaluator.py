import math

import pytest
import torch

from pyg_recsys.data.graph import InteractionGraph
from pyg_recsys.metrics import Evaluator, topk, topk_scores


def random_graph(seed, num_users=30, num_items=80, num_train=300,
                 num_valid=60, num_test=90, no_train_users=3):
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(num_users * num_items, generator=gen)
    keys = perm[:num_train + num_valid + num_test]
    pairs = torch.stack([keys // num_items, keys % num_items])
    train = pairs[:, :num_train]
    valid = pairs[:, num_train:num_train + num_valid]
    test = pairs[:, num_train + num_valid:]
    # The first users have no training items (cold users with test items).
    cold = train[0] < no_train_users
    test = torch.cat([test, train[:, cold]], dim=1)
    train = train[:, ~cold]
    return InteractionGraph(num_users, num_items, train,
                            valid if num_valid else None, test)


def assert_close(out, ref):
    assert list(out) == list(ref)
    for key in ref:
        assert out[key] == pytest.approx(ref[key], abs=1e-12), key


def int_embeddings(graph, seed, dim=3, low=-2, high=3):
    # Small integers: exact dot products in any summation order, and many
    # tied scores.
    gen = torch.Generator().manual_seed(seed)
    user = torch.randint(low, high, (graph.num_users, dim), generator=gen)
    item = torch.randint(low, high, (graph.num_items, dim), generator=gen)
    return user.float(), item.float()


@pytest.mark.parametrize('seed', range(4))
@pytest.mark.parametrize('split', ['test', 'valid'])
def test_evaluate_matches_naive_loop(seed, split, naive_evaluate):
    graph = random_graph(seed)
    user, item = int_embeddings(graph, seed)
    ks = (1, 5, 20)
    ev = Evaluator(graph, split=split, ks=ks)
    exclude = ('train', 'valid') if split == 'test' else ('train', )
    assert ev.exclude == exclude
    ref = naive_evaluate(graph, user @ item.t(), split, exclude, ks)
    assert_close(ev.evaluate(user, item), ref)


@pytest.mark.parametrize('num_items', [5, 40, 1200, 5000])
def test_evaluate_large_k_and_ties(num_items, naive_evaluate):
    # K larger than the number of items, users with fewer test items than K,
    # many items (the chunked selection path) and heavy ties.
    graph = random_graph(num_items, num_users=12, num_items=num_items,
                         num_train=min(3 * num_items, 400), num_valid=0,
                         num_test=min(num_items, 60), no_train_users=2)
    user, item = int_embeddings(graph, 1, dim=2, low=0, high=2)
    ks = (3, 10, 50)
    ev = Evaluator(graph, ks=ks, batch_size=5)
    assert ev.exclude == ('train', )
    ref = naive_evaluate(graph, user @ item.t(), 'test', ('train', ), ks)
    assert_close(ev.evaluate(user, item), ref)


def test_evaluate_random_float_embeddings(naive_evaluate):
    graph = random_graph(11, num_users=25, num_items=2500, num_train=900,
                         num_valid=100, num_test=200)
    gen = torch.Generator().manual_seed(0)
    user = torch.randn(graph.num_users, 16, generator=gen, dtype=torch.double)
    item = torch.randn(graph.num_items, 16, generator=gen, dtype=torch.double)
    ev = Evaluator(graph, ks=(10, 20))
    ref = naive_evaluate(graph, user @ item.t(), 'test', ('train', 'valid'),
                         (10, 20))
    assert_close(ev.evaluate(user, item), ref)


@pytest.mark.parametrize('seed', range(3))
def test_evaluate_scores_most_popular(seed, naive_evaluate):
    # A most-popular model: the same integer scores for every user, ties
    # among items of equal popularity, broken by lower item id.
    graph = random_graph(seed, num_users=40, num_items=1500, num_train=1200,
                         num_valid=50, num_test=150)
    popularity = graph.item_degree()
    assert popularity.unique().numel() < graph.num_items  # has ties

    def score_fn(users):
        assert users.dtype == torch.long
        return popularity.view(1, -1).expand(users.numel(), -1)

    ks = (5, 20)  # 1,536 padded items: the chunked selection path
    ev = Evaluator(graph, ks=ks, batch_size=7)
    scores = popularity.view(1, -1).expand(graph.num_users, -1)
    ref = naive_evaluate(graph, scores, 'test', ('train', 'valid'), ks)
    assert_close(ev.evaluate_scores(score_fn), ref)
    float_fn = lambda u: score_fn(u).float()  # noqa: E731
    assert_close(ev.evaluate_scores(float_fn), ref)


def test_evaluate_equals_evaluate_scores_and_batching():
    graph = random_graph(5, num_items=300)
    user, item = int_embeddings(graph, 5)
    out = Evaluator(graph).evaluate(user, item)
    for bs in (1, 4, 1000):
        ev = Evaluator(graph, batch_size=bs)
        assert ev.evaluate(user, item) == out
        assert ev.evaluate_scores(lambda u: user[u] @ item.t()) == out


def test_hand_computed_example():
    # 3 users, 5 items; scores 5, 4, 3, 2, 1 for items 0..4 for every user.
    # user 0: train {0}, test {1, 3}; user 1: no train, test {4};
    # user 2: train {2}, no test (not evaluated).
    graph = InteractionGraph(3, 5, train=torch.tensor([[0, 2], [0, 2]]),
                             test=torch.tensor([[0, 0, 1], [1, 3, 4]]))
    user = torch.ones(3, 1)
    item = torch.tensor([[5.], [4.], [3.], [2.], [1.]])
    ev = Evaluator(graph, ks=(2, 4, 5, 7))
    assert ev.num_eval_users == 2
    assert ev.rank(user, item).tolist() == [[1, 2, 3, 4, 0],
                                            [0, 1, 2, 3, 4]]
    out = ev.evaluate(user, item)
    l3 = 1 / math.log2(3)
    # K = 2: user 0 hits at rank 1; user 1 nothing.
    assert out['recall@2'] == pytest.approx(0.25)
    assert out['precision@2'] == pytest.approx(0.25)
    assert out['hit@2'] == pytest.approx(0.5)
    assert out['ndcg@2'] == pytest.approx(0.5 / (1 + l3))
    assert out['mrr@2'] == pytest.approx(0.5)
    assert out['map@2'] == pytest.approx(0.25)
    assert out['f1@2'] == pytest.approx(0.25)
    # K = 4: user 0 hits at ranks 1 and 3.
    assert out['recall@4'] == pytest.approx(0.5)
    assert out['precision@4'] == pytest.approx(0.25)
    assert out['ndcg@4'] == pytest.approx(0.5 * 1.5 / (1 + l3))
    assert out['map@4'] == pytest.approx(0.5 * (1 + 2 / 3) / 2)
    assert out['mrr@4'] == pytest.approx(0.5)
    assert out['f1@4'] == pytest.approx(0.5 * (2 * 0.5 * 1 / 1.5))
    # K = 5: user 1 hits at rank 5.
    assert out['recall@5'] == pytest.approx(1.0)
    assert out['precision@5'] == pytest.approx((0.4 + 0.2) / 2)
    assert out['hit@5'] == pytest.approx(1.0)
    assert out['ndcg@5'] == pytest.approx(
        (1.5 / (1 + l3) + 1 / math.log2(6)) / 2)
    assert out['mrr@5'] == pytest.approx((1 + 0.2) / 2)
    assert out['map@5'] == pytest.approx(((1 + 2 / 3) / 2 + 0.2) / 2)
    assert out['f1@5'] == pytest.approx(
        (2 * 0.4 / 1.4 + 2 * 0.2 / 1.2) / 2)
    # K = 7 > number of items: missing ranks are misses, precision is /K.
    assert out['precision@7'] == pytest.approx((2 / 7 + 1 / 7) / 2)
    assert out['recall@7'] == pytest.approx(1.0)
    assert out['map@7'] == pytest.approx(out['map@5'])
    # All items tied: ranking by item id.
    assert ev.rank(user, torch.ones(5, 1)).tolist() == [[1, 2, 3, 4, 0],
                                                       [0, 1, 2, 3, 4]]


def test_masked_items_are_minus_inf_not_zero():
    # Scores are all negative: a mask by multiplying with 0 would rank the
    # training item first.
    graph = InteractionGraph(1, 4, train=torch.tensor([[0], [0]]),
                             test=torch.tensor([[0], [3]]))
    user = torch.ones(1, 1)
    item = -torch.tensor([[1.], [2.], [3.], [4.]])
    ev = Evaluator(graph, ks=(1, 3))
    assert ev.rank(user, item).tolist() == [[1, 2, 3]]
    assert ev.evaluate(user, item)['hit@3'] == 1.0


def test_cross_check_pyg_link_pred():
    from torch_geometric.metrics import (
        LinkPredF1,
        LinkPredHitRatio,
        LinkPredMAP,
        LinkPredMRR,
        LinkPredNDCG,
        LinkPredPrecision,
        LinkPredRecall,
    )
    pyg = {'recall': LinkPredRecall, 'precision': LinkPredPrecision,
           'ndcg': LinkPredNDCG, 'map': LinkPredMAP, 'mrr': LinkPredMRR,
           'hit': LinkPredHitRatio, 'f1': LinkPredF1}
    graph = random_graph(21, num_users=50, num_items=400, num_train=2000,
                         num_valid=200, num_test=500)
    user, item = int_embeddings(graph, 2, dim=4)
    ks = (1, 5, 10, 20)
    ev = Evaluator(graph, ks=ks)
    index = ev.rank(user, item)
    out = ev.metrics_of(index)
    # Ground truth indexed by the row of every evaluated user.
    test = graph.test
    row = torch.searchsorted(ev.users, test[0])
    label = torch.stack([row, test[1]])
    for name, cls in pyg.items():
        for k in ks:
            metric = cls(k=k)
            metric.update(index, label)
            assert float(metric.compute()) == pytest.approx(
                out[f'{name}@{k}'], abs=1e-6), (name, k)


def test_per_user_metrics():
    graph = random_graph(3)
    user, item = int_embeddings(graph, 3)
    ev = Evaluator(graph, ks=(5, ), metrics=('recall', 'ndcg'))
    per_user = ev.metrics_of(ev.rank(user, item), reduce=False)
    assert set(per_user) == {'recall@5', 'ndcg@5'}
    assert per_user['recall@5'].shape == (ev.num_eval_users, )
    out = ev.evaluate(user, item)
    assert out['recall@5'] == pytest.approx(per_user['recall@5'].mean())


def test_default_exclusion():
    graph = random_graph(0)
    assert Evaluator(graph, 'test').exclude == ('train', 'valid')
    assert Evaluator(graph, 'valid').exclude == ('train', )
    assert Evaluator(graph, 'train').exclude == ()
    assert Evaluator(graph, 'test', exclude=('train', )).exclude == \
        ('train', )
    no_valid = random_graph(0, num_valid=0)
    assert Evaluator(no_valid, 'test').exclude == ('train', )
    assert 'exclude' in repr(Evaluator(graph))


def test_errors():
    graph = random_graph(0, num_valid=0)
    user, item = int_embeddings(graph, 0)
    with pytest.raises(ValueError, match="no 'valid' split"):
        Evaluator(graph, split='valid')
    with pytest.raises(ValueError, match="no 'valid' split"):
        Evaluator(graph, exclude=('train', 'valid'))
    with pytest.raises(ValueError, match='unknown split'):
        Evaluator(graph, split='dev')
    with pytest.raises(ValueError, match='cannot exclude'):
        Evaluator(graph, exclude=('test', ))
    with pytest.raises(ValueError, match='unknown ranking metric'):
        Evaluator(graph, metrics=('auc', ))
    with pytest.raises(ValueError, match='positive'):
        Evaluator(graph, ks=(0, 10))
    ev = Evaluator(graph)
    with pytest.raises(ValueError, match=r"'user_emb' must have shape"):
        ev.evaluate(user[:-1], item)
    with pytest.raises(ValueError, match=r"'item_emb' must have shape"):
        ev.evaluate(user, item[:, None])
    with pytest.raises(ValueError, match='different embedding sizes'):
        ev.evaluate(user, item[:, :2])
    with pytest.raises(TypeError, match='floating point'):
        ev.evaluate(user.long(), item)
    bad = user.clone()
    bad[3, 1] = float('nan')
    with pytest.raises(ValueError, match="'user_emb' contains NaN"):
        ev.evaluate(bad, item)
    bad = item.clone()
    bad[0, 0] = float('nan')
    with pytest.raises(ValueError, match="'item_emb' contains NaN"):
        ev.evaluate(user, bad)
    bad[0, 0] = float('inf')
    with pytest.raises(ValueError, match='infinite'):
        ev.evaluate(user, bad)
    with pytest.raises(ValueError, match='score_fn must return'):
        ev.evaluate_scores(lambda u: torch.zeros(u.numel(), 3))
    with pytest.raises(ValueError, match='NaN scores'):
        ev.evaluate_scores(
            lambda u: torch.full((u.numel(), graph.num_items), math.nan))
    with pytest.raises(ValueError, match='batch_size'):
        Evaluator(graph, batch_size=-1)


def test_topk_helper():
    graph = random_graph(8, num_users=10, num_items=12, num_train=60,
                         num_valid=0, num_test=10)
    user, item = int_embeddings(graph, 8, low=0)
    users = torch.tensor([5, 0, 9, 5])
    k = 8
    value, index = topk(user, item, users, k, exclude=graph.csr('train'))
    value2, index2 = topk(user, item, users, k, exclude=graph.train)
    assert torch.equal(index, index2) and torch.equal(value, value2)
    scores = user @ item.t()
    train = {tuple(p) for p in graph.train.t().tolist()}
    for row, u in enumerate(users.tolist()):
        allowed = [i for i in range(graph.num_items) if (u, i) not in train]
        order = sorted(allowed, key=lambda i: (-float(scores[u, i]), i))[:k]
        order += [-1] * (k - len(order))
        assert index[row].tolist() == order
        for j, i in enumerate(order):
            expect = float('-inf') if i < 0 else float(scores[u, i])
            assert float(value[row, j]) == expect
    # Without exclusion, all users, and through a score function.
    value, index = topk(user, item, k=3)
    value2, index2 = topk_scores(lambda u: user[u] @ item.t(),
                                 graph.num_users, graph.num_items, k=3)
    assert index.shape == (graph.num_users, 3)
    assert torch.equal(index, index2) and torch.equal(value, value2)
    with pytest.raises(ValueError, match='k must lie'):
        topk(user, item, k=13)
    with pytest.raises(ValueError, match='user ids'):
        topk(user, item, torch.tensor([10]), k=2)
    with pytest.raises(ValueError, match='item ids outside'):
        topk(user, item, k=2, exclude=torch.tensor([[0], [12]]))
