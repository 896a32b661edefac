import pytest
import torch
from graphs import clustered_graph

from pyg_recsys.data import NodeCopying, sample_fixed_neighbors
from pyg_recsys.nn import MostPopular
from pyg_recsys.nn.models import BGCF, build_model
from pyg_recsys.train import TrainConfig, Trainer


def small(graph, **kw):
    torch.manual_seed(0)
    gen = NodeCopying(graph, epsilon=0.3)
    return BGCF(graph.num_users, graph.num_items, gen, embedding_dim=6,
                out_channels=4, num_neighbors=5, num_sampled_neighbors=3,
                num_graphs=3, **kw)


def test_sample_fixed_neighbors_uniform_with_replacement():
    rowptr = torch.tensor([0, 3, 3, 4])  # node 1 has no neighbour
    col = torch.tensor([7, 8, 9, 5])
    g = torch.Generator().manual_seed(0)
    out = sample_fixed_neighbors(rowptr, col, torch.tensor([0, 1, 2, 0]),
                                 3000, g)
    assert out.shape == (4, 3000)
    assert bool((out[1] == -1).all()) and bool((out[2] == 5).all())
    for row in (out[0], out[3]):
        counts = torch.bincount(row - 7, minlength=3).double() / 3000
        assert torch.allclose(counts, torch.full((3, ), 1 / 3,
                                                 dtype=torch.float64),
                              atol=0.04)
    assert not torch.equal(out[0], out[3])  # repeats draw independently
    with pytest.raises(ValueError, match='node ids must lie'):
        sample_fixed_neighbors(rowptr, col, torch.tensor([3]), 2)
    with pytest.raises(ValueError, match='k must be positive'):
        sample_fixed_neighbors(rowptr, col, torch.tensor([0]), 0)


def ref_representation(model, node, raw, smp):
    r"""z_v from the aggregators' formulas, one node at a time (eval)."""
    x = model.embedding.weight.detach()
    users = node < model.num_users
    mean_o = model.user_mean if users else model.item_mean
    att = model.user_att if users else model.item_att

    def mean(conv, nbrs):
        m = (torch.stack([x[j] for j in nbrs]).mean(0) if nbrs
             else torch.zeros(x.size(1)))
        return torch.tanh(conv.lin.weight @ torch.cat([x[node], m]))

    both = raw + smp
    agg = torch.zeros(x.size(1))
    if both:
        s = torch.stack([x[node] @ x[j] for j in both])
        a = torch.softmax(s, 0)
        agg = sum(w * x[j] for w, j in zip(a, both))
    out = torch.cat([mean(mean_o, raw), mean(model.sampled_mean, smp),
                     att.lin.weight @ torch.cat([agg, x[node]])])
    return torch.tanh(out)


def test_representation_matches_per_node_formulas():
    graph = clustered_graph()
    model = small(graph).eval()
    nodes = torch.tensor([graph.num_users + i for i in range(graph.num_items)])
    z = model.representation(nodes, 1, torch.Generator().manual_seed(5))
    # The same draws, replayed.
    g = torch.Generator().manual_seed(5)
    raw = sample_fixed_neighbors(*model.observed, nodes, 5, g)
    smp = sample_fixed_neighbors(*model.sampled[1], nodes, 3, g)
    for r, v in enumerate(nodes.tolist()):
        ref = ref_representation(model, v, [j for j in raw[r].tolist()
                                            if j >= 0],
                                 [j for j in smp[r].tolist() if j >= 0])
        assert torch.allclose(z[r], ref, atol=1e-6), v
    assert z.shape == (graph.num_items, 12)
    with pytest.raises(ValueError, match='all users or all items'):
        model.representation(torch.tensor([0, graph.num_users]), 0)


def test_loss_is_bgcfs_sum_and_graphs_cycle():
    graph = clustered_graph()
    model = small(graph, steps_per_graph=2).eval()  # no dropout
    users = torch.tensor([0, 3, 3])
    pos = torch.tensor([1, 2, 0]) + graph.num_users
    neg = torch.tensor([[4, 5], [6, 7], [8, 9]]) + graph.num_users
    loss, parts = model.training_loss(None, users, pos, neg, 0.03, 'bgcf')
    # Replay the step's draws: users first, then positives and negatives.
    g = torch.Generator().manual_seed(model.seed + (1 << 40))
    z_u = model.representation(users, 0, g)
    z_i = model.representation(torch.cat([pos, neg.view(-1)]), 0, g)
    x = model.embedding.weight
    r_u = torch.cat([z_u, x[users]], 1)
    r_i = torch.cat([z_i, x[torch.cat([pos, neg.view(-1)])]], 1)
    bpr = reg = 0.0
    for b in range(3):
        for m in range(2):
            diff = r_u[b] @ r_i[b] - r_u[b] @ r_i[3 + 2 * b + m]
            bpr += -torch.log(torch.sigmoid(diff))
        reg += r_u[b].pow(2).sum() + r_i[b].pow(2).sum() + \
            r_i[3 + 2 * b].pow(2).sum() + r_i[4 + 2 * b].pow(2).sum()
    assert float(loss) == pytest.approx(float(bpr + 0.015 * reg), rel=1e-5)
    assert parts['bpr'] == pytest.approx(float(bpr), rel=1e-5)
    # Evaluation mode does not count steps; training mode does, and graph
    # g serves steps [2g, 2g + 2) modulo 3.
    assert int(model.step) == 0
    model.train()
    seen = []
    for _ in range(7):
        seen.append(model.graph_index)
        model.training_loss(None, users, pos, neg, 0.03, 'bgcf')
    assert seen == [0, 0, 1, 1, 2, 2, 0]
    with pytest.raises(ValueError, match="reg_scaling='bgcf'"):
        model.training_loss(None, users, pos, neg, 0.03, 'lightgcn')


