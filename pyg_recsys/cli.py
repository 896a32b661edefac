r"""The :obj:`pyg-recsys` command: train, evaluate, recommend, export.

Every option is checked before any data is read or any training starts;
errors name the option. Checkpoints carry the graph (with the raw-id
vocabulary) and the model's description, so :obj:`evaluate`,
:obj:`recommend` and :obj:`export` need nothing but the checkpoint.
"""
import argparse
import json
import math
import os
import sys
import time
from typing import Dict, List, Optional

import torch

from pyg_recsys import __version__

# Model options of the command line and the models that take them.
_DIM_MODELS = ('lightgcn', 'dccf', 'mf', 'sheaf4rec', 'bayes-lightgcn',
               'bgcf', 'simplex', 'ultragcn')
_BAYES_MODELS = ('bayes-lightgcn', 'bgcf')
_LAYER_MODELS = ('lightgcn', 'dccf', 'sheaf4rec', 'bayes-lightgcn')


def _number(kind, low: float, inclusive: bool, what: str):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {what}, got '{text}'") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got '{text}'")
        if value < low or (value == low and not inclusive):
            raise argparse.ArgumentTypeError(f"expected {what}, got '{text}'")
        return value
    parse.__name__ = what  # argparse names the type in its messages
    return parse


positive_int = _number(int, 0, False, 'a positive integer')
count = _number(int, 0, True, 'an integer >= 0')
positive_float = _number(float, 0.0, False, 'a positive number')
nonneg_float = _number(float, 0.0, True, 'a number >= 0')


def _metrics_table(report: Dict, ks) -> str:
    names = ['recall', 'ndcg']
    lines = [f"{'split':<6} " + ' '.join(f'{n + "@" + str(k):>11}'
                                         for k in ks for n in names)]
    for split in ('train', 'valid', 'test'):
        if split in report:
            m = report[split]
            lines.append(f'{split:<6} ' + ' '.join(
                f"{m[f'{n}@{k}']:>11.4f}" for k in ks for n in names))
    return '\n'.join(lines)


# ----------------------------------------------------------------------------
def _data_spec(args) -> Dict:
    r"""Where the data comes from, as stored in the checkpoint."""
    if args.data is not None:
        return {'path': os.path.abspath(args.data), 'user_col': args.user_col,
                'item_col': args.item_col, 'rating_col': args.rating_col,
                'min_rating': args.min_rating, 'time_col': args.time_col,
                'sep': args.sep, 'split': args.split or 'random',
                'data_seed': args.data_seed}
    return {'dataset': args.dataset, 'root': args.root,
            'split': args.split or '', 'data_seed': args.data_seed}


def _check_data_args(args) -> None:
    own = {'--user-col': args.user_col != 'user',
           '--item-col': args.item_col != 'item',
           '--rating-col': args.rating_col is not None,
           '--min-rating': args.min_rating is not None,
           '--time-col': args.time_col is not None,
           '--sep': args.sep is not None}
    if args.data is None:
        given = [k for k, v in own.items() if v]
        if given:
            raise ValueError(f"{given[0]} describes a file given with "
                             f"--data, not a named --dataset")
        from pyg_recsys.data import list_datasets
        if args.dataset.lower() not in list_datasets():
            raise ValueError(f"--dataset: unknown data set '{args.dataset}' "
                             f"(available: {', '.join(list_datasets())}; "
                             f"or pass your own file with --data)")
        return
    if not os.path.exists(args.data):
        raise FileNotFoundError(f"--data: no file or folder at "
                                f"'{args.data}'")
    if os.path.isdir(args.data):
        given = [k for k, v in own.items() if v]
        if given or args.split:
            raise ValueError(f"--data {args.data} is a folder of "
                             f"LightGCN-format files with its own split; "
                             f"{(given or ['--split'])[0]} applies to a "
                             f"table file")
        return
    from pyg_recsys.data.files import SPLITS
    if args.split is not None and args.split not in SPLITS:
        raise ValueError(f"--split must be one of {SPLITS} for --data, got "
                         f"'{args.split}'")
    if args.split == 'temporal' and args.time_col is None:
        raise ValueError("--split temporal needs --time-col")
    if args.min_rating is not None and args.rating_col is None:
        raise ValueError("--min-rating needs --rating-col")


