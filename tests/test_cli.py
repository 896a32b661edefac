import csv
import json
import random

import numpy as np
import pytest
import torch

from pyg_recsys.cli import main


def write_csv(path, num_users=50, num_items=30, per_user=10, seed=0):
    r"""Interactions with string ids (and an int-looking one), ratings and
    times; returns the (user, item) pairs written."""
    rng = random.Random(seed)
    users = [f'u-{k:03d}' for k in range(num_users - 1)] + ['007']
    items = [f'item {chr(97 + k % 26)}{k}' for k in range(num_items)]
    rows = []
    for u in users:
        for it in rng.sample(items, per_user):
            rows.append((u, it, rng.randint(1, 5), rng.randint(0, 10**6)))
    with open(path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['visitor', 'product', 'stars', 'when'])
        w.writerows(rows)
    return rows


@pytest.mark.dataset
def test_train_evaluate_recommend(shared_data, tmp_path, capsys):
    out = tmp_path / 'run'
    args = ['train', 'lightgcn', '--dataset', 'ml-100k', '--root',
            str(shared_data), '--epochs', '4', '--eval-every', '2', '--dim',
            '16', '--layers', '2', '--out', str(out), '--no-progress',
            '--json']
    assert main(args) == 0
    text = capsys.readouterr().out
    report = json.loads(text.strip().splitlines()[-1])
    assert 0 < report['test']['recall@20'] < 1
    assert report['selection'].startswith('best ndcg@10 on the validation')
    assert 'recall@10' in text and 'ndcg@20' in text
    assert (out / 'checkpoint.pt').exists() and (out / 'curve.png').exists()

    assert main(['evaluate', '--checkpoint', str(out / 'checkpoint.pt'),
                 '--json']) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again['test'] == pytest.approx(report['test'])

    assert main(['recommend', '--checkpoint', str(out / 'checkpoint.pt'),
                 '--users', '1,6', '-k', '5']) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [len(x.split('\t')[1].split()) for x in lines] == [5, 5]

    # Resume refuses other settings instead of starting over.
    assert main(args[:args.index('--epochs') + 1] + ['6'] +
                args[args.index('--epochs') + 2:] + ['--resume']) == 2
    assert 'differ' in capsys.readouterr().err


def test_own_csv_end_to_end(tmp_path, capsys):
    path = tmp_path / 'clicks.csv'
    rows = write_csv(path)
    run = tmp_path / 'run'
    assert main(['train', 'lightgcn', '--data', str(path), '--user-col',
                 'visitor', '--item-col', 'product', '--rating-col', 'stars',
                 '--min-rating', '2', '--time-col', 'when', '--split',
                 'temporal', '--epochs', '3', '--eval-every', '1', '--dim',
                 '8', '--out', str(run), '--no-progress', '--json',
                 '--device', 'cpu']) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0 <= report['test']['recall@20'] <= 1
    ckpt = str(run / 'checkpoint.pt')

    # The checkpoint alone evaluates to the same numbers (no data options).
    assert main(['evaluate', '--checkpoint', ckpt, '--json']) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again['test'] == pytest.approx(report['test'])

    # Raw ids in, raw ids out, never an item the user has rated >= 2.
    assert main(['recommend', '--checkpoint', ckpt, '--users', 'u-004,007',
                 '-k', '4', '--json']) == 0
    recs = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    items = {r[1] for r in rows}
    for user in ('u-004', '007'):
        assert len(recs[user]) == 4 and set(recs[user]) <= items
        seen = {r[1] for r in rows if r[0] == user and r[2] >= 2}
        assert not seen & set(recs[user])
    assert main(['recommend', '--checkpoint', ckpt, '--users', 'nobody']) \
        == 2
    assert "unknown user id 'nobody'" in capsys.readouterr().err

    # Export: every user and item once, with its raw id, and the vectors
    # score as the model does.
    assert main(['export', '--checkpoint', ckpt, '--out',
                 str(tmp_path / 'emb')]) == 0
    capsys.readouterr()
    emb = np.load(tmp_path / 'emb' / 'embeddings.npz')
    kept = [r for r in rows if r[2] >= 2]
    assert sorted(emb['user_ids'].tolist()) == sorted({r[0] for r in kept})
    assert sorted(emb['item_ids'].tolist()) == sorted({r[1] for r in kept})
    assert emb['user_emb'].shape == (len(emb['user_ids']), 8)
    u = emb['user_ids'].tolist().index('u-004')
    scores = emb['user_emb'][u] @ emb['item_emb'].T
    ranked = [emb['item_ids'][i] for i in np.argsort(-scores, kind='stable')]
    seen = {r[1] for r in kept if r[0] == 'u-004'}
    assert [i for i in ranked if i not in seen][:4] == recs['u-004']