def test_shared_neighbours_and_inference_average():
    graph = clustered_graph()
    model = small(graph, share_neighbors=True, num_eval_passes=1).eval()
    users = torch.tensor([2, 2])
    pos = torch.tensor([1, 1]) + graph.num_users
    neg = torch.tensor([[4], [4]]) + graph.num_users
    loss, parts = model.training_loss(None, users, pos, neg, 0.0, 'bgcf')
    assert parts['bpr'] == pytest.approx(parts['bpr'])  # finite
    # One pass: the representation on the graph the pass drew.
    emb = model.get_embedding()
    assert emb.shape == (graph.num_nodes, 12)
    g = torch.Generator().manual_seed(model.seed + (1 << 50))
    graph_id = int(torch.randint(3, (1, ), generator=g))
    z_users = model.representation(torch.arange(graph.num_users), graph_id,
                                   g)
    assert torch.allclose(emb[:graph.num_users], z_users, atol=1e-6)


def test_trains_through_trainer_and_errors():
    graph = clustered_graph()
    model = build_model('bgcf', graph, embedding_dim=16, out_channels=8,
                        num_eval_passes=5)
    cfg = TrainConfig(epochs=20, batch_size=64, lr=1e-2, lambda_reg=0.03,
                      reg_scaling='bgcf', sampler='per_interaction',
                      num_negatives=10, eval_every=10, patience=0,
                      select='last', monitor='recall@10', ks=(5, 10))
    report = Trainer(model, graph, cfg, progress=False).fit()
    pop = Trainer(MostPopular(graph.item_degree(), graph.num_users), graph,
                  cfg, progress=False).fit()
    assert report['test']['recall@10'] > pop['test']['recall@10'] + 0.2
    assert 'generator=NodeCopying, epsilon=0.01' in str(model)
    gen = NodeCopying(graph)
    with pytest.raises(ValueError, match='fitted to'):
        BGCF(graph.num_users + 1, graph.num_items, gen)
    with pytest.raises(ValueError, match='dropout needs three'):
        BGCF(graph.num_users, graph.num_items, gen, dropout=(0.1, ))
    with pytest.raises(ValueError, match='num_neighbors must be'):
        BGCF(graph.num_users, graph.num_items, gen, num_neighbors=0)


def test_cli_trains_bgcf_with_bgcf_flags(tmp_path, monkeypatch, capsys):
    import json

    from pyg_recsys.cli import main
    from pyg_recsys.data import datasets
    from pyg_recsys.train import get_recipe
    recipe = get_recipe('bgcf', 'amazon-cds')
    assert recipe.train['batch_size'] == 5000 and \
        recipe.train['num_negatives'] == 10
    monkeypatch.setitem(datasets._REGISTRY, 'toy-bgcf',
                        lambda root, split, seed, **kw: clustered_graph())
    args = ['train', 'bgcf', '--dataset', 'toy-bgcf', '--root', str(tmp_path),
            '--epochs', '2', '--eval-every', '1', '--dim', '8',
            '--batch-size', '100', '--ks', '10,20', '--no-progress', '--json',
            '--num-samples', '2', '--keep-prob', '0.5', '--top-k', '3',
            '--out', str(tmp_path / 'run')]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0 <= report['test']['recall@10'] <= 1
    state = torch.load(tmp_path / 'run' / 'checkpoint.pt', weights_only=False)
    kwargs = state['meta']['model_kwargs']
    assert kwargs['generator'] == 'node_copy'
    assert kwargs['generator_kwargs'] == {'epsilon': 0.5, 'top_k': 3}
    assert kwargs['steps_per_graph'] == 3  # one epoch: ceil(240 / 100)
    assert kwargs['num_eval_passes'] == 2
    assert main(['evaluate', '--checkpoint',
                 str(tmp_path / 'run' / 'checkpoint.pt'), '--json']) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again['test'] == pytest.approx(report['test'])


def test_bgcf_with_peco_is_the_papers_comparison():
    graph = clustered_graph()
    from pyg_recsys.data import PECO
    model = build_model('bgcf', graph, generator='peco',
                        generator_kwargs={'alpha': 0.5}, embedding_dim=8,
                        out_channels=4, num_eval_passes=2)
    assert isinstance(model.generator, PECO)
    assert model.generator.epsilon == 0.01  # the same convention as BGCF
    # Its sampled graphs are PECO's draws with the model's graph seeds.
    users, items = model.generator.sample(seed=model.seed + (1 << 20))
    rowptr, col = model.sampled[0]
    u0 = items[users == 0] + graph.num_users
    assert torch.equal(col[rowptr[0]:rowptr[1]], u0)
    assert model.get_embedding().shape == (graph.num_nodes, 12)
