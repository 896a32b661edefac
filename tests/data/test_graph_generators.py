import itertools
import math

import pytest
import torch
from graphs import clustered_graph

import pyg_recsys.data.graph_generators as gg
from pyg_recsys.data import (
    PECO,
    InteractionGraph,
    NodeCopying,
    build_generator,
    normalized_adjacency,
)
from pyg_recsys.data.graph_generators import (
    embedding_neighbors,
    overlap_neighbors,
    sample_rows_without_replacement,
)


def random_pairs(num_users=13, num_items=11, p=0.3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    dense = torch.rand(num_users, num_items, generator=gen) < p
    dense[0] = False  # a user without items
    dense[1] = False
    dense[1, 2] = True  # a user with one item
    dense[:, 4] = False  # an item without users
    return dense.nonzero().t().contiguous(), dense


def item_sets(dense):
    return [set(torch.nonzero(row).view(-1).tolist()) for row in dense]


# ---------------------------------------------------------------- references
def ref_topk(scores, k):
    r"""Loop top-k: the k largest of {(score, id)} with score > -inf, ties
    to the lower id; returns {id: score}."""
    ranked = sorted(((s, v) for v, s in scores.items() if s > -math.inf),
                    key=lambda t: (-t[0], t[1]))
    return {v: s for s, v in ranked[:k]}


def ref_jaccard_neighbors(dense, k):
    sets = item_sets(dense)
    out = []
    for u, a in enumerate(sets):
        scores = {}
        for v, b in enumerate(sets):
            if v != u and a & b:
                scores[v] = len(a & b) / len(a | b)
        out.append(ref_topk(scores, k))
    return out


def ref_count_neighbors(dense, k):
    return [ref_topk({v: len(a & b) for v, b in enumerate(item_sets(dense))
                      if v != u and a & b}, k)
            for u, a in enumerate(item_sets(dense))]


def ref_cosine_neighbors(emb, k):
    emb = emb.to(torch.float64)
    out = []
    for u in range(emb.size(0)):
        scores = {}
        for v in range(emb.size(0)):
            if v != u:
                scores[v] = float(emb[u] @ emb[v] / emb[u].norm()
                                  / emb[v].norm())
        out.append(ref_topk(scores, k))
    return out


def ref_weights(neigh, weighting):
    out = []
    for row in neigh:
        w = {v: (1.0 if weighting == 'uniform' else max(s, 0.0))
             for v, s in row.items()}
        total = sum(w.values())
        out.append({v: x / total for v, x in w.items() if x > 0}
                   if total > 0 else {})
    return out


def ref_peco(dense, alpha, beta, k_user, k_item, weighting='similarity',
             emb=None):
    r"""p(i | u) of the PECO docstring, one user and item at a time."""
    num_users, num_items = dense.shape
    sets = item_sets(dense)
    users_of = item_sets(dense.t())
    if emb is None:
        neigh = ref_jaccard_neighbors(dense, k_user)
    else:
        neigh = ref_cosine_neighbors(emb, k_user)
    w = ref_weights(neigh, weighting)
    co = ref_weights(ref_count_neighbors(dense.t(), k_item), 'similarity')
    out = torch.zeros(num_users, num_items, dtype=torch.float64)
    for u in range(num_users):
        for i in range(num_items):
            pref = sum(wv / len(sets[v]) for v, wv in w[u].items()
                       if i in sets[v])
            conc = sum(co[j].get(i, 0.0) for j in sets[u]) / len(sets[u]) \
                if sets[u] else 0.0
            val = (1 - alpha) * pref + alpha * conc
            if val > 0:
                out[u, i] = val * len(users_of[i]) ** -beta
        if out[u].sum() > 0:
            out[u] /= out[u].sum()
    return out


def as_dicts(index, score):
    return [{int(v): float(s) for v, s in zip(ir, sr) if s > -math.inf}
            for ir, sr in zip(index, score)]


# ------------------------------------------------------------ neighbour lists
@pytest.mark.parametrize('k', [1, 3, 20])
@pytest.mark.parametrize('method,batch_size', [('dense', None), ('dense', 1),
                                               ('dense', 4), ('sparse', None),
                                               ('auto', None)])
def test_overlap_neighbors_match_loops(k, method, batch_size, monkeypatch):
    monkeypatch.setattr(gg, '_CHUNK_TRIPLES', 10)  # many sparse chunks
    pairs, dense = random_pairs()
    index, score = overlap_neighbors(pairs, 13, 11, k, 'jaccard', batch_size,
                                     method)
    assert index.shape == (13, min(k, 13))
    assert int(index.min()) >= 0 and int(index.max()) < 13
    got = as_dicts(index, score)
    ref = ref_jaccard_neighbors(dense, k)
    for g, r in zip(got, ref):
        assert g.keys() == r.keys()
        for v in r:
            assert g[v] == pytest.approx(r[v], abs=1e-12)
    items = torch.stack([pairs[1], pairs[0]])
    items = items[:, torch.argsort(items[0] * 13 + items[1])]
    index, score = overlap_neighbors(items, 11, 13, k, 'count', batch_size,
                                     method)
    assert as_dicts(index, score) == ref_count_neighbors(dense.t(), k)


@pytest.mark.parametrize('method', ['dense', 'sparse'])
def test_ties_go_to_lower_ids(method):
    # User 0 shares one item with each of users 1..4 (equal Jaccard).
    pairs = torch.tensor([[0, 0, 0, 0, 1, 2, 3, 4],
                          [0, 1, 2, 3, 0, 1, 2, 3]])
    index, score = overlap_neighbors(pairs, 5, 4, 2, method=method)
    assert sorted(index[0].tolist()) == [1, 2]
    assert score[0].tolist() == [0.25, 0.25]
    with pytest.raises(ValueError, match="method must be"):
        overlap_neighbors(pairs, 5, 4, 2, method='exact')
    emb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 1.0],
                        [2.0, 2.0]])
    index, _ = embedding_neighbors(emb, 2)
    assert index[0].tolist() == [2, 3]  # 2, 3 and 4 tie; 1 is orthogonal


