import math

import pytest
import torch
import torch.nn.functional as F

from pyg_recsys.data.sequences import SequenceData
from pyg_recsys.metrics.sequential import (
    future_recall,
    rank_metrics,
    target_ranks,
)
from pyg_recsys.nn.models.sequential import (
    MostPopularNext,
    SequentialUserRNN,
    TasteVector,
)
from pyg_recsys.train.sequential import SequenceConfig, SequenceTrainer

SEQ = torch.tensor([[3, 1, 4, 1, 5], [2, 6, -1, -1, -1], [0, 4, 2, -1, -1]])
LEN = torch.tensor([5, 2, 3])


def naive_states(model, seq, lengths):
    r"""The projected RNN output after every step, one unpadded sequence at
    a time (no packing)."""
    out = []
    for s, n in zip(seq, lengths.tolist()):
        x = model.item_embedding(s[:n]).unsqueeze(0)
        h, _ = model.rnn(x)
        u = model.proj(h[0])
        if model.residual == 'last':  # plus each step's own item vector
            u = u + x[0]
        elif model.residual == 'mean':  # plus the mean of the items so far
            u = u + x[0].cumsum(0) / torch.arange(1, n + 1).view(-1, 1)
        out.append(F.normalize(u, dim=-1) if model.normalize else u)
    return out


@pytest.mark.parametrize('cell', ['gru', 'lstm'])
@pytest.mark.parametrize('normalize', [False, True])
@pytest.mark.parametrize('residual', [False, True, 'mean'])
def test_forward_matches_unpadded_loop(cell, normalize, residual):
    torch.manual_seed(0)
    model = SequentialUserRNN(7, 8, hidden_dim=6, cell=cell,
                              normalize=normalize, residual=residual)
    states = naive_states(model, SEQ, LEN)
    last = model(SEQ, LEN)
    every = model(SEQ, LEN, all_steps=True)
    for b, n in enumerate(LEN.tolist()):
        torch.testing.assert_close(last[b], states[b][-1])
        torch.testing.assert_close(every[b, :n], states[b])
    assert str(model).startswith('SequentialUserRNN(7, embedding_dim=8')


def test_losses_match_naive_loops():
    torch.manual_seed(0)
    model = SequentialUserRNN(7, 8, normalize=True, temperature=0.5)
    states = naive_states(model, SEQ, LEN)
    vec = F.normalize(model.item_embedding.weight[:-1], dim=-1)
    ce, cos1, cos2 = [], [], []
    for b, n in enumerate(LEN.tolist()):
        s = SEQ[b, :n].tolist()
        for t in range(n - 1):
            logits = states[b][t] @ vec.t() / 0.5
            ce.append(F.cross_entropy(logits.view(1, -1),
                                      torch.tensor([s[t + 1]])))
            cos1.append(1 - F.cosine_similarity(states[b][t], vec[s[t + 1]],
                                                dim=0))
            goal = vec[s[t + 1:t + 3]].mean(0)
            cos2.append(1 - F.cosine_similarity(states[b][t], goal, dim=0))
    loss, parts = model.loss(SEQ, LEN, 'ce')
    torch.testing.assert_close(loss, torch.stack(ce).mean())
    assert parts == {'ce': pytest.approx(float(loss))}
    torch.testing.assert_close(model.loss(SEQ, LEN, 'cosine')[0],
                               torch.stack(cos1).mean())
    torch.testing.assert_close(model.loss(SEQ, LEN, 'cosine', window=2)[0],
                               torch.stack(cos2).mean())


def test_recommend_excludes_history_and_ranks_by_score():
    torch.manual_seed(1)
    model = SequentialUserRNN(7, 8)
    top = model.recommend(SEQ, LEN, k=4)
    user = model(SEQ, LEN)
    scores = user @ model.item_embedding.weight[:-1].t()
    for b, n in enumerate(LEN.tolist()):
        seen = set(SEQ[b, :n].tolist())
        order = sorted((i for i in range(7) if i not in seen),
                       key=lambda i: (-float(scores[b, i]), i))
        expect = (order + [-1] * 4)[:4]
        assert top[b].tolist() == expect