def test_checkpoint_saved_from_python_runs_in_the_cli(tmp_path, capsys):
    from pyg_recsys.data import load_interactions
    from pyg_recsys.nn.models import LightGCN
    from pyg_recsys.train import TrainConfig, Trainer
    path = tmp_path / 'clicks.csv'
    write_csv(path)
    graph = load_interactions(str(path), user_col='visitor',
                              item_col='product')
    model = LightGCN(num_users=graph.num_users, num_items=graph.num_items,
                     embedding_dim=4, num_layers=1)
    trainer = Trainer(model, graph, TrainConfig(epochs=2, eval_every=1),
                      out_dir=str(tmp_path / 'py'), progress=False)
    report = trainer.fit()
    assert main(['evaluate', '--checkpoint',
                 str(tmp_path / 'py' / 'checkpoint.pt'), '--json']) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again['test'] == pytest.approx(report['test'])


def test_lightgcn_folder(tmp_path, capsys):
    folder = tmp_path / 'mine'
    folder.mkdir()
    (folder / 'train.txt').write_text('0 0 1 2\n1 1 3\n2 0 4\n3 2 3 4\n')
    (folder / 'test.txt').write_text('0 3\n1 4\n2 2\n3 0\n')
    assert main(['train', 'mf', '--data', str(folder), '--epochs', '2',
                 '--eval-every', '1', '--dim', '4', '--no-progress',
                 '--ks', '2', '--monitor', 'recall@2', '--json']) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(report['test']) >= {'recall@2', 'ndcg@2'}


@pytest.mark.parametrize('extra, message', [
    (['--monitor', 'foo@10'], "monitor 'foo@10'"),
    (['--monitor', 'ndcg@50'], 'k in ks'),
    (['--dim', '0'], None),  # argparse: --dim: expected a positive integer
    (['--lr', 'nan'], None),
    (['--epochs', '-3'], None),
    (['--device', 'tpu'], "device must be"),
    (['--layers', '2', '--split', 'sideways'], "--split must be one of"),
    (['--split', 'temporal'], '--split temporal needs --time-col'),
    (['--min-rating', '3'], '--min-rating needs --rating-col'),
    (['--user-col', 'nope'], "no column 'nope' for the users"),
    (['--keep-prob', '0.1'], '--keep-prob is an option of bayes-lightgcn'),
    (['--epsilon', '0.1'], None),  # renamed: --keep-prob / --replace-prob
    (['--recipe', 'fancy'], "no recipe 'fancy'"),
    (['--encoder', 'hashing'], '--encoder is an option of the text models'),
    (['--residual', 'mean'], '--residual is an option of the sequential'),
])
def test_bad_train_options_fail_before_training(tmp_path, capsys, extra,
                                                message):
    path = tmp_path / 'clicks.csv'
    write_csv(path)
    args = ['train', 'lightgcn', '--data', str(path), '--user-col',
            'visitor', '--item-col', 'product', '--epochs', '1',
            '--no-progress', '--out', str(tmp_path / 'run')]
    if '--user-col' in extra:
        args = args[:4] + args[6:]
    if message is None:
        with pytest.raises(SystemExit) as e:
            main(args + extra)
        assert e.value.code == 2
        assert extra[0] in capsys.readouterr().err
    else:
        assert main(args + extra) == 2
        err = capsys.readouterr().err
        assert message in err, err
    assert not (tmp_path / 'run').exists()  # no training started