def _load_graph(spec: Dict):
    if 'path' in spec:
        from pyg_recsys.data import load_interactions, load_lightgcn_folder
        if os.path.isdir(spec['path']):
            return load_lightgcn_folder(spec['path'])
        return load_interactions(
            spec['path'], user_col=spec['user_col'],
            item_col=spec['item_col'], rating_col=spec['rating_col'],
            min_rating=spec['min_rating'], time_col=spec['time_col'],
            sep=spec['sep'], split=spec['split'], seed=spec['data_seed'])
    from pyg_recsys.data import load_dataset
    kwargs = {'split': spec['split']} if spec.get('split') else {}
    return load_dataset(spec['dataset'], root=spec.get('root'),
                        seed=spec.get('data_seed', 0), **kwargs)


def _bayes_kwargs(args, model_kwargs: Dict, config, graph) -> None:
    r"""The generator and sampling options of :obj:`bayes-lightgcn` and
    :obj:`bgcf`: command-line values over the recipe's; a new training graph
    every epoch (:obj:`--resample-every` steps) unless told otherwise;
    :obj:`--num-samples` is BGCF's number of inference passes; the training
    seed also seeds the graph streams."""
    bgcf = args.model == 'bgcf'
    name = args.generator or model_kwargs.get(
        'generator', 'node_copy' if bgcf else 'peco')
    model_kwargs['generator'] = name
    gen = dict(model_kwargs.get('generator_kwargs') or {})
    options = {'keep_prob': 'epsilon', 'replace_prob': 'replace_prob',
               'top_k': 'top_k' if name == 'node_copy' else 'user_top_k'}
    if name == 'peco':
        options.update({'alpha': 'alpha', 'beta': 'beta',
                        'item_top_k': 'item_top_k'})
    for arg, key in options.items():
        if getattr(args, arg) is not None:
            if key in ('epsilon', 'replace_prob'):  # one overrides the other
                gen.pop('epsilon', None)
                gen.pop('replace_prob', None)
            gen[key] = getattr(args, arg)
    model_kwargs['generator_kwargs'] = gen
    if args.num_samples is not None:
        model_kwargs['num_eval_passes' if bgcf else 'num_samples'] = \
            args.num_samples
    model_kwargs['steps_per_graph' if bgcf else 'resample_every'] = (
        args.resample_every if args.resample_every is not None
        else config.steps_per_epoch
        or -(-graph.train.size(1) // config.batch_size))
    model_kwargs['seed'] = config.seed


def _check_model_args(args) -> None:
    import pyg_recsys.text.builders  # noqa: F401  (registers text-*)
    from pyg_recsys.nn.models import list_models
    if args.model not in list_models():
        raise ValueError(f"unknown model '{args.model}' (choose from "
                         f"{', '.join(list_models())})")
    for option, models in (('dim', _DIM_MODELS), ('layers', _LAYER_MODELS)):
        if getattr(args, option) is not None and args.model not in models:
            raise ValueError(f"--{option} does not apply to '{args.model}'")
    bayes = ('generator', 'num_samples', 'resample_every', 'keep_prob',
             'replace_prob', 'top_k', 'alpha', 'beta', 'item_top_k')
    given = [a for a in bayes if getattr(args, a) is not None]
    if given and args.model not in _BAYES_MODELS:
        raise ValueError(f"--{given[0].replace('_', '-')} is an option of "
                         f"bayes-lightgcn and bgcf")
    if args.model in _BAYES_MODELS:
        peco_only = [a for a in ('alpha', 'beta', 'item_top_k')
                     if getattr(args, a) is not None]
        default = 'node_copy' if args.model == 'bgcf' else 'peco'
        if peco_only and (args.generator or default) != 'peco':
            raise ValueError(f"--{peco_only[0].replace('_', '-')} is a PECO "
                             f"option (node copying takes --keep-prob or "
                             f"--replace-prob, and --top-k)")


_TRAIN_KEYS = ('epochs', 'batch_size', 'steps_per_epoch', 'lr', 'lr_schedule',
               'lr_milestones', 'lr_decay', 'embedding_decay', 'lambda_reg',
               'reg_scaling', 'sampler', 'num_negatives',
               'negative_sampling', 'negative_pool', 'eval_every',
               'patience', 'monitor', 'select', 'seed', 'threads', 'device',
               'num_neighbors', 'loss', 'margin', 'negative_weight',
               'temperature', 'shared_negatives', 'exclude_positives')
_TEXT_ONLY = ('encoder', 'backbone', 'text_bias')


_SEQUENTIAL = {'gru-user': 'gru', 'lstm-user': 'lstm'}
_SEQUENCE_DATA = ('beauty', 'sports', 'toys', 'yelp-seq', 'ml-100k')
_SEQUENCE_ONLY = ('hidden_dim', 'dropout', 'item_vectors', 'freeze',
                  'max_len', 'horizon', 'context', 'history', 'residual')


def _train_sequential(args) -> int:
    r"""``train gru-user|lstm-user``: a recurrent user model on a sequence
    data set, full ranking with history masked: leave-one-out on the S3-Rec
    sets, the two time scales (a horizon split) on ML-100K."""
    from pyg_recsys.data.sequences import CONTEXT_FEATURES, load_sequences
    from pyg_recsys.nn.models.item_sources import SOURCES, item_vectors
    from pyg_recsys.nn.models.sequential import SequentialUserRNN
    from pyg_recsys.train import get_recipe
    from pyg_recsys.train.config import resolve_device
    from pyg_recsys.train.sequential import SequenceConfig, SequenceTrainer
    if args.data is not None or args.dataset not in _SEQUENCE_DATA:
        raise ValueError(f"{args.model} trains on a sequence data set: "
                         f"--dataset {' | '.join(_SEQUENCE_DATA)}")
    unused = [o for o in ('layers', 'lambda_reg', 'reg_scaling', 'sampler',
                          'negative_sampling', 'select', 'lr_schedule',
                          'lr_milestones', 'lr_decay', 'embedding_decay',
                          'loss', 'margin', 'negative_weight', 'temperature',
                          'shared_negatives', 'exclude_positives')
              if getattr(args, o) is not None]
    if unused:
        raise ValueError(f"--{unused[0].replace('_', '-')} does not apply to "
                         f"{args.model}")
    horizon = args.dataset == 'ml-100k'
    if args.horizon is not None and not horizon:
        raise ValueError("--horizon applies to ml-100k (the S3-Rec sets are "
                         "split leave-one-out)")
    if args.context and not horizon:
        raise ValueError(f"--context needs ratings and timestamps; "
                         f"'{args.dataset}' has item ids only")
    if args.resume and not args.out:
        raise ValueError("--resume needs --out (the run's directory)")
    recipe = get_recipe(args.model, args.dataset, args.recipe)
    model_kwargs = {'embedding_dim': 64, **recipe.model_kwargs}
    for key, option in (('embedding_dim', 'dim'), ('hidden_dim', 'hidden_dim'),
                        ('dropout', 'dropout'), ('freeze', 'freeze'),
                        ('residual', 'residual')):
        if getattr(args, option):
            model_kwargs[key] = getattr(args, option)
    source = args.item_vectors or model_kwargs.pop('item_vectors', 'learned')
    model_kwargs.pop('item_vectors', None)
    if source not in SOURCES:
        raise ValueError(f"--item-vectors must be one of {SOURCES}")
    kwargs = dict(recipe.train)
    for key in ('epochs', 'batch_size', 'lr', 'eval_every', 'patience',
                'monitor', 'seed', 'device', 'num_negatives', 'max_len',
                'history'):
        if getattr(args, key) is not None:
            kwargs[key] = getattr(args, key)
    if args.ks:
        kwargs['ks'] = args.ks
    if args.context:
        kwargs['context'] = CONTEXT_FEATURES
    if horizon:
        kwargs.setdefault('skip_threshold', 2.0)
    try:
        config = SequenceConfig(**kwargs)
    except ValueError as e:
        raise ValueError(str(e).replace('SequenceConfig: ',
                                        'training option '))
    resolve_device(config.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_sequences(args.dataset, args.root)
    split = data.horizon_split(args.horizon or 10) if horizon else \
        data.leave_one_out()
    print(f'pyg-recsys {__version__}: {data}', file=sys.stderr)
    vectors = item_vectors(source, split.train,
                           model_kwargs['embedding_dim'], seed=config.seed)
    torch.manual_seed(config.seed)
    model = SequentialUserRNN(data.num_items, cell=_SEQUENTIAL[args.model],
                              item_vectors=vectors,
                              context_dim=len(config.context),
                              **model_kwargs)
    trainer = SequenceTrainer(model, split, config,
                              progress=not args.no_progress,
                              out_dir=args.out)
    report = trainer.fit(resume=args.resume)
    print(f"\n{args.model} on {args.dataset} ({source} item vectors): best "
          f"{config.monitor} on the validation split, epoch "
          f"{report['epoch']} of {report['epochs_run']}, "
          f"{report['train_seconds']:.1f} s training ({trainer.device})")
    names = [f'{n}@{k}' for k in config.ks for n in ('hit', 'ndcg')]
    names += [k for k in report['test'] if k.startswith('long_')]
    print(f"{'split':<6} " + ' '.join(n.rjust(max(11, len(n) + 1))
                                      for n in names))
    for name in ('valid', 'test'):
        print(f'{name:<6} ' + ' '.join(
            f"{report[name][n]:>{max(11, len(n) + 1)}.4f}" for n in names))
    if args.json:
        print(json.dumps({k: v for k, v in report.items()
                          if k in ('epoch', 'epochs_run', 'train_seconds',
                                   'valid', 'test')}))
    if args.out:
        torch.save({'model': model.state_dict(), 'report': report,
                    'model_kwargs': {**model_kwargs,
                                     'cell': _SEQUENTIAL[args.model],
                                     'item_vectors': source}},
                   os.path.join(args.out, 'model.pt'))
    return 0


_CLICK_DATA = ('ml-100k', )


def _train_click(args) -> int:
    r"""``train click-dnn``: the C-3PO-style click model on impressions, a
    temporal split, against the global and per-user click rates (with
    ``--ablation`` also without the sequence, without the CF features, and
    logistic regression)."""
    import dataclasses

    from pyg_recsys.data.impressions import ml100k_impressions
    from pyg_recsys.train.ctr import VARIANTS, ClickConfig, run_click_experiment
    if args.data is not None or args.dataset not in _CLICK_DATA:
        raise ValueError(f"click-dnn trains on impressions with timestamps: "
                         f"--dataset {' | '.join(_CLICK_DATA)}")
    supported = ('epochs', 'batch_size', 'lr', 'lambda_reg', 'patience',
                 'seed', 'threads', 'dropout', 'dim', 'json', 'out',
                 'ablation', 'no_progress', 'dataset', 'root')
    defaults = vars(build_parser().parse_args(['train', args.model,
                                               '--dataset', 'x']))
    for key, value in vars(args).items():
        if key not in supported and value != defaults.get(key):
            raise ValueError(f"--{key.replace('_', '-')} does not apply to "
                             f"click-dnn")
    kwargs = {}
    for key, name in (('epochs', 'epochs'), ('batch_size', 'batch_size'),
                      ('lr', 'lr'), ('lambda_reg', 'weight_decay'),
                      ('patience', 'patience'), ('seed', 'seed'),
                      ('dropout', 'dropout'), ('dim', 'item_dim')):
        if getattr(args, key) is not None:
            kwargs[name] = getattr(args, key)
    kwargs['variants'] = VARIANTS if args.ablation else ('full', )
    config = ClickConfig(**kwargs)
    if args.threads:
        torch.set_num_threads(args.threads)
    imp = ml100k_impressions(args.root)
    print(f'pyg-recsys {__version__}: {imp}', flush=True)
    report = run_click_experiment(imp, config)
    print(f"\nclick-dnn on {imp.name}: temporal split {report['windows']}, "
          f"test click rate {report['test_ctr']:.3f}, "
          f"{report['wall_seconds']:.1f} s in all")
    print(f"{'model':>12} {'AUC':>8} {'GAUC':>8} {'logloss':>8} {'ECE':>8}")
    for name, r in report['results'].items():
        print(f"{name:>12} {r['auc']:8.4f} {r['gauc']:8.4f} "
              f"{r['logloss']:8.4f} {r['ece']:8.4f}")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, 'report.json'), 'w') as f:
            json.dump(report, f, indent=1)
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != 'config'}
                         | {'config': dataclasses.asdict(config)}))
    return 0