def test_bad_input():
    model = SequentialUserRNN(7, 8)
    with pytest.raises(ValueError, match='lengths must lie in'):
        model(SEQ, torch.tensor([5, 0, 3]))
    with pytest.raises(ValueError, match=r'item ids must lie in \[0, 7\)'):
        model(torch.tensor([[3, 9]]), torch.tensor([2]))
    with pytest.raises(ValueError, match='item_vectors must have shape'):
        SequentialUserRNN(7, 8, item_vectors=torch.zeros(6, 8))
    with pytest.raises(ValueError, match='NaN'):
        SequentialUserRNN(2, 2, item_vectors=torch.tensor(
            [[0.0, float('nan')], [1.0, 1.0]]))
    with pytest.raises(ValueError, match='cell'):
        SequentialUserRNN(7, 8, cell='rnn')
    with pytest.raises(ValueError, match='nothing to predict'):
        model.loss(torch.tensor([[1], [2]]), torch.tensor([1, 1]))
    # Item vectors from another source, frozen, stay as given.
    given = torch.randn(7, 8)
    frozen = SequentialUserRNN(7, 8, item_vectors=given, freeze=True)
    torch.testing.assert_close(frozen.item_vectors(), given)
    assert not frozen.item_embedding.weight.requires_grad


def test_taste_vector_is_the_decayed_mean():
    vec = torch.randn(7, 4)
    model = TasteVector(vec, decay=0.5, normalize=False)
    out = model(SEQ, LEN)
    for b, n in enumerate(LEN.tolist()):
        w = torch.tensor([0.5 ** (n - 1 - t) for t in range(n)])
        expect = (w.view(-1, 1) * vec[SEQ[b, :n]]).sum(0) / w.sum()
        torch.testing.assert_close(out[b], expect)
    with pytest.raises(ValueError, match='decay'):
        TasteVector(vec, decay=0.0)


@pytest.mark.parametrize('mode', ['mask', 'zero', 'keep'])
def test_target_ranks_match_a_sort(mode):
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(-3, 4, (6, 9), generator=g).float()  # many ties
    target = torch.tensor([0, 4, 8, 2, 2, 5])
    hist = torch.tensor([[1, 2, -1], [4, 3, 0], [-1, -1, -1], [5, 6, 7],
                         [2, 8, -1], [0, 1, 2]])
    ranks = target_ranks(lambda s, e: scores[s:e], target, hist, mode,
                         batch_size=4)
    for b in range(6):
        s = scores[b].clone()
        for i in hist[b].tolist():
            if i >= 0 and i != int(target[b]):
                if mode == 'mask':
                    s[i] = float('-inf')
                elif mode == 'zero':
                    s[i] = 0.0
        order = sorted(range(9), key=lambda i: (-float(s[i]), i))
        assert int(ranks[b]) == order.index(int(target[b]))
    m = rank_metrics(ranks, ks=(1, 5))
    r = ranks.tolist()
    assert m['hit@5'] == pytest.approx(sum(x < 5 for x in r) / 6)
    assert m['ndcg@5'] == pytest.approx(
        sum(1 / math.log2(x + 2) for x in r if x < 5) / 6)


def test_trainer_learns_a_sequential_pattern():
    # Every user walks the items in order from a random start: the next item
    # is always the successor, which no order-free model can know.
    g = torch.Generator().manual_seed(0)
    lists = []
    for _ in range(120):
        start = int(torch.randint(0, 20, (1, ), generator=g))
        n = int(torch.randint(5, 9, (1, ), generator=g))
        lists.append([(start + t) % 20 for t in range(n)])
    data = SequenceData.from_lists(lists, num_items=20)
    split = data.leave_one_out()
    torch.manual_seed(0)
    model = SequentialUserRNN(20, 16)
    cfg = SequenceConfig(epochs=40, batch_size=32, lr=1e-2, max_len=10,
                         patience=5, eval_every=2, device='cpu')
    trainer = SequenceTrainer(model, split, cfg, progress=False)
    report = trainer.fit()
    assert report['test']['hit@5'] > 0.9
    taste = SequenceTrainer(TasteVector(model.item_vectors().detach()),
                            split, cfg, progress=False).fit()
    assert report['test']['ndcg@10'] > taste['test']['ndcg@10'] + 0.2
    with pytest.raises(ValueError, match="monitor 'ndcg@7'"):
        SequenceConfig(monitor='ndcg@7')