@pytest.mark.skipif(torch.cuda.is_available(), reason='a GPU is present')
def test_cuda_without_a_gpu_fails_before_data(tmp_path, capsys):
    assert main(['train', 'mf', '--data', str(tmp_path / 'absent.csv'),
                 '--device', 'cuda']) == 2
    assert 'no CUDA device is available' in capsys.readouterr().err


def test_cli_errors(tmp_path, capsys):
    assert main(['train', 'mf', '--dataset', 'nope']) == 2
    assert 'unknown data set' in capsys.readouterr().err
    assert main(['train', 'nope', '--dataset', 'ml-100k']) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert main(['train', 'mf', '--dataset', 'gowalla', '--root',
                 str(tmp_path)]) == 2
    assert 'gowalla' in capsys.readouterr().err
    assert main(['train', 'mf', '--data', str(tmp_path / 'x.csv')]) == 2
    assert 'no file or folder' in capsys.readouterr().err
    assert main(['evaluate', '--checkpoint', str(tmp_path / 'x.pt')]) == 2
    assert 'no checkpoint' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(['evaluate', '--checkpoint', 'x.pt', '--splits', 'nope'])
    assert "invalid choice: 'nope'" in capsys.readouterr().err
    torch.save({'anything': 1}, tmp_path / 'other.pt')
    assert main(['evaluate', '--checkpoint', str(tmp_path / 'other.pt')]) \
        == 2
    assert 'not a pyg_recsys training checkpoint' in capsys.readouterr().err
    assert main(['datasets']) == 0
    assert 'ml-100k' in capsys.readouterr().out
    assert main(['models']) == 0
    assert 'lightgcn' in capsys.readouterr().out.split()


def test_divergence_is_reported(tmp_path, capsys, monkeypatch):
    path = tmp_path / 'clicks.csv'
    write_csv(path)
    from pyg_recsys.nn.models import LightGCN

    def nan_loss(self, *args, **kwargs):
        return torch.tensor(float('nan'), requires_grad=True), {}

    monkeypatch.setattr(LightGCN, 'training_loss', nan_loss)
    assert main(['train', 'lightgcn', '--data', str(path), '--user-col',
                 'visitor', '--item-col', 'product', '--epochs', '2',
                 '--no-progress']) == 1
    err = capsys.readouterr().err
    assert 'training diverged' in err and 'epoch 1' in err


def test_export_parquet(tmp_path, capsys, monkeypatch):
    path = tmp_path / 'clicks.csv'
    write_csv(path)
    assert main(['train', 'mf', '--data', str(path), '--user-col', 'visitor',
                 '--item-col', 'product', '--epochs', '1', '--dim', '4',
                 '--no-progress', '--out', str(tmp_path / 'run')]) == 0
    ckpt = str(tmp_path / 'run' / 'checkpoint.pt')
    # Without pyarrow the message says what to install, before any work.
    monkeypatch.setitem(__import__('sys').modules, 'pyarrow', None)
    assert main(['export', '--checkpoint', ckpt, '--out',
                 str(tmp_path / 'pq'), '--format', 'parquet']) == 2
    assert 'needs pyarrow' in capsys.readouterr().err
    monkeypatch.undo()
    pq = pytest.importorskip('pyarrow.parquet')
    assert main(['export', '--checkpoint', ckpt, '--out',
                 str(tmp_path / 'pq'), '--format', 'parquet']) == 0
    assert main(['export', '--checkpoint', ckpt, '--out',
                 str(tmp_path / 'np')]) == 0
    ref = np.load(tmp_path / 'np' / 'embeddings.npz')
    for what in ('user', 'item'):
        table = pq.read_table(tmp_path / 'pq' / f'{what}s.parquet')
        assert table.column('id').to_pylist() == ref[f'{what}_ids'].tolist()
        emb = np.array(table.column('embedding').to_pylist())
        np.testing.assert_array_equal(emb, ref[f'{what}_emb'])


