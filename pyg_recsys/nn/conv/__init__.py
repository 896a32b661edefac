from pyg_recsys.nn.conv.behavior_conv import BehaviorConv
from pyg_recsys.nn.conv.bgcf_conv import BGCFAttentionConv, BGCFMeanConv
from pyg_recsys.nn.conv.intent_conv import IntentConv, IntentConvOutput
from pyg_recsys.nn.conv.light_conv import LightConv
from pyg_recsys.nn.conv.sheaf_conv import SheafConv, SheafStructure

__all__ = ['LightConv', 'IntentConv', 'IntentConvOutput', 'SheafConv',
           'SheafStructure', 'BGCFMeanConv', 'BGCFAttentionConv', 'BehaviorConv']