def test_sampled_softmax_matches_a_naive_loop():
    torch.manual_seed(0)
    model = SequentialUserRNN(7, 8)
    gen = torch.Generator().manual_seed(3)
    loss, _ = model.loss(SEQ, LEN, 'ce', num_negatives=4, generator=gen)
    neg = torch.randint(0, 7, (4, ), generator=torch.Generator().manual_seed(3))
    states = naive_states(model, SEQ, LEN)
    vec = model.item_embedding.weight[:-1]
    terms = []
    for b, n in enumerate(LEN.tolist()):
        s = SEQ[b, :n].tolist()
        for t in range(n - 1):
            target = s[t + 1]
            cand = [target] + [int(j) for j in neg if int(j) != target]
            logits = states[b][t] @ vec[cand].t()
            terms.append(-F.log_softmax(logits, 0)[0])
    torch.testing.assert_close(loss, torch.stack(terms).mean())


def test_context_and_skips_match_naive_loops():
    torch.manual_seed(2)
    model = SequentialUserRNN(7, 8, hidden_dim=5, context_dim=3)
    ctx = torch.randn(3, 5, 3)
    skip = torch.zeros(3, 5, dtype=torch.bool)
    skip[0, 2] = skip[0, 3] = skip[2, 1] = True
    ce, cos = [], []
    vec = model.item_embedding.weight[:-1]
    for b, n in enumerate(LEN.tolist()):
        s = SEQ[b, :n]
        x = torch.cat([model.item_embedding(s), ctx[b, :n]], -1)
        states = model.proj(model.rnn(x.unsqueeze(0))[0][0])
        torch.testing.assert_close(model(SEQ, LEN, context=ctx)[b],
                                   states[-1])
        for t in range(n - 1):
            if skip[b, t + 1]:
                continue  # a skipped item is read, never predicted
            ce.append(F.cross_entropy((states[t] @ vec.t()).view(1, -1),
                                      s[t + 1].view(1)))
            kept = [int(i) for i, sk in zip(s[t + 1:t + 3], skip[b, t + 1:
                                                                 t + 3])
                    if not sk]
            cos.append(1 - F.cosine_similarity(states[t], vec[kept].mean(0),
                                               dim=0))
    loss, _ = model.loss(SEQ, LEN, context=ctx, skip=skip)
    torch.testing.assert_close(loss, torch.stack(ce).mean())
    long, _ = model.loss(SEQ, LEN, 'cosine', window=2, context=ctx,
                         skip=skip)
    torch.testing.assert_close(long, torch.stack(cos).mean())
    every = torch.ones(3, 5, dtype=torch.bool)
    assert model.loss(SEQ, LEN, context=ctx, skip=every)[0].item() == 0.0
    with pytest.raises(ValueError, match=r'context must be \[3, 5, 3\]'):
        model(SEQ, LEN)
    with pytest.raises(ValueError, match='context_dim=0'):
        SequentialUserRNN(7, 8)(SEQ, LEN, context=ctx)
    with pytest.raises(ValueError, match='NaN'):
        model(SEQ, LEN, context=torch.full((3, 5, 3), float('nan')))


@pytest.mark.parametrize('mode', ['mask', 'zero', 'keep'])
def test_future_recall_matches_a_sort(mode):
    g = torch.Generator().manual_seed(1)
    scores = torch.randint(-3, 4, (5, 9), generator=g).float()
    future = torch.tensor([[0, 4, -1], [8, -1, 8], [-1, -1, -1], [5, 6, 1],
                           [2, 7, 3]])
    hist = torch.tensor([[1, 4, -1], [4, 3, 0], [2, -1, -1], [5, 0, 7],
                         [8, -1, -1]])
    got = future_recall(lambda s, e: scores[s:e], future, 3, hist, mode,
                        batch_size=2)
    for b in range(5):
        s = scores[b].clone()
        fut = {i for i in future[b].tolist() if i >= 0}
        for i in hist[b].tolist():
            if i >= 0 and i not in fut:
                if mode == 'mask':
                    s[i] = float('-inf')
                elif mode == 'zero':
                    s[i] = 0.0
        top = sorted(range(9), key=lambda i: (-float(s[i]), i))[:3]
        if not fut:
            assert math.isnan(got[b])
        else:
            assert float(got[b]) == pytest.approx(len(fut & set(top))
                                                  / len(fut))