def cmd_train(args) -> int:
    from pyg_recsys.train import TrainConfig, Trainer, build_model, get_recipe
    from pyg_recsys.train.config import resolve_device
    from pyg_recsys.train.trainer import protocol_evaluators

    if args.model == 'click-dnn':
        return _train_click(args)
    if args.model in _SEQUENTIAL:
        return _train_sequential(args)
    # 1. Every option, before any data is read.
    given = [o for o in _SEQUENCE_ONLY if getattr(args, o)]
    if given:
        raise ValueError(f"--{given[0].replace('_', '-')} is an option of the "
                         f"sequential models ({', '.join(_SEQUENTIAL)})")
    _check_model_args(args)
    given = [o for o in _TEXT_ONLY if getattr(args, o)]
    if given and not args.model.startswith('text-'):
        raise ValueError(f"--{given[0].replace('_', '-')} is an option of "
                         f"the text models (text-zero-shot, text-align, "
                         f"text-fusion, text-lightgcn)")
    if (args.backbone or args.text_bias) and args.model != 'text-fusion':
        raise ValueError("--backbone and --text-bias are options of "
                         "text-fusion")
    name = args.dataset if args.data is None else None
    recipe = get_recipe(args.model, name, args.recipe)
    model_kwargs = dict(recipe.model_kwargs)
    for key in _TEXT_ONLY:
        if getattr(args, key):
            model_kwargs[key] = getattr(args, key)
    if args.dim is not None:
        model_kwargs['embedding_dim'] = args.dim
    if args.layers is not None:
        model_kwargs['num_layers'] = args.layers
    train_kwargs = dict(recipe.train)
    if args.lr_schedule not in (None, 'step') and args.lr_milestones is None:
        train_kwargs.pop('lr_milestones', None)  # the recipe's step schedule
    for key in _TRAIN_KEYS:
        value = getattr(args, key)
        if value is not None:
            train_kwargs[key] = value
    if args.ks:
        train_kwargs['ks'] = args.ks
    try:
        config = TrainConfig(**train_kwargs)
    except ValueError as e:
        raise ValueError(str(e).replace('TrainConfig: ', 'training option '))
    resolve_device(config.device)
    if args.resume and not args.out:
        raise ValueError("--resume needs --out (the run's directory)")
    _check_data_args(args)
    if config.threads:
        torch.set_num_threads(config.threads)

    config, rank = _join_process_group(config)

    # 2. Data and model (a bad model argument fails here, before training).
    spec = _data_spec(args)
    graph = _load_graph(spec)
    if rank == 0:
        print(f'pyg-recsys {__version__}: {graph}', file=sys.stderr)
    if args.model in _BAYES_MODELS:
        _bayes_kwargs(args, model_kwargs, config, graph)
    torch.manual_seed(config.seed)
    model = build_model(args.model, graph, **model_kwargs)
    meta = {'model': args.model, 'model_kwargs': model_kwargs,
            'data': spec, 'recipe': args.recipe, 'version': __version__,
            'dataset': graph.name, 'protocol': args.protocol}
    trainer = Trainer(model, graph, config, out_dir=args.out,
                      progress=not args.no_progress, meta=meta,
                      evaluators=protocol_evaluators(args.protocol, graph,
                                                     config))
    if args.resume and trainer.resume():
        print(f'resumed from epoch {trainer.epoch}', file=sys.stderr)

    # 3. Training.
    start = time.perf_counter()
    report = trainer.fit()
    wall = time.perf_counter() - start
    if rank != 0:  # rank 0 reports for every process
        return 0
    print(f'\n{args.model} on {graph.name}: {report["selection"]}, epoch '
          f'{report["epoch"]} of {report["epochs_run"]}, '
          f'{report["train_seconds"]:.1f} s training, {wall:.1f} s in all '
          f'({trainer.device})')
    print(_metrics_table(report, config.ks))
    if args.json:
        print(json.dumps(report))
    if args.out:
        print(f'checkpoint, log and curve in {args.out}', file=sys.stderr)
    return 0


