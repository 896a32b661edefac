import json
import math
import os

import pytest
import torch
from graphs import clustered_graph

from pyg_recsys.nn import MF, LightGCN, MostPopular
from pyg_recsys.train import TrainConfig, Trainer, load_checkpoint, save_checkpoint


def small_config(**kw):
    base = dict(epochs=30, batch_size=64, lr=0.05, eval_every=5, patience=3,
                monitor='recall@10', ks=(5, 10), seed=0)
    base.update(kw)
    return TrainConfig(**base)


def test_training_learns_and_selects_on_valid(tmp_path):
    graph = clustered_graph()
    model = LightGCN(num_users=40, num_items=30, embedding_dim=16, num_layers=2)
    trainer = Trainer(model, graph, small_config(), out_dir=str(tmp_path),
                      progress=False, meta={'model': 'lightgcn'})
    report = trainer.fit()
    assert report['selection'].startswith('best recall@10 on the validation')
    pop = Trainer(MostPopular(graph.item_degree(), 40), graph,
                  small_config(), progress=False).fit()
    assert report['test']['recall@10'] > pop['test']['recall@10'] + 0.1
    # Logs, checkpoint, curve.
    lines = [json.loads(x) for x in open(tmp_path / 'log.jsonl')]
    assert {r['kind'] for r in lines} == {'train', 'eval'}
    assert os.path.exists(tmp_path / 'curve.png')
    state = load_checkpoint(str(tmp_path / 'checkpoint.pt'))
    assert state['epoch'] == report['epochs_run']
    # The restored model is the selected one: its valid score is the best.
    best = max(r['valid']['recall@10'] for r in lines if r['kind'] == 'eval')
    assert report['valid']['recall@10'] == pytest.approx(best)


def test_deterministic_and_resume_equals_uninterrupted(tmp_path):
    graph = clustered_graph()
    cfg = small_config(epochs=10, patience=0)

    def run(out_dir, epochs=None):
        torch.manual_seed(0)
        model = MF(40, 30, embedding_dim=8)
        c = cfg if epochs is None else TrainConfig.from_dict(
            {**cfg.to_dict(), 'epochs': epochs})
        t = Trainer(model, graph, c, out_dir=out_dir, progress=False)
        return t, model

    full, model_full = run(str(tmp_path / 'a'))
    full.fit()
    # Same seed, same result.
    again, model_again = run(str(tmp_path / 'b'))
    again.fit()
    torch.testing.assert_close(model_full.embedding.weight,
                               model_again.embedding.weight)
    # Interrupted after 5 epochs, resumed to 10: the same weights.
    part, _ = run(str(tmp_path / 'c'))
    part.config = TrainConfig.from_dict({**cfg.to_dict()})
    part.config.epochs = 5
    part.fit()
    resumed, model_resumed = run(str(tmp_path / 'c'))
    resumed.config.epochs = 5  # the checkpoint's settings must match
    assert resumed.resume()
    resumed.config.epochs = 10
    resumed.fit()
    torch.testing.assert_close(model_resumed.embedding.weight,
                               model_full.embedding.weight)


def test_resume_refuses_other_settings(tmp_path):
    graph = clustered_graph()
    t = Trainer(MF(40, 30, 8), graph, small_config(epochs=5),
                out_dir=str(tmp_path), progress=False)
    t.fit()
    other = Trainer(MF(40, 30, 8), graph, small_config(epochs=5, lr=0.1),
                    out_dir=str(tmp_path), progress=False)
    with pytest.raises(ValueError, match='lr'):
        other.resume()
    # Another graph of the same sizes is refused too, before any state loads.
    from pyg_recsys.data import InteractionGraph
    train = graph.train[:, 1:]
    moved = InteractionGraph(40, 30, train, graph.valid, graph.test)
    again = Trainer(MF(40, 30, 8), moved, small_config(epochs=5),
                    out_dir=str(tmp_path), progress=False)
    before = {k: v.clone() for k, v in again.model.state_dict().items()}
    with pytest.raises(ValueError, match='another graph'):
        again.resume()
    for k, v in again.model.state_dict().items():
        assert torch.equal(v, before[k])
    # The device and thread count may change between runs.
    same = Trainer(MF(40, 30, 8), graph,
                   small_config(epochs=5, device='cpu',
                                threads=torch.get_num_threads()),
                   out_dir=str(tmp_path), progress=False)
    assert same.resume() and same.epoch == 5