def test_trainer_on_a_horizon_split_with_context_and_skips():
    # Users walk the items in order; every third event is a skip (rating 1)
    # and its context says so. Short- and long-term metrics must find the
    # walk, and a skipped item is never a target.
    g = torch.Generator().manual_seed(0)
    users, items, times, ratings = [], [], [], []
    for u in range(150):
        start = int(torch.randint(0, 60, (1, ), generator=g))
        for t in range(30):
            users.append(u)
            items.append((start + t) % 60)
            times.append(1000 * t)
            ratings.append(1.0 if t % 3 == 2 else 5.0)
    data = SequenceData.from_interactions(
        torch.tensor(users), torch.tensor(items), torch.tensor(times), 150,
        60, ratings=torch.tensor(ratings))
    split = data.horizon_split(5)
    cfg = SequenceConfig(epochs=30, batch_size=16, lr=1e-2, max_len=12,
                         patience=5, device='cpu', context=('skip', ),
                         skip_threshold=2.0, long_k=5)
    torch.manual_seed(0)
    model = SequentialUserRNN(60, 16, context_dim=1)
    trainer = SequenceTrainer(model, split, cfg, progress=False)
    report = trainer.fit()
    test = report['test']
    assert test['hit@5'] > 0.9
    # The long window holds the 3 non-skipped of the next 5 items of the
    # walk; a model trained on the next item ranks the later ones lower.
    assert test['long_recall@5'] > 0.3
    # The test future holds positions 25..29, of which 26 and 29 are skips.
    future = data.future(split.test_users, split.test_end, 5, data.skips())
    assert ((future >= 0).sum(1) == 3).all()
    counts = torch.bincount(split.train.items, minlength=60)
    pop = SequenceTrainer(MostPopularNext(counts), split,
                          SequenceConfig(device='cpu', long_k=5,
                                         skip_threshold=2.0),
                          progress=False).fit()
    assert test['long_recall@5'] > pop['test']['long_recall@5'] + 0.1
    with pytest.raises(ValueError, match='reads 1 context features'):
        SequenceTrainer(model, split, SequenceConfig(device='cpu'))


def test_sequence_trainer_resumes_exactly(tmp_path, monkeypatch):
    g = torch.Generator().manual_seed(0)
    lists = [[(int(torch.randint(0, 20, (1, ), generator=g)) + t) % 20
              for t in range(8)] for _ in range(40)]
    split = SequenceData.from_lists(lists, num_items=20).leave_one_out()
    cfg = SequenceConfig(epochs=6, batch_size=8, lr=1e-2, max_len=5,
                         patience=0, device='cpu')

    def build(out=None):
        torch.manual_seed(0)
        return SequenceTrainer(SequentialUserRNN(20, 8, dropout=0.2), split,
                               cfg, progress=False, out_dir=out)

    straight = build().fit()
    out = str(tmp_path / 'run')
    interrupted = build(out)
    calls = {'n': 0}
    original = SequenceTrainer.train_epoch

    def stop_at_four(self):
        calls['n'] += 1
        if calls['n'] == 4:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(SequenceTrainer, 'train_epoch', stop_at_four)
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit()
    monkeypatch.setattr(SequenceTrainer, 'train_epoch', original)
    again = build(out)
    resumed = again.fit(resume=True)
    assert again.epoch == 6 and len(again.history) == 6
    assert resumed['test'] == straight['test']
    assert resumed['valid'] == straight['valid']
    for name in ('log.jsonl', 'final.json', 'checkpoint.pt'):
        assert (tmp_path / 'run' / name).exists()
    other = SequenceConfig(epochs=6, batch_size=8, lr=5e-3, max_len=5,
                           patience=0, device='cpu')
    torch.manual_seed(0)
    with pytest.raises(ValueError, match=r"differ in \['lr'\]"):
        SequenceTrainer(SequentialUserRNN(20, 8), split, other,
                        progress=False, out_dir=out).fit(resume=True)
    lists[0] = lists[0][::-1]
    moved = SequenceData.from_lists(lists, num_items=20).leave_one_out()
    with pytest.raises(ValueError, match='other sequences'):
        SequenceTrainer(SequentialUserRNN(20, 8), moved, cfg,
                        progress=False, out_dir=out).fit(resume=True)


@pytest.mark.parametrize('model', ['gru-user', 'lstm-user'])
@pytest.mark.parametrize('dataset', ['beauty', 'ml-100k'])
def test_sequential_recipes_build(model, dataset):
    from pyg_recsys.nn.models.item_sources import SOURCES
    from pyg_recsys.train import get_recipe
    recipe = get_recipe(model, dataset)
    kwargs = dict(recipe.model_kwargs)
    assert kwargs.pop('item_vectors', 'learned') in SOURCES
    SequentialUserRNN(10, **kwargs)
    SequenceConfig(**recipe.train)
    assert recipe.note
