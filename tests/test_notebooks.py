from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] /
                    'notebooks').glob('*.ipynb'))


@pytest.mark.dataset
@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, shared_data, monkeypatch):
    nbformat = pytest.importorskip('nbformat')
    nbclient = pytest.importorskip('nbclient')
    monkeypatch.setenv('PYG_RECSYS_DATA', str(shared_data))
    monkeypatch.setenv('QUICKSTART_EPOCHS', '5')
    monkeypatch.setenv('NOTEBOOK_EPOCHS', '5')
    monkeypatch.setenv('MPLBACKEND', 'Agg')
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name='python3',
                                     resources={'metadata': {
                                         'path': str(path.parent)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == 'code'
              for o in c.get('outputs', []) if o.output_type == 'error']
    assert not errors