def test_select_last_and_test_are_labelled():
    graph = clustered_graph()
    r = Trainer(MF(40, 30, 8), graph, small_config(epochs=5, select='last'),
                progress=False).fit()
    assert r['selection'] == 'final epoch' and r['epoch'] == 5
    r = Trainer(MF(40, 30, 8), graph, small_config(epochs=5, select='test'),
                progress=False).fit()
    assert 'TEST' in r['selection']


def test_atomic_checkpoint_keeps_old_file_on_failure(tmp_path):
    path = str(tmp_path / 'ckpt.pt')
    save_checkpoint({'a': torch.ones(2)}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError('boom')

    with pytest.raises(RuntimeError, match='boom'):
        save_checkpoint({'a': Unpicklable()}, path)
    assert torch.equal(load_checkpoint(path)['a'], torch.ones(2))
    assert os.listdir(tmp_path) == ['ckpt.pt']  # no temporary left behind
    (tmp_path / 'bad.pt').write_bytes(b'not a checkpoint')
    with pytest.raises(ValueError, match='not a readable'):
        load_checkpoint(str(tmp_path / 'bad.pt'))
    with pytest.raises(FileNotFoundError):
        load_checkpoint(str(tmp_path / 'missing.pt'))


def test_config_validation():
    with pytest.raises(ValueError, match='monitor'):
        TrainConfig(monitor='ndcg@50', ks=(10, 20))
    with pytest.raises(ValueError, match='select'):
        TrainConfig(select='best')
    with pytest.raises(ValueError, match='epochs'):
        TrainConfig(epochs=0)


def test_divergence_is_reported():
    graph = clustered_graph()
    model = MF(40, 30, 8)
    with torch.no_grad():
        model.embedding.weight[0, 0] = float('nan')
    with pytest.raises(FloatingPointError, match='diverged'):
        Trainer(model, graph, small_config(epochs=1), progress=False).fit()


def test_cosine_schedule_logs_lr_and_resumes_exactly(tmp_path):
    graph = clustered_graph()
    cfg = small_config(epochs=10, patience=0, lr_schedule='cosine',
                       select='last')
    saved = tmp_path / 'resume' / 'checkpoint.pt'

    def keep_epoch5_checkpoint(record):
        # Called before the epoch-10 save: the file still holds epoch 5.
        if record['epoch'] == 10:
            saved.parent.mkdir()
            saved.write_bytes((tmp_path / 'full' / 'checkpoint.pt')
                              .read_bytes())

    torch.manual_seed(0)
    model = MF(40, 30, embedding_dim=8)
    full = Trainer(model, graph, cfg, out_dir=str(tmp_path / 'full'),
                   progress=False)
    full.fit(on_eval=keep_epoch5_checkpoint)
    lrs = [r['lr'] for r in full.history if r['kind'] == 'train']
    expected = [0.025 * (1 + math.cos(math.pi * e / 10)) for e in range(10)]
    assert lrs == pytest.approx(expected)
    assert set(full.profile) == {'sample', 'forward', 'backward',
                                 'optimizer', 'evaluate'}
    assert all(v > 0 for v in full.profile.values())

    torch.manual_seed(1)  # different init: the checkpoint must override it
    other = MF(40, 30, embedding_dim=8)
    resumed = Trainer(other, graph, cfg, out_dir=str(saved.parent),
                      progress=False)
    assert resumed.resume() and resumed.epoch == 5
    resumed.fit()
    torch.testing.assert_close(other.embedding.weight,
                               model.embedding.weight)
    with pytest.raises(ValueError, match='lr_schedule must be one of'):
        TrainConfig(lr_schedule='linear')


def test_step_schedule_drops_the_lr_after_each_milestone():
    graph = clustered_graph()
    cfg = small_config(epochs=6, patience=0, lr=0.04, lr_schedule='step',
                       lr_milestones=(2, 5), lr_decay=0.5, select='last')
    torch.manual_seed(0)
    trainer = Trainer(MF(40, 30, embedding_dim=8), graph, cfg,
                      progress=False)
    trainer.fit()
    lrs = [r['lr'] for r in trainer.history if r['kind'] == 'train']
    # Epochs 1-2 at lr, 3-5 at lr / 2, 6 at lr / 4.
    assert lrs == pytest.approx([0.04, 0.04, 0.02, 0.02, 0.02, 0.01])
    for bad, match in ((dict(lr_schedule='step'), 'lr_milestones'),
                       (dict(lr_milestones=(3,)), 'lr_milestones'),
                       (dict(lr_schedule='step', lr_milestones=(4, 4)),
                        'increasing'),
                       (dict(lr_schedule='step', lr_milestones=(0,)),
                        'increasing'),
                       (dict(lr_schedule='step', lr_milestones=(2,),
                             lr_decay=1.5), 'lr_decay'),
                       (dict(embedding_decay=-1.0), 'embedding_decay')):
        with pytest.raises(ValueError, match=match):
            TrainConfig(**bad)


def test_embedding_decay_is_l2_on_the_whole_tables_only():
    # One Adam step with embedding_decay equals plain Adam on the loss plus
    # lambda / 2 * ||W||^2 of every embedding table (not W_v, not the
    # global bias).
    from pyg_recsys.nn.models import SimpleX
    from pyg_recsys.train.config import embedding_param_groups, make_adam
    graph = clustered_graph()
    lam = 0.3
    torch.manual_seed(0)
    a = SimpleX(graph.num_users, graph.num_items, 8, bias=True, dropout=0.0,
                init_std=0.1)
    b = SimpleX(graph.num_users, graph.num_items, 8, bias=True, dropout=0.0,
                init_std=0.1)
    b.load_state_dict(a.state_dict())
    opt_a = make_adam(embedding_param_groups(a, lam), 1e-2)
    opt_b = torch.optim.Adam(b.parameters(), lr=1e-2)
    edge_index = graph.edge_index
    users = torch.tensor([0, 3, 5, 7])
    items = torch.tensor([1, 2, 9, 4])
    for _ in range(3):
        for model, opt, reg in ((a, opt_a, 0.0), (b, opt_b, lam)):
            opt.zero_grad()
            score = (model.user_vectors(edge_index, users) *
                     model.item_vectors(items)).sum(-1)
            loss = (score - 1).pow(2).sum() + model.global_bias.sum() + \
                model.conv.lin_v.weight.sum()
            tables = (model.embedding, model.user_bias, model.item_bias)
            loss = loss + reg / 2 * sum(t.weight.pow(2).sum() for t in tables)
            loss.backward()
            opt.step()
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)
    assert embedding_param_groups(a, 0.0) == list(a.parameters())
    with pytest.raises(ValueError, match='no embedding tables'):
        embedding_param_groups(torch.nn.Linear(3, 3), 1e-3)