def test_train_gru_user(tmp_path, capsys):
    import gzip
    folder = tmp_path / 'seq-s3rec'
    folder.mkdir()
    rng = random.Random(0)
    with gzip.open(folder / 'Beauty.txt.gz', 'wt') as f:
        for u in range(1, 61):
            start = rng.randint(1, 15)
            f.write(' '.join([str(u)] + [str((start + t) % 15 + 1)
                                         for t in range(6)]) + '\n')
    assert main(['train', 'gru-user', '--dataset', 'beauty', '--root',
                 str(tmp_path), '--epochs', '3', '--dim', '8',
                 '--no-progress', '--json', '--out', str(tmp_path / 'run'),
                 '--device', 'cpu']) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0 <= report['test']['hit@10'] <= 1
    assert (tmp_path / 'run' / 'final.json').exists()
    assert main(['train', 'gru-user', '--dataset', 'gowalla']) == 2
    assert 'sequence data set' in capsys.readouterr().err
    assert main(['train', 'gru-user', '--dataset', 'beauty',
                 '--context']) == 2
    assert "'beauty' has item ids only" in capsys.readouterr().err
    assert main(['train', 'lightgcn', '--dataset', 'ml-100k',
                 '--hidden-dim', '8']) == 2
    assert '--hidden-dim is an option of the sequential' in \
        capsys.readouterr().err
    assert main(['train', 'gru-user', '--dataset', 'beauty',
                 '--layers', '2']) == 2
    assert '--layers does not apply' in capsys.readouterr().err


def test_train_gru_user_on_ml100k_time_scales_and_resume(tmp_path, capsys):
    # A small RecBole-format ML-100K: 60 users walking 40 items in time
    # order, every fourth rating a 1 (a skip).
    folder = tmp_path / 'ml-100k'
    folder.mkdir()
    rng = random.Random(1)
    lines = ['user_id:token\titem_id:token\trating:float\ttimestamp:float']
    for u in range(1, 61):
        start = rng.randint(0, 39)
        for t in range(25):
            rating = 1 if t % 4 == 3 else 5
            lines.append(f'{u}\t{(start + t) % 40 + 1}\t{rating}\t'
                         f'{880000000 + 3600 * t}')
    (folder / 'ml-100k.inter').write_text('\n'.join(lines) + '\n')
    out = tmp_path / 'run'
    argv = ['train', 'gru-user', '--dataset', 'ml-100k', '--root',
            str(tmp_path), '--epochs', '2', '--dim', '8', '--context',
            '--horizon', '5', '--no-progress', '--json', '--out', str(out),
            '--device', 'cpu', '--item-vectors', 'item2vec']
    with pytest.warns(UserWarning, match='not evaluated'):
        assert main(argv) == 0
    text = capsys.readouterr().out
    report = json.loads(text.strip().splitlines()[-1])
    assert 0 <= report['test']['long_recall@20'] <= 1
    assert 'long_recall@20' in text and '(item2vec item vectors)' in text
    assert len((out / 'log.jsonl').read_text().splitlines()) == 2
    # Resuming a finished run trains nothing more and reports the same.
    with pytest.warns(UserWarning, match='not evaluated'):
        assert main(argv + ['--resume']) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again['test'] == report['test']
    assert len((out / 'log.jsonl').read_text().splitlines()) == 2


@pytest.mark.dataset
def test_text_fusion_cold_start_train_and_evaluate(shared_data, tmp_path,
                                                   capsys, monkeypatch):
    if not (shared_data / 'ml-100k').is_dir():
        pytest.skip('ml-100k not found')
    monkeypatch.setenv('PYG_RECSYS_DATA', str(shared_data))
    monkeypatch.setenv('PYG_RECSYS_TEXT_CACHE', str(tmp_path / 'cache'))
    out = tmp_path / 'run'
    assert main(['train', 'text-fusion', '--dataset', 'ml-100k', '--split',
                 'cold-start', '--encoder', 'hashing', '--text-bias',
                 '--protocol', 'reclm-zero-shot', '--negative-pool', 'train',
                 '--epochs', '3', '--batch-size', '2048', '--eval-every',
                 '3', '--threads', '1', '--no-progress', '--out', str(out),
                 '--json']) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # Rebuilt from the checkpoint (text re-encoded from the data set name,
    # same protocol), the test metrics are the same.
    assert main(['evaluate', '--checkpoint', str(out / 'checkpoint.pt'),
                 '--splits', 'test', '--json']) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key, value in again['test'].items():
        assert value == pytest.approx(report['test'][key], abs=1e-9)
    # Zero-shot: only new movies are ranked, so ID-free text scores count.
    assert report['test']['recall@20'] > 0.12  # random: about 0.10


