from pyg_recsys.train.checkpoint import load_checkpoint, save_checkpoint
from pyg_recsys.train.config import TrainConfig, build_model, get_recipe
from pyg_recsys.train.trainer import Trainer, seed_everything

__all__ = ['Trainer', 'TrainConfig', 'build_model', 'get_recipe',
           'save_checkpoint', 'load_checkpoint', 'seed_everything']