@pytest.mark.parametrize('batch_size', [None, 2])
def test_embedding_neighbors_match_loops(batch_size):
    emb = torch.randn(9, 4, generator=torch.Generator().manual_seed(1))
    index, score = embedding_neighbors(emb, 3, batch_size)
    got, ref = as_dicts(index, score), ref_cosine_neighbors(emb, 3)
    for g, r in zip(got, ref):
        assert g.keys() == r.keys()
        assert [g[v] for v in r] == pytest.approx([r[v] for v in r])


# ------------------------------------------------------------- node copying
@pytest.mark.parametrize('weighting', ['uniform', 'similarity'])
def test_node_copying_distribution_matches_loops(weighting):
    pairs, dense = random_pairs()
    gen = NodeCopying(pairs, 13, 11, top_k=4, weighting=weighting)
    cand, probs = gen.copy_distribution()
    # BGCF's candidates: the min(d_u, k) most similar users (user 1 has one
    # item, so one candidate).
    sets = item_sets(dense)
    ref = ref_weights([ref_topk(row, min(len(sets[u]), 4)) for u, row in
                       enumerate(ref_jaccard_neighbors(dense, 4))], weighting)
    assert len(ref[1]) == 1
    for u in range(13):
        got = {int(v): float(p) for v, p in zip(cand[u], probs[u]) if p > 0}
        assert got.keys() == ref[u].keys()
        for v in got:
            assert got[v] == pytest.approx(ref[u][v])
    assert not bool(gen.can_copy[0])  # no items, nobody to copy


def node_copy_edge_probs(gen, dense):
    r"""P((u, i) in the sampled graph) from the copy distribution."""
    sets = item_sets(dense)
    cand, probs = gen.copy_distribution()
    keep = gen.epsilon  # BGCF's: the probability of keeping one's items
    out = torch.zeros(dense.shape, dtype=torch.float64)
    for u in range(dense.size(0)):
        copy = 1 - keep if bool(gen.can_copy[u]) else 0.0
        for i in sets[u]:
            out[u, i] += 1 - copy
        for v, p in zip(cand[u].tolist(), probs[u].tolist()):
            for i in sets[v]:
                out[u, i] += copy * p
    return out


def frequencies(gen, draws, shape):
    g = torch.Generator().manual_seed(123)
    count = torch.zeros(shape, dtype=torch.float64)
    for _ in range(draws):
        users, items = gen.sample(generator=g)
        count[users, items] += 1
    return count / draws