def test_text_model_needs_item_text(tmp_path, capsys):
    path = tmp_path / 'clicks.csv'
    write_csv(path)
    assert main(['train', 'text-fusion', '--data', str(path), '--user-col',
                 'visitor', '--item-col', 'product', '--encoder', 'hashing',
                 '--epochs', '1', '--no-progress']) == 2
    assert 'need item text' in capsys.readouterr().err
    assert main(['train', 'text-align', '--data', str(path), '--user-col',
                 'visitor', '--item-col', 'product', '--text-bias']) == 2
    assert 'options of text-fusion' in capsys.readouterr().err


@pytest.mark.dataset
def test_train_click_dnn_on_ml100k(shared_data, tmp_path, capsys):
    if not (shared_data / 'ml-100k').is_dir():
        pytest.skip('ml-100k not available')
    out = tmp_path / 'ctr'
    assert main(['train', 'click-dnn', '--dataset', 'ml-100k', '--root',
                 str(shared_data), '--epochs', '2', '--threads', '1',
                 '--out', str(out)]) == 0
    text = capsys.readouterr().out
    assert 'click-dnn on ml-100k' in text and 'user-ctr' in text
    report = json.loads((out / 'report.json').read_text())
    full = report['results']['full']
    assert 0.6 < full['auc'] < 1 and full['logloss'] < 0.69
    assert report['windows']['test'] > 0


def test_click_dnn_options_are_checked(capsys):
    assert main(['train', 'click-dnn', '--dataset', 'gowalla']) == 2
    assert 'impressions with timestamps' in capsys.readouterr().err
    assert main(['train', 'click-dnn', '--dataset', 'ml-100k',
                 '--layers', '2']) == 2
    assert '--layers does not apply to click-dnn' in capsys.readouterr().err


@pytest.mark.parametrize('model', ['simplex', 'ultragcn'])
def test_many_negative_models_train_on_own_data(tmp_path, capsys, model):
    path = tmp_path / 'clicks.csv'
    write_csv(path)
    extra = ['--loss', 'ccl', '--margin', '0.5', '--negative-weight', '4',
             '--lr-schedule', 'step', '--lr-milestones', '1',
             '--lr-decay', '0.5', '--embedding-decay', '1e-5',
             '--exclude-positives'] if model == 'simplex' else []
    assert main(['train', model, '--data', str(path), '--user-col',
                 'visitor', '--item-col', 'product', '--epochs', '2',
                 '--eval-every', '1', '--dim', '8', '--num-negatives', '16',
                 '--shared-negatives', '--no-progress', '--json',
                 '--device', 'cpu', '--out', str(tmp_path / 'run')] +
                extra) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0 <= report['test']['recall@20'] <= 1
    from pyg_recsys.train import Trainer
    config = Trainer.from_checkpoint(str(tmp_path / 'run' /
                                         'checkpoint.pt')).config
    assert config.shared_negatives and config.num_negatives == 16
    if model == 'simplex':
        assert (config.loss, config.margin, config.negative_weight) == \
            ('ccl', 0.5, 4.0)
        assert (config.lr_schedule, config.lr_milestones, config.lr_decay,
                config.embedding_decay, config.exclude_positives) == \
            ('step', (1,), 0.5, 1e-5, True)
    else:  # UltraGCN has its own objective and says so
        assert main(['train', model, '--data', str(path), '--user-col',
                     'visitor', '--item-col', 'product', '--loss', 'ccl',
                     '--epochs', '1', '--no-progress']) == 2
        assert 'own' in capsys.readouterr().err


def test_ranking_loss_options_are_refused_where_they_do_not_apply(capsys):
    assert main(['train', 'gru-user', '--dataset', 'beauty', '--loss',
                 'ccl']) == 2
    assert '--loss does not apply' in capsys.readouterr().err
