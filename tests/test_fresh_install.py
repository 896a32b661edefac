r"""The package as a new user gets it: `pip install .` into a fresh virtual
environment, then the command line on a CSV with string ids."""
import csv
import json
import os
import random
import site
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def run(cmd, **kwargs):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                         **kwargs)
    assert out.returncode == 0, (cmd, out.stdout[-3000:], out.stderr[-3000:])
    return out.stdout


@pytest.mark.skipif(sys.platform == 'win32', reason='POSIX paths')
def test_pip_install_then_csv_to_recommendations(tmp_path):
    env_dir = tmp_path / 'venv'
    venv.create(env_dir, with_pip=True)
    py = env_dir / 'bin' / 'python'
    # torch and torch_geometric come from this interpreter's site-packages
    # (no network here); pyg_recsys itself is installed from the source
    # tree, without the compiled extension to keep the test short.
    purelib = run([str(py), '-c', 'import sysconfig; '
                   'print(sysconfig.get_paths()["purelib"])']).strip()
    with open(os.path.join(purelib, '_parent_site.pth'), 'w') as f:
        f.write('\n'.join(site.getsitepackages()) + '\n')
    env = {**os.environ, 'PYG_RECSYS_NO_EXT': '1', 'PIP_NO_INDEX': '1'}
    env.pop('PYTHONPATH', None)
    run([str(py), '-m', 'pip', 'install', '--quiet', '--no-deps',
         '--no-build-isolation', str(REPO_ROOT)], env=env, cwd=tmp_path)
    where = run([str(py), '-c', 'import pyg_recsys; print(pyg_recsys.__file__)'],
                env=env, cwd=tmp_path)
    assert str(env_dir) in where  # the installed copy, not the source tree

    rng = random.Random(0)
    users = [f'user:{k}' for k in range(40)]
    items = [f'sku-{k:04d}' for k in range(25)]
    rows = [(u, i, rng.randint(1, 5)) for u in users
            for i in rng.sample(items, 8)]
    data = tmp_path / 'interactions.csv'
    with open(data, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['customer', 'article', 'rating'])
        w.writerows(rows)

    cli = str(env_dir / 'bin' / 'pyg-recsys')
    run([cli, 'train', 'lightgcn', '--data', str(data), '--user-col',
         'customer', '--item-col', 'article', '--rating-col', 'rating',
         '--split', 'random', '--epochs', '3', '--eval-every', '1', '--dim',
         '8', '--out', str(tmp_path / 'run'), '--no-progress', '--device',
         'cpu'], env=env, cwd=tmp_path)
    ckpt = str(tmp_path / 'run' / 'checkpoint.pt')
    recs = json.loads(run([cli, 'recommend', '--checkpoint', ckpt, '--users',
                           'user:3,user:17', '-k', '5', '--json'], env=env,
                          cwd=tmp_path).strip().splitlines()[-1])
    for user in ('user:3', 'user:17'):
        seen = {i for u, i, _ in rows if u == user}
        assert len(recs[user]) == 5 and set(recs[user]) <= set(items)
        assert not seen & set(recs[user])
    run([cli, 'export', '--checkpoint', ckpt, '--out',
         str(tmp_path / 'emb')], env=env, cwd=tmp_path)
    emb = np.load(tmp_path / 'emb' / 'embeddings.npz')
    assert sorted(emb['user_ids'].tolist()) == sorted(users)
    assert sorted(emb['item_ids'].tolist()) == sorted(items)
    report = json.loads(run([cli, 'evaluate', '--checkpoint', ckpt,
                             '--json'], env=env,
                            cwd=tmp_path).strip().splitlines()[-1])
    assert 0 <= report['test']['recall@20'] <= 1
