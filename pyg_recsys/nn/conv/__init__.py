from pyg_recsys.nn.conv.intent_conv import IntentConv, IntentConvOutput
from pyg_recsys.nn.conv.light_conv import LightConv

__all__ = ['LightConv', 'IntentConv', 'IntentConvOutput']