@pytest.mark.parametrize('similarity', ['jaccard', 'embedding'])
def test_node_copying_sampling_statistics(similarity):
    pairs, dense = random_pairs(8, 7, p=0.4, seed=3)
    sim = 'jaccard' if similarity == 'jaccard' else torch.randn(
        8, 3, generator=torch.Generator().manual_seed(0))
    gen = NodeCopying(pairs, 8, 7, epsilon=0.6, top_k=3, similarity=sim,
                      weighting='uniform')
    assert gen.replace_prob == pytest.approx(0.4)
    draws = 800
    freq = frequencies(gen, draws, (8, 7))
    expected = node_copy_edge_probs(gen, dense)
    sd = (expected * (1 - expected) / draws).sqrt()
    assert bool(((freq - expected).abs() <= 5 * sd + 1e-9).all())


# --------------------------------------------------------------------- PECO
@pytest.mark.parametrize('alpha,beta', [(0.0, 0.0), (0.5, 0.5), (1.0, 1.0),
                                        (0.3, 0.0)])
@pytest.mark.parametrize('weighting', ['similarity', 'uniform'])
@pytest.mark.parametrize('shape', [(13, 11, 0.3), (70, 60, 0.03)])
def test_peco_probabilities_match_loops(alpha, beta, weighting, shape):
    num_users, num_items, p = shape  # the second takes the sparse path
    pairs, dense = random_pairs(num_users, num_items, p)
    gen = PECO(pairs, num_users, num_items, alpha=alpha, beta=beta,
               user_top_k=3, item_top_k=4, weighting=weighting)
    got = gen.probabilities().to_dense()
    ref = ref_peco(dense, alpha, beta, 3, 4, weighting)
    assert torch.allclose(got, ref, atol=1e-12)


def test_peco_probabilities_with_embeddings_and_chunks(monkeypatch):
    pairs, dense = random_pairs(seed=5)
    emb = torch.randn(13, 5, generator=torch.Generator().manual_seed(2))
    ref = ref_peco(dense, 0.4, 0.5, 3, 2, emb=emb)
    gen = PECO(pairs, 13, 11, alpha=0.4, user_top_k=3, item_top_k=2,
               similarity=emb)
    assert torch.allclose(gen.probabilities().to_dense(), ref, atol=1e-12)
    monkeypatch.setattr(gg, '_CHUNK_TRIPLES', 7)  # many small user chunks
    chunked = PECO(pairs, 13, 11, alpha=0.4, user_top_k=3, item_top_k=2,
                   similarity=emb, batch_size=3)
    assert torch.allclose(chunked.probabilities().to_dense(), ref,
                          atol=1e-12)


def exact_inclusion(p, take):
    r"""Inclusion probabilities of successive sampling by enumeration of
    the ordered draws."""
    n = len(p)
    out = [0.0] * n
    for seq in itertools.permutations(range(n), take):
        prob, left = 1.0, 1.0
        for j in seq:
            prob *= p[j] / left
            left -= p[j]
        for j in seq:
            out[j] += prob
    return out


def test_sample_rows_without_replacement_statistics():
    prob = torch.tensor([0.5, 0.3, 0.15, 0.05, 0.6, 0.4, 1.0],
                        dtype=torch.float64)
    rowptr = torch.tensor([0, 4, 6, 7])
    rows = torch.tensor([0, 1, 2])
    take = torch.tensor([2, 1, 1])
    g = torch.Generator().manual_seed(0)
    draws = 20000  # all draws in one call: the rows repeated
    owner, pos = sample_rows_without_replacement(
        rowptr, prob, rows.repeat(draws), take.repeat(draws), g)
    assert torch.equal(torch.bincount(owner), torch.ones(3 * draws,
                       dtype=torch.int64).index_fill_(
                           0, torch.arange(0, 3 * draws, 3), 2))
    # Distinct positions within every draw of row 0.
    first = pos.view(draws, 4)[:, :2]
    assert bool((first[:, 0] != first[:, 1]).all())
    count = torch.bincount(pos, minlength=7).to(torch.float64)
    freq = count / draws
    expected = torch.tensor(exact_inclusion([0.5, 0.3, 0.15, 0.05], 2)
                            + [0.6, 0.4, 1.0], dtype=torch.float64)
    sd = (expected * (1 - expected) / draws).sqrt()
    assert bool(((freq - expected).abs() <= 5 * sd + 1e-9).all())


