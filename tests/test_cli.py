import json

import pytest

from pyg_recsys.cli import main


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
                 '--root', str(shared_data), '--json']) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again['test'] == pytest.approx(report['test'])

    assert main(['recommend', '--checkpoint', str(out / 'checkpoint.pt'),
                 '--root', str(shared_data), '--users', '0,5', '-k',
                 '5']) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [len(x.split('\t')[1].split()) for x in lines] == [5, 5]

    # Resume continues from the checkpoint instead of starting over.
    assert main(args[:args.index('--epochs') + 1] + ['6'] +
                args[args.index('--epochs') + 2:] + ['--resume']) == 2
    assert 'differ' in capsys.readouterr().err


def test_cli_errors(tmp_path, capsys):
    assert main(['train', 'mf', '--dataset', 'nope']) == 2
    assert 'unknown data set' in capsys.readouterr().err
    assert main(['train', 'mf', '--dataset', 'gowalla', '--root',
                 str(tmp_path)]) == 2
    assert 'gowalla' in capsys.readouterr().err
    assert main(['evaluate', '--checkpoint', str(tmp_path / 'x.pt')]) == 2
    assert 'no checkpoint' in capsys.readouterr().err
    assert main(['datasets']) == 0
    assert 'ml-100k' in capsys.readouterr().out
