import math

import pytest
import torch

import pyg_recsys.nn.models.gte as gte_module
from pyg_recsys.data import InteractionGraph
from pyg_recsys.metrics import Evaluator
from pyg_recsys.metrics.gte_protocol import batch_mean_of_means, gte_protocol_metrics
from pyg_recsys.nn import GTE
from pyg_recsys.nn.models import topological_closeness


def random_graph(num_users=23, num_items=17, p=0.25, seed=0):
    gen = torch.Generator().manual_seed(seed)
    dense = (torch.rand(num_users, num_items, generator=gen) < p).long()
    dense[0] = 0  # a user without interactions
    dense[:, 3] = 0  # an item without interactions
    return dense


def official_recurrence(dense, k):
    r"""The official algorithm run literally: items one-hot, users zero,
    synchronous residual updates on the raw adjacency (int64, exact)."""
    num_users, num_items = dense.shape
    user = torch.zeros(num_users, num_items, dtype=torch.int64)
    item = torch.eye(num_items, dtype=torch.int64)
    for _ in range(k):
        user, item = user + dense @ item, item + dense.t() @ user
    return user


def sequential_recurrence(dense, k):
    user = torch.zeros(dense.shape, dtype=torch.int64)
    item = torch.eye(dense.size(1), dtype=torch.int64)
    for _ in range(k):
        user = user + dense @ item
        item = item + dense.t() @ user
    return user