@pytest.mark.parametrize('dataset', ['gowalla', 'yelp2018'])
def test_paper_recipes_build_and_train_one_epoch(dataset):
    from pyg_recsys.train import build_model, get_recipe
    recipe = get_recipe('lightgcn', dataset, 'paper')
    cfg = TrainConfig(**{**recipe.train, 'epochs': 1, 'batch_size': 64})
    assert cfg.lr_schedule == 'cosine' and cfg.select == 'last'
    graph = clustered_graph()
    model = build_model('lightgcn', graph, **recipe.model_kwargs)
    assert model.storage_dtype is torch.bfloat16
    report = Trainer(model, graph, cfg, progress=False).fit()
    assert report['selection'] == 'final epoch' and report['epochs_run'] == 1


def test_dynamic_negative_sampling_trains_and_is_validated():
    with pytest.raises(ValueError, match='negative_sampling'):
        TrainConfig(negative_sampling='hard')
    with pytest.raises(ValueError, match='at least 2'):
        TrainConfig(negative_sampling='dns', num_negatives=1)
    graph = clustered_graph()
    model = LightGCN(num_users=40, num_items=30, embedding_dim=16, num_layers=2)
    report = Trainer(model, graph,
                     small_config(negative_sampling='dns', num_negatives=4),
                     progress=False).fit()
    pop = Trainer(MostPopular(graph.item_degree(), 40), graph,
                  small_config(), progress=False).fit()
    assert report['test']['recall@10'] > pop['test']['recall@10'] + 0.1


def test_training_on_each_device(device):
    graph = clustered_graph()
    torch.manual_seed(0)
    model = LightGCN(num_users=40, num_items=30, embedding_dim=16,
                     num_layers=2)
    trainer = Trainer(model, graph, small_config(epochs=10, device=device),
                      progress=False)
    assert trainer.device.type == device
    assert model.embedding.weight.device.type == device
    report = trainer.fit()
    pop = Trainer(MostPopular(graph.item_degree(), 40), graph,
                  small_config(device=device), progress=False).fit()
    assert report['test']['recall@10'] > pop['test']['recall@10']
    # The evaluator's numbers are those of a naive loop on the CPU.
    out = model.get_embedding(trainer.adj).detach().cpu()
    scores = out[:40] @ out[40:].t()
    seen = torch.zeros(40, 30, dtype=torch.bool)
    for split in ('train', 'valid'):
        seen[graph.split(split)[0], graph.split(split)[1]] = True
    scores[seen] = float('-inf')
    hits, count = [], 0
    test = graph.split('test')
    for u in range(40):
        relevant = set(test[1][test[0] == u].tolist())
        if not relevant:
            continue
        top = sorted(range(30), key=lambda i: (-float(scores[u, i]), i))[:10]
        hits.append(len(relevant & set(top)) / len(relevant))
        count += 1
    assert report['test']['recall@10'] == pytest.approx(sum(hits) / count)
    # Recommendations: item ids, no known interaction.
    top = trainer.recommend(torch.arange(40), 5)
    for u in range(40):
        known = {int(i) for s in ('train', 'valid', 'test')
                 for i in graph.split(s)[1][graph.split(s)[0] == u]}
        assert not known & set(top[u].tolist())


