import pytest
import torch
from graphs import clustered_graph
from torch_geometric.data import Data
from torch_geometric.loader import LinkNeighborLoader
from torch_geometric.utils import to_undirected

from pyg_recsys.data import (
    SubgraphSampler,
    TorchNeighborSampler,
    sample_neighbors,
    sampled_adjacency,
)
from pyg_recsys.nn import MF, LightGCN
from pyg_recsys.train import TrainConfig, Trainer


def random_csc(num_nodes=30, num_edges=120, seed=0):
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(num_nodes, (2, num_edges), generator=g)
    edge_index = torch.unique(edge_index, dim=1)  # distinct (src, dst)
    order = torch.argsort(edge_index[1] * num_nodes + edge_index[0])
    src, dst = edge_index[:, order]
    colptr = torch.zeros(num_nodes + 1, dtype=torch.long)
    colptr[1:] = torch.cumsum(torch.bincount(dst, minlength=num_nodes), 0)
    return colptr, src


def naive_all(colptr, row, seed, hops):
    # Breadth-first, each node expanded once, its sources in CSC order.
    node = [int(v) for v in seed]
    local = {}
    for i, v in enumerate(node):
        local.setdefault(v, i)
    rows, cols, start = [], [], 0
    for _ in range(hops):
        end = len(node)
        for t in range(start, end):
            v = node[t]
            for e in range(int(colptr[v]), int(colptr[v + 1])):
                s = int(row[e])
                if s not in local:
                    local[s] = len(node)
                    node.append(s)
                rows.append(local[s])
                cols.append(t)
        start = end
    return node, rows, cols


@pytest.mark.parametrize('seed', [[3], [5, 1, 7], [2, 2, 9]])
def test_all_neighbours_equal_breadth_first_loop(seed):
    colptr, row = random_csc()
    node, r, c, edge, num_nodes, num_edges = sample_neighbors(
        colptr, row, torch.tensor(seed), [-1, -1, -1])
    ref_node, ref_r, ref_c = naive_all(colptr, row, seed, 3)
    assert node.tolist() == ref_node
    assert r.tolist() == ref_r and c.tolist() == ref_c
    assert torch.equal(row[edge], node[r])  # edge ids: positions in row
    assert sum(num_nodes) == node.numel() and sum(num_edges) == r.numel()


def test_sampled_edges_exist_and_counts_are_capped():
    colptr, row = random_csc(num_nodes=40, num_edges=400)
    deg = colptr.diff()
    g = torch.Generator().manual_seed(1)
    seed = torch.tensor([0, 4, 8, 12])
    node, r, c, edge, num_nodes, num_edges = sample_neighbors(
        colptr, row, seed, [3, 2], generator=g)
    assert torch.equal(node[:4], seed)
    assert node.unique().numel() == node.numel()
    # Every sampled edge is an edge of the graph into its target.
    tgt = node[c]
    assert bool(((edge >= colptr[tgt]) & (edge < colptr[tgt + 1])).all())
    assert torch.equal(row[edge], node[r])
    # Hop 1: min(deg, 3) distinct sources per seed; hop 2: min(deg, 2).
    hop1 = c[:num_edges[0]]
    assert torch.equal(torch.bincount(hop1, minlength=4),
                       deg[seed].clamp(max=3))
    frontier = torch.arange(4, 4 + num_nodes[1])
    hop2 = c[num_edges[0]:]
    assert torch.equal(torch.bincount(hop2, minlength=node.numel())[frontier],
                       deg[node[frontier]].clamp(max=2))
    assert edge.unique().numel() == edge.numel()


def test_draws_are_uniform_without_replacement():
    # A star: node 0 has 10 sources; 3 drawn, each with probability 0.3.
    colptr = torch.tensor([0] + [10] * 11)
    row = torch.arange(1, 11)
    g = torch.Generator().manual_seed(0)
    hits = torch.zeros(11)
    trials = 4000
    for _ in range(trials):
        node, r, *_ = sample_neighbors(colptr, row, torch.tensor([0]), [3],
                                       generator=g)
        assert node.numel() == 4
        hits[node[1:]] += 1
    freq = hits[1:] / trials
    assert float((freq - 0.3).abs().max()) < 0.035


def test_replacement_draws_k_per_node():
    colptr, row = random_csc()
    deg = colptr.diff()
    seed = torch.arange(6)
    node, r, c, edge, _, num_edges = sample_neighbors(
        colptr, row, seed, [4], replace=True,
        generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.bincount(c, minlength=6),
                       torch.where(deg[seed] > 0, 4, 0))
    assert torch.equal(row[edge], node[r])


def test_bad_seed_is_an_error():
    colptr, row = random_csc()
    with pytest.raises(ValueError, match='seed ids'):
        sample_neighbors(colptr, row, torch.tensor([30]), [2])


def test_sampled_adjacency_is_exact_with_all_neighbours():
    graph = clustered_graph()
    adj = graph.norm_adj()
    x = torch.randn(graph.num_nodes, 5, dtype=torch.float)
    full = adj.to_dense() @ (adj.to_dense() @ x)
    seeds = torch.tensor([0, 7, 45, 60])
    sub = SubgraphSampler(adj, [-1, -1])
    node, r, c, *_ = sample_neighbors(sub.colptr, sub.row, seeds, [-1, -1])
    a = sampled_adjacency(torch.stack([r, c]), node, sub.degree).to_dense()
    out = a @ (a @ x[node])
    torch.testing.assert_close(out[:4], full[seeds], atol=1e-5, rtol=1e-5)