def _join_process_group(config):
    r"""Under :obj:`torchrun` (:obj:`WORLD_SIZE` > 1 in the environment),
    joins the default process group, gloo on CPU and NCCL on CUDA (one GPU
    per process, :obj:`cuda:LOCAL_RANK`); returns the settings (with that
    device) and this process's rank."""
    import torch.distributed as dist

    from pyg_recsys.train.config import TrainConfig, resolve_device
    if int(os.environ.get('WORLD_SIZE', '1')) <= 1:
        return config, 0
    if not dist.is_initialized():
        device = resolve_device(config.device)
        if device.type == 'cuda':
            local = int(os.environ.get('LOCAL_RANK', '0'))
            torch.cuda.set_device(local)
            config = TrainConfig.from_dict({**config.to_dict(),
                                            'device': f'cuda:{local}'})
        dist.init_process_group('nccl' if device.type == 'cuda' else 'gloo')
        # Torn down while the interpreter is whole, not in its finalisation
        # (where a gloo thread freeing a tensor can no longer take the GIL).
        import atexit
        atexit.register(dist.destroy_process_group)
    return config, dist.get_rank()


# ----------------------------------------------------------------------------
def _from_checkpoint(args):
    r"""The trainer (graph, model, settings) a checkpoint describes."""
    from pyg_recsys.train import Trainer
    trainer = Trainer.from_checkpoint(args.checkpoint, device=args.device)
    return trainer, trainer.graph, trainer.model


