import json

import pytest
import torch
from graphs import clustered_graph

import pyg_recsys.data.datasets as datasets
from pyg_recsys.cli import main
from pyg_recsys.data import PECO, NodeCopying
from pyg_recsys.metrics import Evaluator
from pyg_recsys.nn import BayesianRecommender, LightGCN
from pyg_recsys.train import TrainConfig, Trainer, build_model


def make(graph, generator='peco', num_samples=3, resample_every=2, seed=0):
    torch.manual_seed(0)
    base = LightGCN(num_users=graph.num_users, num_items=graph.num_items,
                    embedding_dim=8,
                    num_layers=2)
    cls = PECO if generator == 'peco' else NodeCopying
    gen = cls(graph, replace_prob=0.8)
    return BayesianRecommender(base, gen, num_samples=num_samples,
                               resample_every=resample_every, seed=seed)


@pytest.mark.parametrize('generator', ['peco', 'node_copy'])
def test_concatenation_equals_mean_of_scores(generator):
    graph = clustered_graph()
    model = make(graph, generator).eval()
    user_emb, item_emb = model.split_embedding(model.get_embedding(None))
    assert user_emb.shape == (graph.num_users, 3 * 8)
    assert item_emb.shape == (graph.num_items, 3 * 8)
    # The mean over the S graphs of the per-graph dot products, one graph
    # at a time from the generator's seeds.
    per_graph = []
    for adj in model.inference_adjs():
        u, i = model.split_embedding(model.base.get_embedding(adj))
        per_graph.append(u @ i.t())
    mean = torch.stack(per_graph).mean(0)
    assert torch.allclose(user_emb @ item_emb.t(), mean, atol=1e-6)
    users = torch.tensor([0, 5, 39])
    assert torch.allclose(model.sample_scores(users).mean(0), mean[users],
                          atol=1e-6)
    assert torch.allclose(model(None, torch.stack([
        users, torch.full_like(users, graph.num_users + 3)])),
        mean[users, 3], atol=1e-6)
    # The graphs are the generator's, from the inference seed stream, and
    # they are not all the same.
    seeds = [model.seed + (1 << 40) + s for s in range(3)]
    dense = [a.to_dense() for a in model.inference_adjs()]
    for s, a in zip(seeds, dense):
        assert torch.equal(model.generator.sample_adj(seed=s).to_dense(), a)
    assert not torch.equal(dense[0], dense[1])
    # The evaluator ranks by the averaged scores.
    ev = Evaluator(graph, split='test', ks=(5,))
    ref = ev.evaluate_scores(lambda u: mean[u])
    assert ev.evaluate(user_emb, item_emb) == pytest.approx(ref)
    links = torch.stack([graph.train[0], graph.train[1] + graph.num_users])
    top = model.recommend(None, src_index=torch.tensor([0, 1]),
                          dst_index=model.item_index, k=3,
                          exclude_links=links)
    assert top.shape == (2, 3)
    for row, u in zip(top.tolist(), (0, 1)):  # best by the mean scores
        seen = set(graph.train[1][graph.train[0] == u].tolist())
        order = sorted((i for i in range(graph.num_items) if i not in seen),
                       key=lambda i: (-float(mean[u, i]), i))
        assert [i - graph.num_users for i in row] == order[:3]


def test_single_sample_is_the_base_model_on_that_graph():
    graph = clustered_graph()
    model = make(graph, num_samples=1).eval()
    u, i = model.split_embedding(model.get_embedding(None))
    bu, bi = model.split_embedding(
        model.base.get_embedding(model.inference_adjs()[0]))
    assert torch.equal(u, bu) and torch.equal(i, bi)


def test_training_graph_schedule():
    graph = clustered_graph()
    model = make(graph, resample_every=2).train()
    users = torch.tensor([0, 1])
    pos, neg = users + graph.num_users, users + 2 + graph.num_users
    seen = []
    for _ in range(5):
        seen.append(model.train_adj())
        model.training_loss(None, users, pos, neg)
    assert int(model.step) == 5
    assert seen[0] is seen[1] and seen[2] is seen[3] and seen[1] is not seen[2]
    for t, adj in ((0, seen[0]), (1, seen[2]), (2, seen[4])):
        ref = model.generator.sample_adj(seed=model.seed + t)
        assert torch.equal(adj.to_dense(), ref.to_dense())
    # The loss is the base model's on the current sampled graph.
    loss, parts = model.training_loss(None, users, pos, neg, 0.0)
    ref, _ = model.base.training_loss(model.generator.sample_adj(
        seed=model.seed + 2), users, pos, neg, 0.0)
    assert torch.allclose(loss, ref)
    assert set(parts) == {'bpr', 'reg'}
    # Evaluation-mode calls do not advance the schedule.
    model.eval()
    model.training_loss(None, users, pos, neg)
    assert int(model.step) == 6