def test_device_errors():
    with pytest.raises(ValueError, match="device must be"):
        small_config(device='tpu')
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match='no CUDA device'):
            Trainer(MF(40, 30, 4), clustered_graph(),
                    small_config(device='cuda'), progress=False)


def test_from_checkpoint_rebuilds_the_selected_model(tmp_path):
    graph = clustered_graph()
    kwargs = {'embedding_dim': 16, 'num_layers': 2}
    model = LightGCN(num_users=40, num_items=30, **kwargs)
    trainer = Trainer(model, graph, small_config(epochs=10),
                      out_dir=str(tmp_path), progress=False,
                      meta={'model': 'lightgcn', 'model_kwargs': kwargs})
    trainer.fit()
    loaded = Trainer.from_checkpoint(str(tmp_path / 'checkpoint.pt'))
    assert loaded.evaluate('test') == trainer.evaluate('test')
    for a, b in zip(loaded.model.state_dict().values(),
                    trainer.model.state_dict().values()):
        assert torch.equal(a, b)
    # A model not registered by name cannot be rebuilt; a file that is no
    # checkpoint is refused.
    class Unregistered(MF):
        pass

    plain = Trainer(Unregistered(40, 30, 8), graph, small_config(epochs=1),
                    out_dir=str(tmp_path / 'plain'), progress=False)
    plain.fit()
    with pytest.raises(ValueError, match='does not say which model'):
        Trainer.from_checkpoint(str(tmp_path / 'plain' / 'checkpoint.pt'))
    (tmp_path / 'junk.pt').write_bytes(b'not a checkpoint')
    with pytest.raises(ValueError, match='not a readable'):
        Trainer.from_checkpoint(str(tmp_path / 'junk.pt'))


