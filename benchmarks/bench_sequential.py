"""Epoch and evaluation time of the GRU user model on S3-Rec Beauty, side by
side with a plain PyTorch reference: the same network (embedding, GRU,
linear map, scores against the item table) trained the way the S3-Rec /
ICLRec family of codes does (every window left-padded to max_len, the GRU
run over all max_len steps, F.cross_entropy over the full logits of the
real positions), and evaluated by scoring all users against all items and
sorting each row.

    python benchmarks/bench_sequential.py [--steps 30]

Ours: packed sequences, right-padded windows cut by length, the fused
block-wise softmax cross-entropy (pyg_recsys.nn.loss.softmax_cross_entropy)
and sort-free ranks (pyg_recsys.metrics.sequential.target_ranks). The
epoch time is the time of --steps steps scaled to a full epoch.
"""
import argparse
import os.path as osp
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from _common import load_note, require_dataset  # noqa: E402

from pyg_recsys.data.sequences import load_sequences  # noqa: E402
from pyg_recsys.nn.models.sequential import SequentialUserRNN  # noqa: E402
from pyg_recsys.train.sequential import (  # noqa: E402
    SequenceConfig,
    SequenceTrainer,
)


def reference_step(model, opt, seq, lengths, max_len):
    # Left-pad every window to max_len + 1 with the padding row, run all
    # steps, mask the padded positions out of the full-softmax loss.
    pad = model.num_items
    b = seq.size(0)
    full = torch.full((b, max_len + 1), pad, dtype=torch.long)
    pos = torch.arange(seq.size(1)).view(1, -1)
    valid = pos < lengths.view(-1, 1)
    shift = (max_len + 1 - lengths).view(-1, 1)
    rows = torch.arange(b).view(-1, 1).expand_as(seq)
    full[rows[valid], (pos + shift).expand_as(seq)[valid]] = seq[valid]
    x = model.dropout(model.item_embedding(full[:, :-1]))
    out, _ = model.rnn(x)
    user = model.proj(out)
    target = full[:, 1:]
    mask = (target != pad) & (full[:, :-1] != pad)
    logits = user[mask] @ model.item_embedding.weight[:-1].t()
    loss = F.cross_entropy(logits, target[mask])
    opt.zero_grad()
    loss.backward()
    opt.step()


@torch.no_grad()
def reference_ranks(model, seq, lengths, hist, target, batch=1024):
    ranks = []
    for s in range(0, seq.size(0), batch):
        scores = model.scores(model(seq[s:s + batch], lengths[s:s + batch]))
        h = hist[s:s + batch]
        rows = torch.arange(h.size(0)).view(-1, 1).expand_as(h)
        ok = (h >= 0) & (h != target[s:s + batch].view(-1, 1))
        scores[rows[ok], h[ok]] = float('-inf')
        order = torch.argsort(scores, dim=1, descending=True, stable=True)
        ranks.append((order == target[s:s + batch].view(-1, 1)).float()
                     .argmax(1))
    return torch.cat(ranks)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--dataset', default='beauty')
    p.add_argument('--steps', type=int, default=30)
    p.add_argument('--threads', type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data = load_sequences(args.dataset, require_dataset('seq-s3rec'))
    split = data.leave_one_out()
    print(f'{data}; {args.threads} threads; {load_note()}')
    cfg = SequenceConfig(batch_size=256, lr=2e-3, max_len=50, device='cpu')
    torch.manual_seed(0)
    model = SequentialUserRNN(data.num_items, 64, hidden_dim=128,
                              dropout=0.3)
    trainer = SequenceTrainer(model, split, cfg, progress=False)
    users, end = trainer.windows
    order = torch.randperm(users.numel())
    n_steps = -(-users.numel() // cfg.batch_size)
    batches = []
    for i in range(args.steps + 2):
        idx = order[(i % n_steps) * 256:(i % n_steps + 1) * 256]
        seq, lengths = split.train.padded(users[idx], end[idx], max_len=51)
        keep = lengths >= 2
        batches.append((seq[keep], lengths[keep]))
    opt = trainer.optimizer
    times = {}
    for name in ('reference', 'ours', 'reference ', 'ours '):
        for i, (seq, lengths) in enumerate(batches):
            if i == 2:
                start = time.perf_counter()
            if name.strip() == 'ours':
                opt.zero_grad()
                model.loss(seq, lengths)[0].backward()
                opt.step()
            else:
                reference_step(model, opt, seq, lengths, cfg.max_len)
        t = (time.perf_counter() - start) / args.steps * n_steps
        times[name.strip()] = min(times.get(name.strip(), t), t)
    print(f'epoch ({n_steps} steps of 256 windows, scaled from '
          f'{args.steps}): reference {times["reference"]:.1f} s, ours '
          f'{times["ours"]:.1f} s, speed-up '
          f'{times["reference"] / times["ours"]:.2f}x')
    # Evaluation: every validation user against every item.
    model.eval()
    full = split.full
    vu = split.valid_users
    vend = full.lengths[vu] - 2
    seq, lengths = full.padded(vu, vend, max_len=50)
    hist, _ = full.padded(vu, vend, max_len=int(vend.max()))
    start = time.perf_counter()
    ref = reference_ranks(model, seq, lengths, hist, split.valid_target)
    t_ref = time.perf_counter() - start
    start = time.perf_counter()
    trainer.evaluate('valid')
    t_ours = time.perf_counter() - start
    from pyg_recsys.metrics.sequential import target_ranks

    def score(a, b):
        return model.scores(model(seq[a:b], lengths[a:b]))
    same = torch.equal(ref, target_ranks(score, split.valid_target, hist))
    print(f'evaluation ({vu.numel()} users x {data.num_items} items): '
          f'reference (argsort) {t_ref:.1f} s, ours {t_ours:.1f} s, '
          f'speed-up {t_ref / t_ours:.2f}x; identical ranks: {same}')


if __name__ == '__main__':
    main()