def test_peco_sampling_statistics_and_degrees():
    pairs, dense = random_pairs()
    gen = PECO(pairs, 13, 11, alpha=0.5, beta=0.5, epsilon=0.5,
               user_top_k=3, item_top_k=4)
    prob = gen.probabilities().to_dense()
    length = (prob > 0).sum(1)
    deg = dense.sum(1)
    g = torch.Generator().manual_seed(7)
    draws = 800
    count = torch.zeros(dense.shape, dtype=torch.float64)
    for _ in range(draws):
        users, items = gen.sample(generator=g)
        count[users, items] += 1
        got = torch.bincount(users, minlength=13)
        # Kept users keep their degree; redrawn ones get min(d_u, |C(u)|).
        assert bool(((got == deg) | (got == torch.minimum(deg, length))
                     ).all())
        assert bool((prob[users, items] > 0).logical_or(
            dense[users, items]).all())
    freq = count / draws
    assert float(prob[1].sum()) == pytest.approx(1.0)
    # A user with one item: P((u, i)) = (1 - eps) [i in N(u)] + eps p(i|u).
    expected = 0.5 * dense[1].to(torch.float64) + 0.5 * prob[1]
    sd = (expected * (1 - expected) / draws).sqrt()
    assert bool(((freq[1] - expected).abs() <= 5 * sd + 1e-9).all())
    assert float(freq[1].sum()) == pytest.approx(1.0)


@pytest.mark.parametrize('cls', [NodeCopying, PECO])
def test_seeded_sorted_and_in_range(cls):
    graph = clustered_graph()
    gen = cls(graph, epsilon=0.7)
    users, items = gen.sample(seed=11)
    assert users.dtype == items.dtype == torch.int64
    again = gen.sample(seed=11)
    assert torch.equal(users, again[0]) and torch.equal(items, again[1])
    g1 = torch.Generator().manual_seed(11)
    assert torch.equal(gen.sample(generator=g1)[1], items)
    other = gen.sample(seed=12)
    assert not (torch.equal(users, other[0]) and torch.equal(items, other[1]))
    keys = users * graph.num_items + items
    assert bool((keys[1:] > keys[:-1]).all())  # sorted, no repeats
    assert int(users.max()) < graph.num_users
    assert int(items.max()) < graph.num_items
    torch.manual_seed(0)
    a = gen.sample()
    torch.manual_seed(0)
    assert torch.equal(gen.sample()[1], a[1])  # follows the global seed
    with pytest.raises(ValueError, match='either seed or generator'):
        gen.sample(seed=1, generator=g1)


@pytest.mark.parametrize('name', ['node_copy', 'peco'])
def test_adjacency_of_sampled_graph(name):
    graph = clustered_graph()
    observed = build_generator(name, graph, epsilon=1.0)  # all keep
    users, items = observed.sample(seed=0)
    assert torch.equal(torch.stack([users, items]), graph.train)
    adj = observed.sample_adj(seed=0)
    assert torch.equal(adj.to_dense(), graph.norm_adj().to_dense())
    gen = build_generator(name, graph, epsilon=0.0)  # all replaced
    users, items = gen.sample(seed=3)
    adj = gen.sample_adj(seed=3).to_dense()
    ref = torch.zeros(graph.num_nodes, graph.num_nodes, dtype=torch.float64)
    ref[users, items + graph.num_users] = 1
    ref = ref + ref.t()
    dinv = ref.sum(1).pow(-0.5)
    dinv[torch.isinf(dinv)] = 0
    assert torch.allclose(adj.double(), dinv[:, None] * ref * dinv[None, :],
                          atol=1e-6)
    assert torch.equal(
        normalized_adjacency(torch.stack([users, items]), graph.num_users,
                             graph.num_items).to_dense(), adj)


def test_pair_tensor_input_equals_graph_input():
    graph = clustered_graph()
    a = PECO(graph)
    shuffled = graph.train[:, torch.randperm(graph.train.size(1))]
    doubled = torch.cat([shuffled, shuffled[:, :5]], 1)  # repeats kept once
    b = PECO(doubled, graph.num_users, graph.num_items)
    assert torch.equal(a.probabilities().to_dense(),
                       b.probabilities().to_dense())
    c = PECO(graph.train)  # sizes from the largest ids
    assert c.num_users == int(graph.train[0].max()) + 1