def cmd_evaluate(args) -> int:
    trainer, graph, _ = _from_checkpoint(args)
    missing = [s for s in args.splits if getattr(graph, s) is None]
    if missing:
        raise ValueError(f"--splits: the checkpoint's graph has no "
                         f"'{missing[0]}' split")
    report = {split: trainer.evaluate(split) for split in args.splits}
    print(_metrics_table(report, trainer.config.ks))
    if args.json:
        print(json.dumps(report))
    return 0


def cmd_recommend(args) -> int:
    trainer, graph, _ = _from_checkpoint(args)
    raw = [u.strip() for u in args.users.split(',') if u.strip()]
    if not raw:
        raise ValueError("--users: give at least one user id")
    users = graph.user_index(raw)
    top = trainer.recommend(users, args.k)
    out = {}
    for r, items in zip(raw, top.tolist()):
        out[r] = graph.raw_items([i for i in items if i >= 0])
    if args.json:
        print(json.dumps(out))
    else:
        for r, items in out.items():
            print(f'{r}\t' + ' '.join(str(i) for i in items))
    return 0


def cmd_export(args) -> int:
    import numpy as np
    if args.format == 'parquet':
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ValueError("--format parquet needs pyarrow (pip install "
                             "pyarrow); --format npz needs nothing") from None
    trainer, graph, model = _from_checkpoint(args)
    if not hasattr(model, 'get_embedding'):
        raise ValueError(f"model '{trainer.meta['model']}' scores without "
                         f"embeddings: there is nothing to export")
    model.eval()
    with torch.no_grad():
        out = model.get_embedding(trainer.adj).detach().float().cpu()
    user_emb = out[:graph.num_users].numpy()
    item_emb = out[graph.num_users:].numpy()
    user_ids = graph.raw_users(torch.arange(graph.num_users))
    item_ids = graph.raw_items(torch.arange(graph.num_items))
    os.makedirs(args.out, exist_ok=True)
    written = []
    if args.format == 'npz':
        path = os.path.join(args.out, 'embeddings.npz')
        np.savez(path, user_ids=np.asarray(user_ids), user_emb=user_emb,
                 item_ids=np.asarray(item_ids), item_emb=item_emb)
        written.append(path)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq
        for what, ids, emb in (('users', user_ids, user_emb),
                               ('items', item_ids, item_emb)):
            path = os.path.join(args.out, f'{what}.parquet')
            column = pa.FixedSizeListArray.from_arrays(
                pa.array(emb.reshape(-1)), emb.shape[1])
            pq.write_table(pa.table({'id': ids, 'embedding': column}), path)
            written.append(path)
    print(f'{graph.num_users} users and {graph.num_items} items, '
          f'{user_emb.shape[1]} dimensions: ' + ', '.join(written))
    return 0