def test_sampled_adjacency_is_unbiased():
    # One layer with 2 of each seed's neighbours: the mean over draws of the
    # seeds' rows approaches (A x)[seeds].
    graph = clustered_graph()
    adj = graph.norm_adj()
    x = torch.randn(graph.num_nodes, 3, dtype=torch.float64)
    seeds = torch.tensor([3, 50])
    ref = (adj.to_dense().double() @ x)[seeds]
    sub = SubgraphSampler(adj, [2], torch.Generator().manual_seed(0))
    total = torch.zeros_like(ref)
    trials = 3000
    for _ in range(trials):
        node, r, c, *_ = sample_neighbors(sub.colptr, sub.row, seeds, [2],
                                          generator=sub.generator)
        a = sampled_adjacency(torch.stack([r, c]), node, sub.degree)
        total += (a.to_dense().double() @ x[node])[:2]
    # (Without the d_t / c_t factor the mean is off by far more.)
    torch.testing.assert_close(total / trials, ref, atol=0.03, rtol=0)


def test_link_neighbor_loader_with_torch_sampler():
    graph = clustered_graph()
    off = graph.num_users
    u, i = graph.train
    edge_index = to_undirected(torch.stack([u, i + off]))
    data = Data(edge_index=edge_index, num_nodes=graph.num_nodes)
    sampler = TorchNeighborSampler(data, [3, 2])
    weight = torch.zeros(graph.num_nodes)
    weight[off:] = 1  # negatives among items only
    from torch_geometric.sampler import NegativeSampling
    loader = LinkNeighborLoader(
        data, [3, 2], neighbor_sampler=sampler,
        edge_label_index=torch.stack([u, i + off]), batch_size=16,
        shuffle=True, neg_sampling=NegativeSampling('triplet', dst_weight=weight))
    dense = torch.zeros(graph.num_nodes, graph.num_nodes, dtype=torch.bool)
    dense[edge_index[0], edge_index[1]] = True
    seen = 0
    model = LightGCN(num_users=graph.num_users, num_items=graph.num_items,
                     embedding_dim=4, num_layers=2)
    for batch in loader:
        src, dst = batch.n_id[batch.edge_index]
        assert bool(dense[src, dst].all())
        users = batch.n_id[batch.src_index]
        pos = batch.n_id[batch.dst_pos_index]
        assert bool(dense[users, pos].all())
        assert bool((batch.n_id[batch.dst_neg_index] >= off).all())
        adj = sampled_adjacency(batch.edge_index, batch.n_id,
                                torch.bincount(edge_index[1],
                                               minlength=graph.num_nodes))
        out = model.get_embedding(adj, n_id=batch.n_id)
        assert out.shape == (batch.n_id.numel(), 4)
        seen += batch.src_index.numel()
    assert seen == u.numel()


def test_sampler_rejects_unsupported_options():
    data = Data(edge_index=torch.tensor([[0, 1], [1, 0]]), num_nodes=2)
    with pytest.raises(ValueError, match='disjoint'):
        TorchNeighborSampler(data, [2], disjoint=True)
    with pytest.raises(ValueError, match='weight_attr'):
        TorchNeighborSampler(data, [2], weight_attr='w')


def _config(**kw):
    return TrainConfig(epochs=2, batch_size=32, lr=0.01, lambda_reg=1e-3,
                       eval_every=1, patience=0, select='last', ks=(5, 10),
                       seed=3, threads=1, **kw)


@pytest.mark.parametrize('name', ['lightgcn', 'mf'])
def test_subgraph_training_with_all_neighbours_is_full_graph_training(name):
    graph = clustered_graph()

    def build():
        torch.manual_seed(0)
        if name == 'mf':
            return MF(40, 30, 8).double()
        return LightGCN(num_users=40, num_items=30, embedding_dim=8,
                        num_layers=2).double()

    full = Trainer(build(), graph, _config(), progress=False)
    full.fit()
    hops = [-1, -1] if name == 'lightgcn' else []
    sub = Trainer(build(), graph, _config(num_neighbors=hops), progress=False)
    sub.fit()
    for a, b in zip(full.model.parameters(), sub.model.parameters()):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)


def test_subgraph_training_with_sampling_learns():
    graph = clustered_graph()
    torch.manual_seed(0)
    model = LightGCN(num_users=40, num_items=30, embedding_dim=8,
                     num_layers=2)
    cfg = TrainConfig(epochs=30, batch_size=64, lr=0.02, eval_every=30,
                      patience=0, select='last', ks=(5, 10), seed=0,
                      threads=1, num_neighbors=[3, 3])
    trainer = Trainer(model, graph, cfg, progress=False)
    trainer.fit()
    # Two communities: a trained model ranks the user's own half first;
    # random ranking gives recall@10 about 10 / 30 of 2/3 of that.
    assert trainer.evaluate('test')['recall@10'] > 0.45


def test_subgraph_options_are_checked():
    graph = clustered_graph()
    model = LightGCN(num_users=40, num_items=30, embedding_dim=8,
                     num_layers=2)
    with pytest.raises(ValueError, match='one count per propagation layer'):
        Trainer(model, graph, _config(num_neighbors=[5]), progress=False)
    with pytest.raises(ValueError, match='positive counts or -1'):
        _config(num_neighbors=[5, 0])
    from pyg_recsys.nn import DCCF
    dccf = DCCF(num_users=40, num_items=30, embedding_dim=8)
    with pytest.raises(ValueError, match='does not train on sampled'):
        Trainer(dccf, graph, _config(num_neighbors=[5, 5]), progress=False)