def test_bad_input():
    pairs, _ = random_pairs()
    with pytest.raises(ValueError, match='out of range'):
        NodeCopying(pairs, 5, 11)
    with pytest.raises(ValueError, match='item id 10 is out of range'):
        PECO(pairs, 13, 10)
    with pytest.raises(ValueError, match='negative user id'):
        PECO(torch.tensor([[-1, 0], [0, 1]]))
    with pytest.raises(ValueError, match='empty'):
        NodeCopying(torch.empty(2, 0, dtype=torch.long), 3, 3)
    with pytest.raises(ValueError, match=r'shape \[2, num_interactions\]'):
        PECO(torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(TypeError, match='integer ids'):
        PECO(pairs.float())
    graph = clustered_graph()
    with pytest.raises(ValueError, match='disagrees'):
        PECO(graph, num_users=3)
    for kwargs, msg in [({'epsilon': -0.1}, 'epsilon must lie in'),
                        ({'epsilon': 1.5}, 'epsilon must lie in'),
                        ({'alpha': 2.0}, 'alpha must lie in'),
                        ({'beta': -1.0}, 'beta must be'),
                        ({'beta': float('nan')}, 'beta must be'),
                        ({'user_top_k': 0}, 'user_top_k must be a positive'),
                        ({'item_top_k': 1.5}, 'item_top_k must be a positive'),
                        ({'similarity': 'cosine'}, "'jaccard' or a tensor"),
                        ({'similarity': torch.randn(3, 2)}, r'shape \['),
                        ({'similarity': torch.full((40, 2), float('inf'))},
                         'finite'),
                        ({'weighting': 'softmax'}, 'weighting must be'),
                        ({'batch_size': 0}, 'batch_size must be positive')]:
        with pytest.raises(ValueError, match=msg):
            PECO(graph, **kwargs)
    with pytest.raises(ValueError, match='top_k must be a positive'):
        NodeCopying(graph, top_k=0)
    with pytest.raises(ValueError, match='unknown graph generator'):
        build_generator('copy', graph)


def test_isolated_users_keep_nothing_and_repr():
    # Users 0 and 1 share nothing with anyone: nobody to copy, no candidate.
    pairs = torch.tensor([[0, 1, 2, 2, 3, 3], [0, 1, 2, 3, 2, 3]])
    graph = InteractionGraph(5, 4, pairs)
    nc = NodeCopying(graph, epsilon=0.0)
    assert nc.can_copy.tolist() == [False, False, True, True, False]
    users, items = nc.sample(seed=0)
    assert users.tolist() == [0, 1, 2, 2, 3, 3]
    assert items.tolist() == [0, 1, 2, 3, 2, 3]
    peco = PECO(graph, replace_prob=1.0, alpha=0.0)
    assert torch.equal(peco.sample(seed=0)[1], items)
    assert 'epsilon=0.0' in repr(nc) and 'alpha=0.0' in repr(peco)


@pytest.mark.parametrize('cls', [NodeCopying, PECO])
def test_epsilon_is_bgcfs_probability_of_keeping(cls):
    graph = clustered_graph()
    assert cls(graph).epsilon == 0.01  # BGCF's default: 99% replaced
    assert cls(graph).replace_prob == pytest.approx(0.99)
    assert cls(graph, replace_prob=0.1).epsilon == pytest.approx(0.9)
    with pytest.raises(ValueError, match='not both'):
        cls(graph, epsilon=0.5, replace_prob=0.5)
    with pytest.raises(ValueError, match='replace_prob must lie in'):
        cls(graph, replace_prob=1.5)
    # Counted on draws: with epsilon = 0.8, about 80% of the users that can
    # change keep exactly their observed items.
    gen = cls(graph, epsilon=0.8)
    sets = [set(graph.train[1][graph.train[0] == u].tolist())
            for u in range(graph.num_users)]
    kept = total = 0
    for seed in range(60):
        users, items = gen.sample(seed=seed)
        for u in range(graph.num_users):
            got = set(items[users == u].tolist())
            total += 1
            kept += got == sets[u]
    assert 0.72 < kept / total < 0.88