@pytest.mark.parametrize('generator', ['peco', 'node_copy'])
def test_trains_through_trainer_and_resumes(generator, tmp_path):
    graph = clustered_graph()
    kwargs = dict(generator=generator, embedding_dim=8, num_layers=2,
                  num_samples=2, resample_every=3,
                  generator_kwargs={'epsilon': 0.5})
    torch.manual_seed(0)
    model = build_model('bayes-lightgcn', graph, **kwargs)
    assert isinstance(model, BayesianRecommender)
    assert isinstance(model.generator,
                      PECO if generator == 'peco' else NodeCopying)
    config = TrainConfig(epochs=4, batch_size=64, lr=1e-2, eval_every=2,
                         select='last', patience=0, ks=(5, 10),
                         monitor='ndcg@10')
    trainer = Trainer(model, graph, config, out_dir=str(tmp_path),
                      progress=False)
    report = trainer.fit()
    steps = 4 * -(-graph.train.size(1) // 64)
    assert int(model.step) == steps
    assert 0 <= report['test']['recall@10'] <= 1
    state = torch.load(tmp_path / 'checkpoint.pt', weights_only=False)
    assert int(state['model']['step']) == steps

    # A fresh model resumed from the checkpoint continues the schedule.
    torch.manual_seed(0)
    again = build_model('bayes-lightgcn', graph, **kwargs)
    resumed = Trainer(again, graph, TrainConfig(**{**config.to_dict(),
                                                   'epochs': 4}),
                      out_dir=str(tmp_path), progress=False)
    assert resumed.resume()
    assert int(again.step) == steps
    assert resumed.evaluate('test') == pytest.approx(report['test'])


def test_bad_arguments():
    graph = clustered_graph()
    base = LightGCN(num_users=graph.num_users, num_items=graph.num_items,
                    embedding_dim=4)
    gen = NodeCopying(graph)
    with pytest.raises(ValueError, match='num_samples must be a positive'):
        BayesianRecommender(base, gen, num_samples=0)
    with pytest.raises(ValueError, match='resample_every must be a positive'):
        BayesianRecommender(base, gen, resample_every=1.5)
    with pytest.raises(TypeError, match='sample_adj'):
        BayesianRecommender(base, object())
    other = LightGCN(num_users=graph.num_users + 1,
                     num_items=graph.num_items, embedding_dim=4)
    with pytest.raises(ValueError, match='num_users'):
        BayesianRecommender(other, gen)
    with pytest.raises(ValueError, match='unknown graph generator'):
        build_model('bayes-lightgcn', graph, generator='nope')
    assert 'num_samples=4' in repr(BayesianRecommender(base, gen))


def test_cli(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(datasets._REGISTRY, 'toy-bayes',
                        lambda root, split, seed, **kw: clustered_graph())
    args = ['train', 'bayes-lightgcn', '--dataset', 'toy-bayes', '--root',
            str(tmp_path), '--epochs', '2', '--eval-every', '1', '--dim', '8',
            '--layers', '1', '--batch-size', '100', '--ks', '5,10',
            '--no-progress', '--json', '--num-samples', '2',
            '--out', str(tmp_path / 'run')]
    assert main(args + ['--generator', 'node_copy', '--keep-prob', '0.3',
                        '--top-k', '4']) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0 <= report['test']['recall@10'] <= 1
    state = torch.load(tmp_path / 'run' / 'checkpoint.pt', weights_only=False)
    kwargs = state['meta']['model_kwargs']
    assert kwargs['generator'] == 'node_copy'
    # --keep-prob is BGCF's epsilon (the probability of keeping one's items)
    assert kwargs['generator_kwargs'] == {'epsilon': 0.3, 'top_k': 4}
    assert state['meta']['model_kwargs']['generator_kwargs'].get(
        'replace_prob') is None
    assert kwargs['resample_every'] == 3  # one epoch: ceil(240 / 100)
    assert kwargs['num_samples'] == 2 and kwargs['num_layers'] == 1
    assert main(['evaluate', '--checkpoint',
                 str(tmp_path / 'run' / 'checkpoint.pt'), '--json']) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again['test'] == pytest.approx(report['test'])

    assert main(args[:-1] + [str(tmp_path / 'peco'), '--alpha', '0.2',
                             '--beta', '0', '--item-top-k', '3']) == 0
    state = torch.load(tmp_path / 'peco' / 'checkpoint.pt',
                       weights_only=False)
    assert state['meta']['model_kwargs']['generator'] == 'peco'
    assert state['meta']['model_kwargs']['generator_kwargs'] == {
        'alpha': 0.2, 'beta': 0.0, 'item_top_k': 3}
    capsys.readouterr()
    assert main(args + ['--generator', 'node_copy', '--alpha', '0.2']) == 2
    assert 'PECO option' in capsys.readouterr().err
