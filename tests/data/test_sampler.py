import pytest
import torch

from pyg_recsys.data import InteractionGraph
from pyg_recsys.data.sampler import BPRSampler


def random_graph(num_users=30, num_items=20, n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    pairs = torch.stack([torch.randint(num_users, (n, ), generator=g),
                         torch.randint(num_items, (n, ), generator=g)])
    key = torch.unique(pairs[0] * num_items + pairs[1])
    return InteractionGraph(num_users, num_items,
                            torch.stack([key // num_items, key % num_items]))


@pytest.mark.parametrize('scheme', ['per_user', 'per_interaction'])
def test_triples_are_valid(scheme):
    graph = random_graph()
    train = set(map(tuple, graph.train.t().tolist()))
    sampler = BPRSampler(graph, scheme, seed=1)
    users, pos, neg = sampler.sample()
    assert users.numel() == graph.train.size(1)
    for u, i, j in zip(users.tolist(), pos.tolist(), neg.tolist()):
        assert (u, i) in train  # positives are training pairs
        assert (u, j) not in train  # negatives never are
    # Per interaction: every training pair exactly once per epoch.
    if scheme == 'per_interaction':
        assert sorted(zip(users.tolist(), pos.tolist())) == sorted(train)


def test_per_user_draws_users_uniformly():
    # User 0 has 9 items, user 1 one item: per-user sampling picks each user
    # about half the time (per-interaction would pick user 0 90% of the time).
    train = torch.tensor([[0] * 9 + [1], list(range(9)) + [0]])
    graph = InteractionGraph(2, 50, train)
    users, _, _ = BPRSampler(graph, 'per_user', seed=0).sample(20000)
    share = float((users == 1).float().mean())
    assert 0.47 < share < 0.53


def test_negatives_uniform_over_non_positives():
    train = torch.tensor([[0, 0, 0], [0, 1, 2]])
    graph = InteractionGraph(1, 6, train)
    sampler = BPRSampler(graph, seed=0)
    neg = sampler.negatives(torch.zeros(30000, dtype=torch.long))
    counts = torch.bincount(neg, minlength=6).float() / neg.numel()
    assert counts[:3].sum() == 0
    assert torch.allclose(counts[3:], torch.full((3, ), 1 / 3), atol=0.02)


def test_seeded_and_multi_negative():
    graph = random_graph()
    a = BPRSampler(graph, seed=5).sample()
    b = BPRSampler(graph, seed=5).sample()
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    sampler = BPRSampler(graph, num_negatives=4, seed=0)
    users, pos, neg = sampler.sample(100)
    assert neg.shape == (100, 4)
    assert not sampler.is_positive(users.view(-1, 1).expand(-1, 4).reshape(-1),
                                   neg.reshape(-1)).any()
    batches = list(sampler.batches(33, 100))
    assert [b[0].numel() for b in batches] == [33, 33, 33, 1]


def test_sampler_bad_input():
    graph = InteractionGraph(2, 2, torch.tensor([[0, 0, 1], [0, 1, 0]]))
    with pytest.raises(ValueError, match='every item'):
        BPRSampler(graph)
    graph = random_graph()
    with pytest.raises(ValueError, match='scheme'):
        BPRSampler(graph, 'other')
    with pytest.raises(ValueError, match='batch_size'):
        next(BPRSampler(graph).batches(0))


def test_shared_negatives_per_batch():
    graph = random_graph()
    s = BPRSampler(graph, num_negatives=7, seed=3, shared_negatives=True)
    batches = list(s.batches(16))
    assert sum(b[0].numel() for b in batches) == graph.train.size(1)
    for users, pos, neg in batches:
        assert neg.shape == (1, 7)  # one row, shared by the batch
        assert int(neg.min()) >= 0 and int(neg.max()) < graph.num_items
        assert s.is_positive(users, pos).all()
    # a fresh draw per batch, uniform over all items (positives included)
    draws = torch.cat([b[2].view(-1) for b in
                       BPRSampler(graph, num_negatives=50, seed=0,
                                  shared_negatives=True).batches(8)])
    counts = torch.bincount(draws, minlength=graph.num_items).double()
    assert counts.min() > 0.6 * counts.mean()
    assert 'shared_negatives=True' in repr(s)


def test_many_negatives_are_drawn_per_batch_and_reject_positives():
    graph = random_graph()
    s = BPRSampler(graph, num_negatives=40, seed=0)
    n = 0
    for users, pos, neg in s.batches(32):
        assert neg.shape == (users.numel(), 40)
        assert not s.is_positive(users.view(-1, 1).expand_as(neg).reshape(-1),
                                 neg.reshape(-1)).any()
        n += users.numel()
    assert n == graph.train.size(1)


@pytest.mark.parametrize('bitmap', [True, False])
def test_positive_mask_matches_the_training_pairs(bitmap, monkeypatch):
    g = torch.Generator().manual_seed(0)
    keys = torch.randperm(77, generator=g)[:30]
    train = torch.stack([keys // 11, keys % 11])
    graph = InteractionGraph(7, 11, train)
    sampler = BPRSampler(graph, 'per_interaction', 1)
    if not bitmap:
        monkeypatch.setattr(sampler, 'bitmap_cells', 0)
    pairs = set(zip(train[0].tolist(), train[1].tolist()))
    users = torch.tensor([0, 3, 3, 6, 1])
    items = torch.tensor([[10, 0, 4, 4, 7, 2]])
    got = sampler.positive_mask(users, items)
    assert got.tolist() == [[(u, i) in pairs for i in items[0].tolist()]
                            for u in users.tolist()]
    assert (sampler._bitmap is not None) == bitmap