def closed_form(dense, k, binomial=True):
    a = dense.to(torch.int64)
    aat = a @ a.t()
    out = torch.zeros_like(a)
    term = a
    for j in range((k - 1) // 2 + 1):
        out += (math.comb(k, 2 * j + 1) if binomial else 1) * term
        term = aat @ term
    return out


@pytest.fixture(params=['scipy', 'gather', 'dense'])
def path(request, monkeypatch):
    r"""Runs a test with SciPy's first step, with torch gathers only, and
    with the dense CSR products for every later step."""
    if request.param != 'scipy':
        monkeypatch.setattr(gte_module, '_USE_SCIPY', False)
    if request.param == 'dense':
        monkeypatch.setattr(gte_module, '_EXPAND_RATIO', 0.0)
    return request.param


@pytest.mark.parametrize('k', [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize('dtype', [torch.float64, torch.int64])
def test_gte_equals_official_recurrence_and_closed_form(k, dtype, path):
    dense = random_graph()
    model = GTE(dense.nonzero().t(), *dense.shape, k=k, dtype=dtype)
    scores = model.scores(torch.arange(dense.size(0)))
    assert scores.dtype == dtype and scores.shape == dense.shape
    expected = official_recurrence(dense, k)
    assert torch.equal(scores.to(torch.int64), expected)
    assert torch.equal(expected, closed_form(dense, k))


def test_update_order_is_synchronous():
    dense = random_graph()
    a = dense
    assert torch.equal(official_recurrence(dense, 3), 3 * a + a @ a.t() @ a)
    # The sequential order would count other walks.
    seq = sequential_recurrence(dense, 3)
    assert torch.equal(seq, 3 * a + 4 * a @ a.t() @ a +
                       a @ a.t() @ a @ a.t() @ a)
    assert not torch.equal(seq, official_recurrence(dense, 3))


def test_gte_batch_size_independent(path):
    dense = random_graph(40, 25, seed=1)
    edge_index = dense.nonzero().t()
    users = torch.tensor([5, 0, 39, 5, 12, 7, 30])
    full = GTE(edge_index, 40, 25, k=5).scores(users)
    for batch_size in (1, 2, 3, 100):
        model = GTE(edge_index, 40, 25, k=5, batch_size=batch_size)
        assert torch.equal(model.scores(users), full)
        assert torch.equal(torch.cat([model.scores(users[:3]),
                                      model.scores(users[3:])]), full)


def test_gte_exact_with_large_counts(path):
    # Complete bipartite K_{m,n}: (AA^T)^j A = (mn)^j everywhere, so the
    # scores are sum_j C(k, 2j+1) (mn)^j: above 2^24 (float32) and, for
    # int64, above 2^53 (float64).
    m, n = 40, 30
    edge_index = torch.ones(m, n).nonzero().t()
    users = torch.arange(m)

    def exact(k):
        return sum(math.comb(k, 2 * j + 1) * (m * n) ** j
                   for j in range((k - 1) // 2 + 1))

    k = 7  # ~4.6e9 after the bound: exact in float64
    scores = GTE(edge_index, m, n, k=k).scores(users)
    assert exact(k) > 2**24
    assert torch.equal(scores, torch.full((m, n), float(exact(k)),
                                          dtype=torch.float64))
    k = 13  # ~3.2e18 > 2^53: float64 refuses, int64 is exact
    assert 2**53 < exact(k) < 2**63
    with pytest.raises(OverflowError, match='int64'):
        GTE(edge_index, m, n, k=k).scores(users[:2])
    scores = GTE(edge_index, m, n, k=k, dtype=torch.int64).scores(users)
    assert scores.dtype == torch.int64
    assert torch.equal(scores, torch.full((m, n), exact(k),
                                          dtype=torch.int64))
    with pytest.raises(OverflowError, match='smaller k'):
        GTE(edge_index, m, n, k=15, dtype=torch.int64).scores(users[:1])


def test_gte_integer_scores_in_evaluator_and_recommend():
    dense = random_graph(30, 20, seed=2)
    train = dense.nonzero().t()
    # One test item per user outside its training items.
    test = []
    for u in range(30):
        free = (dense[u] == 0).nonzero().view(-1)
        test.append([u, int(free[u % free.numel()])])
    graph = InteractionGraph(30, 20, train, test=torch.tensor(test).t())
    model = GTE.from_graph(graph, dtype=torch.int64)
    scores = closed_form(dense, 3).double()
    ev = Evaluator(graph, ks=(5, ))
    assert ev.evaluate_scores(model.scores) == \
        ev.evaluate_scores(lambda u: scores[u])
    top = model.recommend(torch.arange(30), 5, exclude=graph.csr('train'))
    masked = scores.masked_fill(dense.bool(), -math.inf)
    for u in range(30):
        # ties by lower item id
        order = sorted(range(20), key=lambda i: (-masked[u, i].item(), i))
        assert top[u].tolist() == order[:5]
    assert str(model) == 'GTE(30, 20, k=3)'


def test_gte_bad_input():
    edge_index = torch.tensor([[0, 1], [1, 2]])
    with pytest.raises(ValueError, match='at least 1'):
        GTE(edge_index, 2, 3, k=0)
    with pytest.raises(TypeError, match='int'):
        GTE(edge_index, 2, 3, k=2.0)
    with pytest.raises(TypeError, match='float64 or torch.int64'):
        GTE(edge_index, 2, 3, dtype=torch.float32)
    with pytest.raises(ValueError, match='item ids outside'):
        GTE(edge_index, 2, 2)
    with pytest.raises(ValueError, match=r'\[2, E\]'):
        GTE(torch.zeros(3, 2, dtype=torch.long), 2, 3)
    model = GTE(edge_index, 2, 3)
    with pytest.raises(ValueError, match=r'GTE.scores: user ids must lie in '
                       r'\[0, 2\), got ids in \[0, 2\]'):
        model.scores(torch.tensor([0, 2]))
    with pytest.raises(ValueError, match='user ids'):
        model.scores(torch.tensor([-1]))
    with pytest.raises(TypeError, match='integers'):
        model.scores(torch.tensor([0.0]))
    assert model.scores(torch.tensor([], dtype=torch.long)).shape == (0, 3)


def test_gte_repeated_pairs_count_once():
    edge_index = torch.tensor([[0, 0, 1, 1], [1, 1, 2, 1]])
    dense = torch.zeros(2, 3, dtype=torch.long)
    dense[0, 1] = dense[1, 2] = dense[1, 1] = 1
    model = GTE(edge_index, 2, 3)
    assert torch.equal(model.scores(torch.arange(2)).long(),
                       official_recurrence(dense, 3))


@pytest.mark.parametrize('k', [1, 3, 4, 5])
def test_topological_closeness(k, path):
    dense = random_graph(25, 15, seed=3)
    graph = InteractionGraph(25, 15, dense.nonzero().t())
    expected = closed_form(dense, k, binomial=False)
    # Number of walks of length <= k, counted by a plain power loop.
    m = torch.zeros(40, 40, dtype=torch.long)
    m[:25, 25:] = dense
    m[25:, :25] = dense.t()
    walks = sum(torch.linalg.matrix_power(m, t) for t in range(1, k + 1))
    assert torch.equal(walks[:25, 25:], expected)
    users = torch.tensor([3, 0, 24, 3])
    for source in (graph, dense.to_sparse(), dense.double().to_sparse_csr()):
        out = topological_closeness(source, users, k=k)
        assert torch.equal(out.long(), expected[users])
    items = torch.tensor([1, 14, 0, 2])
    assert torch.equal(topological_closeness(graph, users, items, k=k).long(),
                       expected[users, items])
    items2 = torch.tensor([[1, 2], [3, 4], [0, 0], [14, 5]])
    assert torch.equal(
        topological_closeness(graph, users, items2, k=k,
                              dtype=torch.int64, batch_size=1),
        expected[users.view(-1, 1), items2])
    if k == 3:  # GTE differs from it only on training pairs
        gte = GTE.from_graph(graph).scores(users).long()
        assert torch.equal(gte - expected[users], 2 * dense[users])


def test_topological_closeness_bad_input():
    graph = InteractionGraph(3, 4, torch.tensor([[0, 1, 2], [0, 1, 3]]))
    with pytest.raises(ValueError, match='at least 1'):
        topological_closeness(graph, torch.tensor([0]), k=0)
    with pytest.raises(ValueError, match=r'\[0, 3\)'):
        topological_closeness(graph, torch.tensor([3]))
    with pytest.raises(ValueError, match=r'\[0, 4\)'):
        topological_closeness(graph, torch.tensor([0]), torch.tensor([4]))
    with pytest.raises(ValueError, match='shape'):
        topological_closeness(graph, torch.tensor([0, 1]), torch.tensor([1]))
    with pytest.raises(TypeError, match='InteractionGraph'):
        topological_closeness(torch.ones(3, 4), torch.tensor([0]))


# --------------------------------------------------------------------------
def naive_batch_mean(values, users, batch_size, num_users):
    r"""The official loop: batches of consecutive ids over all users; mean
    over the users with test items of each batch; mean of the batch means."""
    value_of = dict(zip(users.tolist(), values.tolist()))
    means = []
    for start in range(0, num_users, batch_size):
        batch = [value_of[u] for u in range(start, min(start + batch_size,
                                                       num_users))
                 if u in value_of]
        if batch:
            means.append(sum(batch) / len(batch))
    return sum(means) / len(means)


def test_batch_mean_of_means_matches_naive_loop():
    gen = torch.Generator().manual_seed(0)
    num_users = 1000
    users = torch.randperm(num_users, generator=gen)[:611]
    values = torch.rand(611, generator=gen, dtype=torch.float64)
    for batch_size in (1, 7, 256, 5000):
        assert batch_mean_of_means(values, users, batch_size) == \
            pytest.approx(naive_batch_mean(values, users, batch_size,
                                           num_users), rel=1e-12)
    # Differs from the per-user mean when batches are uneven.
    assert abs(batch_mean_of_means(values, users, 256) -
               float(values.mean())) > 1e-6
    assert batch_mean_of_means(values[:0], users[:0]) == 0.0
    with pytest.raises(ValueError, match='distinct'):
        batch_mean_of_means(torch.ones(2), torch.tensor([1, 1]))
    with pytest.raises(ValueError, match='same length'):
        batch_mean_of_means(torch.ones(2), torch.tensor([1]))
    with pytest.raises(ValueError, match='positive'):
        batch_mean_of_means(torch.ones(1), torch.tensor([1]), batch_size=0)


def test_gte_protocol_metrics():
    dense = random_graph(60, 20, p=0.2, seed=4)
    gen = torch.Generator().manual_seed(1)
    test = []
    for u in range(0, 60, 2):  # every other user has test items
        free = (dense[u] == 0).nonzero().view(-1)
        pick = free[torch.randperm(free.numel(), generator=gen)[:3]]
        test += [[u, int(i)] for i in pick]
    graph = InteractionGraph(60, 20, dense.nonzero().t(),
                             test=torch.tensor(test).t())
    model = GTE.from_graph(graph)
    ev = Evaluator(graph, ks=(5, ))
    index = ev.rank_scores(model.scores)
    per_user = ev.metrics_of(index, reduce=False)
    got = gte_protocol_metrics(ev, index, batch_size=8)
    assert got == gte_protocol_metrics(ev, score_fn=model.scores,
                                       batch_size=8)
    for key, val in per_user.items():
        assert got[key] == pytest.approx(
            naive_batch_mean(val, ev.users, 8, 60), rel=1e-12)
    with pytest.raises(ValueError, match='score_fn'):
        gte_protocol_metrics(ev)
