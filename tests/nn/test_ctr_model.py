import pytest
import torch

from pyg_recsys.data.impressions import Impressions, click_features
from pyg_recsys.metrics.ctr import auc
from pyg_recsys.nn.models.ctr import ClickSequenceDNN
from pyg_recsys.train.ctr import (
    ClickConfig,
    cf_vectors,
    fit_click_model,
    predict,
    user_ctr_baseline,
)


def timeline(n=3000, users=30, items=20, seed=0):
    # Clicks repeat the user's previous outcome with probability 0.85, so
    # only a model that reads the sequence can predict them.
    g = torch.Generator().manual_seed(seed)
    user = torch.randint(0, users, (n, ), generator=g)
    item = torch.randint(0, items, (n, ), generator=g)
    time = torch.arange(n) * 600
    label = torch.zeros(n)
    last = torch.randint(0, 2, (users, ), generator=g).float()
    for k in range(n):
        u = int(user[k])
        same = bool(torch.rand(1, generator=g) < 0.85)
        label[k] = last[u] if same else 1 - last[u]
        last[u] = label[k]
    return Impressions(user, item, label, time, users, items)


def test_inputs_and_width():
    imp = timeline(200)
    feats = click_features(imp, 5)
    cu, ci = torch.randn(30, 4), torch.randn(20, 4)
    full = ClickSequenceDNN(20, 5, 3, (8, ), 0.0, cu, ci)
    x = full.inputs(imp.user, imp.item, feats)
    assert x.shape == (200, 4 + 4 + 3 + 15 + 8 + 3)
    # The CF block: the users' and items' vectors and their dot product.
    torch.testing.assert_close(x[:, 26:30], cu[imp.user])
    torch.testing.assert_close(x[:, 34], (cu[imp.user] * ci[imp.item]).sum(1))
    bare = ClickSequenceDNN(20, 5, 3, (8, ), 0.0, use_sequence=False,
                            use_cf=False)
    assert bare.inputs(imp.user, imp.item, feats).shape == (200, 11)
    assert full(imp.user, imp.item, feats).shape == (200, )
    with pytest.raises(ValueError, match='use_cf=True needs cf_user'):
        ClickSequenceDNN(20)
    with pytest.raises(ValueError, match='cf_item must be'):
        ClickSequenceDNN(20, cf_user=cu, cf_item=torch.randn(7, 4))


def test_unknown_cf_rows_are_zeroed():
    cu, ci = torch.randn(3, 2), torch.randn(2, 2)
    known = torch.tensor([True, False, True])
    m = ClickSequenceDNN(2, 2, 2, (), 0.0, cu, ci, cf_user_known=known)
    assert torch.equal(m.cf_user[1], torch.zeros(2))
    assert m.cf_user_known.tolist() == [1.0, 0.0, 1.0]


def test_the_sequence_is_learned():
    imp = timeline()
    feats = click_features(imp, 5)
    n = len(imp)
    tr, va = torch.arange(0, 2 * n // 3), torch.arange(2 * n // 3, n)
    part = {k: v[tr] for k, v in feats.items()}
    vpart = {k: v[va] for k, v in feats.items()}
    cfg = ClickConfig(epochs=15, batch_size=128, lr=3e-3, patience=0,
                      history=5)
    scores = {}
    for seq in (True, False):
        torch.manual_seed(0)
        m = ClickSequenceDNN(20, 5, 4, (16, ), 0.0, use_sequence=seq,
                             use_cf=False)
        fit_click_model(m, imp.take(tr), part, imp.take(va), vpart, cfg)
        scores[seq] = auc(predict(m, imp.take(va), vpart), imp.label[va])
    # Bayes-optimal AUC here is 0.85; without the sequence ~ the user-rate
    # signal only (the user's long-run rate is 1/2).
    assert scores[True] > 0.8 and scores[False] < 0.65


def test_user_ctr_baseline_is_the_smoothed_earlier_rate():
    imp = timeline(300)
    feats = click_features(imp, 3)
    got = user_ctr_baseline(imp, feats, prior=0.4, strength=5.0)
    for k in range(0, 300, 17):
        u = int(imp.user[k])
        earlier = [j for j in range(k) if int(imp.user[j]) == u]
        c = sum(float(imp.label[j]) for j in earlier)
        ref = (c + 5.0 * 0.4) / (len(earlier) + 5.0)
        assert float(got[k]) == pytest.approx(ref, abs=1e-5)


def test_cf_vectors_use_history_clicks_only():
    imp = timeline(400)
    cfg = ClickConfig(cf_dim=4, cf_epochs=2, cf_layers=1)
    users, items, user_known, item_known = cf_vectors(imp, cfg)
    assert users.shape == (30, 4) and items.shape == (20, 4)
    clicked = imp.label > 0
    assert torch.equal(user_known.nonzero().view(-1),
                       imp.user[clicked].unique())
    assert torch.equal(item_known.nonzero().view(-1),
                       imp.item[clicked].unique())
    none = Impressions(imp.user, imp.item, torch.zeros(400), imp.time, 30, 20)
    with pytest.raises(ValueError, match='no clicks'):
        cf_vectors(none, cfg)


def test_click_config_checks():
    with pytest.raises(ValueError, match='unknown variants'):
        ClickConfig(variants=('full', 'magic'))
    with pytest.raises(ValueError, match='epochs must be positive'):
        ClickConfig(epochs=0)


def test_ripplenet_protocol_scores_every_row_out_of_fold(monkeypatch):
    from pyg_recsys.train import ctr
    g = torch.Generator().manual_seed(0)
    pairs = torch.randperm(60 * 40, generator=g)[:1500]  # distinct pairs
    user, item = pairs // 40, pairs % 40
    label = (torch.rand(1500, generator=g) < 0.5).float()
    imp = Impressions(user, item, label, None, 60, 40)
    trained, scored, keep = {}, [], []
    real_cf, real_scores = ctr.cf_vectors, ctr._scores

    def cf(history, cfg):
        out = real_cf(history, cfg)
        keep.append(out)  # alive, so that ids are not reused
        trained[id(out)] = set(zip(history.user.tolist(),
                                   history.item.tolist()))
        return out

    def scores(cf_out, rows):
        scored.append((id(cf_out), set(zip(rows.user.tolist(),
                                           rows.item.tolist()))))
        return real_scores(cf_out, rows)

    monkeypatch.setattr(ctr, 'cf_vectors', cf)
    monkeypatch.setattr(ctr, '_scores', scores)
    cfg = ClickConfig(epochs=1, cf_epochs=1, cf_dim=4, cf_layers=1,
                      hidden=(8, ))
    out = ctr.run_ripplenet_protocol(imp, cfg, folds=3, batch_size=64)
    assert len(trained) == 3 and len(scored) == 9
    for model, rows in scored:
        assert not (trained[model] & rows)  # never scored by a model of it
    assert set(out['results']) == {'full', 'no-cf', 'logistic'}
    for r in out['results'].values():
        assert 0 <= r['auc'] <= 1 and 0 <= r['batch_mean_auc'] <= 1
    # RippleNet's filter: every kept user has a positive training row.
    assert sum(out['rows'].values()) <= 1500