def test_steps_per_epoch_draws_a_fixed_number_of_batches():
    # DCCF's official epoch: a fixed count of user-uniform batches, not one
    # pass over the interactions. Counted at the optimiser and the sampler.
    graph = clustered_graph()
    model = MF(num_users=40, num_items=30, embedding_dim=8)
    trainer = Trainer(model, graph, small_config(epochs=2, steps_per_epoch=3,
                                                 batch_size=16),
                      progress=False)
    drawn = []
    sample = trainer.sampler.sample
    trainer.sampler.sample = lambda n=None: drawn.append(n) or sample(n)
    steps = []
    step = trainer.optimizer.step
    trainer.optimizer.step = lambda *a, **k: steps.append(1) or step(*a, **k)
    trainer.fit()
    assert drawn == [48, 48] and len(steps) == 6
    # Without it: one pass over the training interactions.
    trainer = Trainer(MF(num_users=40, num_items=30, embedding_dim=8), graph,
                      small_config(epochs=1, batch_size=16), progress=False)
    steps.clear()
    step = trainer.optimizer.step
    trainer.optimizer.step = lambda *a, **k: steps.append(1) or step(*a, **k)
    trainer.fit()
    assert len(steps) == -(-graph.train.size(1) // 16)
    with pytest.raises(ValueError, match='steps_per_epoch must be positive'):
        TrainConfig(steps_per_epoch=0)


def test_loss_options_are_checked_and_reach_the_model():
    from pyg_recsys.nn.models import MF
    with pytest.raises(ValueError, match='loss must be one of'):
        TrainConfig(loss='hinge')
    with pytest.raises(ValueError, match='margin'):
        TrainConfig(loss='ccl', margin=1.5)
    with pytest.raises(ValueError, match='temperature'):
        TrainConfig(loss='softmax', temperature=0.0)
    with pytest.raises(ValueError, match='negative_weight'):
        TrainConfig(negative_weight=-1.0)
    with pytest.raises(ValueError, match='shared_negatives'):
        TrainConfig(shared_negatives=True, negative_sampling='dns',
                    num_negatives=4)
    assert TrainConfig().loss_options == {}
    assert TrainConfig(loss='ccl', margin=0.4, negative_weight=2.0
                       ).loss_options == {
        'loss': 'ccl', 'loss_kwargs': {'margin': 0.4,
                                       'negative_weight': 2.0}}
    graph = clustered_graph()
    seen = []

    class Spy(MF):
        def training_loss(self, *args, **kwargs):
            seen.append((kwargs.get('loss'), kwargs.get('loss_kwargs'),
                         tuple(args[3].shape)))
            return super().training_loss(*args, **kwargs)

    cfg = TrainConfig(epochs=1, batch_size=64, loss='softmax',
                      temperature=0.2, num_negatives=5,
                      shared_negatives=True, eval_every=1, select='last')
    Trainer(Spy(graph.num_users, graph.num_items, 8), graph, cfg,
            progress=False).fit()
    assert seen and all(s == ('softmax', {'temperature': 0.2}, (1, 5))
                        for s in seen)
    # a model with its own objective refuses a ranking loss by name
    from pyg_recsys.data.graph_generators import NodeCopying
    from pyg_recsys.nn.models.bgcf import BGCF
    bgcf = BGCF(graph.num_users, graph.num_items, NodeCopying(graph))
    with pytest.raises(ValueError, match='own objective'):
        Trainer(bgcf, graph, TrainConfig(loss='ccl'), progress=False)


def test_exclude_positives_masks_each_users_shared_negatives():
    with pytest.raises(ValueError, match='exclude_positives'):
        TrainConfig(exclude_positives=True)
    graph = clustered_graph()
    train = set(zip(graph.train[0].tolist(), graph.train[1].tolist()))
    seen = []

    class Spy(MF):
        def training_loss(self, edge_index, users, pos, neg, *args,
                          **kwargs):
            mask = kwargs['loss_kwargs']['neg_mask']
            U = self.num_users
            want = [[(u, j - U) not in train for j in neg[0].tolist()]
                    for u in users.tolist()]
            seen.append(mask.tolist() == want and not mask.all())
            return super().training_loss(edge_index, users, pos, neg,
                                         *args, **kwargs)

    for loss in ('bpr', 'ccl'):
        seen.clear()
        cfg = TrainConfig(epochs=1, batch_size=64, loss=loss,
                          num_negatives=40, shared_negatives=True,
                          exclude_positives=True, eval_every=1,
                          select='last')
        Trainer(Spy(graph.num_users, graph.num_items, 8), graph, cfg,
                progress=False).fit()
        assert seen and all(seen)
    # UltraGCN's own constraint loss takes no mask: refused, not ignored
    from pyg_recsys.train import build_model
    model = build_model('ultragcn', graph)
    cfg = TrainConfig(epochs=1, batch_size=64, num_negatives=8,
                      shared_negatives=True, exclude_positives=True)
    with pytest.raises(ValueError, match='constraint loss'):
        Trainer(model, graph, cfg, progress=False).fit()


@pytest.mark.parametrize('model_name', ['simplex', 'ultragcn'])
def test_every_recipe_of_the_new_models_builds_and_trains(model_name):
    from pyg_recsys.train import build_model
    from pyg_recsys.train.config import RECIPES
    recipes = [(ds, name, r) for (m, ds), named in RECIPES.items()
               if m == model_name for name, r in named.items()]
    assert {ds for ds, _, _ in recipes} >= {'*', 'gowalla'}
    graph = clustered_graph()
    for _, _, recipe in recipes:
        cfg = TrainConfig(**{**recipe.train, 'epochs': 1, 'batch_size': 64,
                             'num_negatives': 8, 'eval_every': 1})
        assert cfg.shared_negatives  # the labelled deviation
        torch.manual_seed(0)
        model = build_model(model_name, graph, **recipe.model_kwargs)
        report = Trainer(model, graph, cfg, progress=False).fit()
        assert report['epochs_run'] == 1


def test_the_trainers_adam_is_fused_and_updates_as_plain_adam():
    from pyg_recsys.nn.models import MF
    from pyg_recsys.train.config import make_adam
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(50, 8))
    b = torch.nn.Parameter(a.detach().clone())
    fused, plain = make_adam([a], 1e-2), torch.optim.Adam([b], lr=1e-2)
    assert fused.param_groups[0]['fused']
    for step in range(5):
        grad = torch.randn(50, 8)
        a.grad, b.grad = grad.clone(), grad.clone()
        fused.step()
        plain.step()
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    graph = clustered_graph()
    trainer = Trainer(MF(graph.num_users, graph.num_items, 8), graph,
                      TrainConfig(epochs=1), progress=False)
    assert trainer.optimizer.param_groups[0]['fused']