def cmd_datasets(args) -> int:
    from pyg_recsys.data import list_datasets
    for name in list_datasets():
        print(name)
    return 0


def cmd_models(args) -> int:
    import pyg_recsys.text.builders  # noqa: F401  (registers text-*)
    from pyg_recsys.nn.models import list_models
    for name in list_models():
        print(name)
    for name in _SEQUENTIAL:
        print(f'{name}\t(sequence data sets: {", ".join(_SEQUENCE_DATA)})')
    return 0


# ----------------------------------------------------------------------------
def _ks(text: str):
    try:
        ks = tuple(int(k) for k in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers, got '{text}'"
        ) from None
    if not ks or min(ks) <= 0:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers, got '{text}'")
    return ks


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog='pyg-recsys',
        description='Graph-based recommendation on PyTorch Geometric.')
    p.add_argument('--version', action='version', version=__version__)
    sub = p.add_subparsers(dest='command', required=True)

    def device_arg(q):
        q.add_argument('--device', default='auto',
                       help="auto (CUDA if available), cpu, cuda or cuda:N "
                       "(default: auto)")

    t = sub.add_parser('train', help='train a model and report its metrics')
    t.add_argument('model', help='a registered model (see `pyg-recsys '
                   'models`): lightgcn, dccf, sheaf4rec, gte, '
                   'bayes-lightgcn, bgcf, mf, simplex, ultragcn, mostpop; on '
                   'sequences: gru-user, '
                   'lstm-user; on impressions: click-dnn')
    src = t.add_mutually_exclusive_group(required=True)
    src.add_argument('--dataset', help='a named data set (see `pyg-recsys '
                     'datasets`)')
    src.add_argument('--data', help='your own data: a CSV/TSV file with a '
                     'header, or a folder with LightGCN-format train.txt and '
                     'test.txt')
    t.add_argument('--root', default=None,
                   help='directory holding <dataset>/ (default: '
                   '$PYG_RECSYS_DATA, else the cache directory)')
    t.add_argument('--user-col', default='user',
                   help="--data: the user column (default: user)")
    t.add_argument('--item-col', default='item',
                   help="--data: the item column (default: item)")
    t.add_argument('--rating-col', help='--data: a rating column')
    t.add_argument('--min-rating', type=float,
                   help='--data: keep rows rated at least this')
    t.add_argument('--time-col', help='--data: a numeric time column')
    t.add_argument('--sep', help="--data: the delimiter (default: tab for "
                   ".tsv, else comma)")
    t.add_argument('--split', default=None,
                   help='split protocol: random (default), temporal, loo; '
                   'ml-100k also cold-start')
    t.add_argument('--data-seed', type=int, default=0,
                   help='seed of the data split (default 0)')
    t.add_argument('--recipe', default='default')
    t.add_argument('--epochs', type=positive_int)
    t.add_argument('--batch-size', type=positive_int)
    t.add_argument('--steps-per-epoch', type=positive_int,
                   help='mini-batches per epoch (default: one pass over the '
                        'training interactions)')
    t.add_argument('--lr', type=positive_float)
    t.add_argument('--lr-schedule', dest='lr_schedule',
                   choices=['constant', 'cosine', 'step'])
    t.add_argument('--lr-milestones', type=positive_int, nargs='+',
                   help="with --lr-schedule step: the epochs after which the "
                   'learning rate is multiplied by --lr-decay')
    t.add_argument('--lr-decay', type=positive_float,
                   help='with --lr-schedule step: the factor of each drop '
                   '(default 0.1)')
    t.add_argument('--embedding-decay', type=nonneg_float,
                   help='L2 on whole embedding tables at every step (Adam '
                   "weight decay on them; SimpleX's embedding_regularizer)")
    t.add_argument('--lambda-reg', type=nonneg_float)
    t.add_argument('--reg-scaling', choices=['lightgcn', 'dccf', 'pyg',
                                              'bgcf'])
    t.add_argument('--sampler', choices=['per_user', 'per_interaction'])
    t.add_argument('--num-negatives', type=positive_int,
                   help='negatives (or, with dns, candidates) per positive')
    t.add_argument('--negative-sampling', choices=['uniform', 'dns'])
    t.add_argument('--shared-negatives', action='store_true', default=None,
                   help='draw --num-negatives negatives per mini-batch, '
                   'shared by all its positives (one matrix product)')
    t.add_argument('--exclude-positives', action='store_true', default=None,
                   help="with --shared-negatives: leave a user's training "
                   'items out of that user\'s shared negatives')
    t.add_argument('--loss', choices=['bpr', 'ccl', 'softmax'],
                   help='ranking loss of the embedding models: bpr, ccl '
                   "(SimpleX's cosine contrastive loss) or softmax "
                   '(sampled softmax); default: the recipe\'s, else bpr')
    t.add_argument('--margin', type=float,
                   help='ccl: cosine margin on the negatives (default 0.9)')
    t.add_argument('--negative-weight', type=nonneg_float,
                   help='ccl: weight of the mean negative term (default: '
                   'the terms summed)')
    t.add_argument('--temperature', type=positive_float,
                   help='softmax: temperature (default 1)')
    t.add_argument('--num-neighbors', type=int, nargs='+', metavar='K',
                   help='mini-batches on sampled subgraphs: neighbours drawn '
                   'per node, one count per layer (-1: all), e.g. 10 10 10')
    t.add_argument('--dim', type=positive_int, help='embedding size')
    t.add_argument('--layers', type=count, help='propagation layers')
    b = t.add_argument_group('bayes-lightgcn, bgcf (sampled graphs)')
    b.add_argument('--generator', choices=['node_copy', 'peco'],
                   help="graph generator (default: the recipe's; peco for "
                        "bayes-lightgcn, node_copy for bgcf)")
    b.add_argument('--num-samples', type=positive_int,
                   help='sampled graphs (bgcf: passes) averaged at inference')
    b.add_argument('--resample-every', type=positive_int,
                   help='optimiser steps per sampled training graph '
                   '(default: one epoch)')
    eps = b.add_mutually_exclusive_group()
    eps.add_argument('--keep-prob', type=nonneg_float,
                     help="BGCF's epsilon: the probability that a user keeps "
                          "its own items")
    eps.add_argument('--replace-prob', type=nonneg_float,
                     help="the probability that a user's items are replaced "
                          "(1 - epsilon; default 0.1 for bayes-lightgcn)")
    b.add_argument('--top-k', type=positive_int,
                   help='similar users per user')
    b.add_argument('--alpha', type=nonneg_float,
                   help='PECO: weight of item concurrence')
    b.add_argument('--beta', type=float, help='PECO: item-degree exponent')
    b.add_argument('--item-top-k', type=positive_int,
                   help='PECO: co-occurring items per item')
    q = t.add_argument_group('gru-user, lstm-user (sequences)')
    q.add_argument('--hidden-dim', type=positive_int, help='RNN state size')
    q.add_argument('--dropout', type=nonneg_float,
                   help='dropout on the item vectors read')
    q.add_argument('--item-vectors', default=None,
                   help='learned (default), item2vec, lightgcn or '
                   'transition')
    q.add_argument('--freeze', action='store_true',
                   help='keep given item vectors fixed')
    q.add_argument('--residual', choices=['last', 'mean'],
                   help="add the last item's vector (or the mean of those "
                   "read) to the user vector")
    q.add_argument('--max-len', type=positive_int,
                   help='history length read (default 50)')
    q.add_argument('--horizon', type=positive_int,
                   help='ml-100k: events per future window (default 10)')
    q.add_argument('--context', action='store_true',
                   help='ml-100k: read rating, skip bit, time gap, hour, '
                   'weekday')
    q.add_argument('--history', choices=['mask', 'zero', 'keep'],
                   help='history items in ranking: mask (default), zero '
                   '(S3-Rec/ICLRec codes) or keep (RecBole)')
    x = t.add_argument_group('text-zero-shot, text-align, text-fusion, '
                             'text-lightgcn (item text: mind-reclm, ml-100k)')
    x.add_argument('--encoder', choices=['minilm', 'hashing'],
                   help='text encoder (default: minilm, the packaged '
                   'all-MiniLM-L6-v2)')
    x.add_argument('--backbone', choices=['mf', 'lightgcn'],
                   help='text-fusion: the CF backbone (default mf)')
    x.add_argument('--text-bias', action='store_true',
                   help='text-fusion: add an item bias computed from text')
    t.add_argument('--protocol', default='full',
                   choices=['full', 'reclm-zero-shot', 'reclm-full-shot'],
                   help="test evaluation: full ranking (default), or RecLM's "
                   "zero-shot (only items new at test time, no masking) or "
                   "full-shot (items of the test split, training masked)")
    t.add_argument('--negative-pool', choices=['all', 'train'],
                   help='negatives from all items or only those with '
                   'training interactions (for cold-start items)')
    t.add_argument('--eval-every', type=positive_int)
    t.add_argument('--patience', type=count)
    t.add_argument('--monitor', help="e.g. 'ndcg@10'")
    t.add_argument('--select', choices=['valid', 'last', 'test'])
    t.add_argument('--ks', type=_ks, help="cut-offs, e.g. '10,20'")
    t.add_argument('--seed', type=int)
    t.add_argument('--threads', type=positive_int)
    t.add_argument('--device', default=None,
                   help="auto (CUDA if available; the default), cpu, cuda or "
                   "cuda:N")
    t.add_argument('--out', help='directory for checkpoint, log and curve')
    t.add_argument('--resume', action='store_true',
                   help='continue from OUT/checkpoint.pt if present')
    t.add_argument('--no-progress', action='store_true')
    t.add_argument('--json', action='store_true',
                   help='also print the report as JSON')
    t.add_argument('--ablation', action='store_true',
                   help='click-dnn: also train it without the sequence, '
                   'without the CF features, and logistic regression')
    t.set_defaults(func=cmd_train)

    e = sub.add_parser('evaluate', help='evaluate a checkpoint')
    e.add_argument('--checkpoint', required=True)
    e.add_argument('--splits', nargs='+', default=['valid', 'test'],
                   choices=['train', 'valid', 'test'])
    device_arg(e)
    e.add_argument('--json', action='store_true')
    e.set_defaults(func=cmd_evaluate)

    r = sub.add_parser('recommend', help='top-k items for some users, in '
                       'raw ids')
    r.add_argument('--checkpoint', required=True)
    r.add_argument('--users', required=True,
                   help="comma-separated raw user ids")
    r.add_argument('-k', '--k', type=positive_int, default=10)
    device_arg(r)
    r.add_argument('--json', action='store_true')
    r.set_defaults(func=cmd_recommend)

    x = sub.add_parser('export', help='write user and item embeddings with '
                       'their raw ids')
    x.add_argument('--checkpoint', required=True)
    x.add_argument('--out', required=True, help='output directory')
    x.add_argument('--format', choices=['npz', 'parquet'], default='npz',
                   help='npz (NumPy: embeddings.npz) or parquet (users.parquet'
                   ' and items.parquet; needs pyarrow)')
    device_arg(x)
    x.set_defaults(func=cmd_export)

    d = sub.add_parser('datasets', help='list the named data sets')
    d.set_defaults(func=cmd_datasets)
    m = sub.add_parser('models', help='list the registered models')
    m.set_defaults(func=cmd_models)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except FloatingPointError as e:
        print(f'pyg-recsys: training diverged: {e}; the last checkpoint '
              f'(if --out was given) is kept', file=sys.stderr)
        return 1
    except (ValueError, TypeError, FileNotFoundError) as e:
        print(f'pyg-recsys: error: {e}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
