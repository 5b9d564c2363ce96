"""Channel shuffle (ShuffleNet, Zhang et al. 2018, Sec. 3.1; ShuffleNetV2, Ma et al. 2018, Fig. 3):
the channels, seen as `groups` rows of C/groups, read column by column. It moves channels only:
no parameters, no operations, and every position keeps its receptive field."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archcalc.layers.base import Arg, Args, LayerArgError, LayerType, Saved, Shaped, register
from archcalc.layers.imported import Emit, TorchCall
from archcalc.tensor import Shape


@register
class ChannelShuffle(LayerType):
    name = "channel-shuffle"
    aliases = ("channelshuffle", "shuffle")
    patterns = (r"channel-shuffle(?P<groups>\d+)",)
    options = {"g": "groups"}
    args = (Arg("groups", "int", required=True, aliases=("g",), minimum=1),)
    needs_layout = "channels"
    summary = ("ShuffleNet's channel shuffle: C channels as groups × C/groups, transposed and flattened back "
               "(torch's nn.ChannelShuffle; torchvision's view/transpose); positions and sizes unchanged")
    example = "channel-shuffle(groups=2), channel-shuffle2, shuffle/g3"
    torch_modules = ("torch.nn.ChannelShuffle",)
    torch_functions = ("torch.channel_shuffle", "torch.nn.functional.channel_shuffle")

    def from_torch(self, call: TorchCall) -> Emit | None:
        groups = call.module.groups if call.module is not None else call.arg(1, "groups")
        return Emit(f"channel-shuffle(groups={groups})") if isinstance(groups, int) else None

    def shape(self, a: Args, inputs: Sequence[Shape]) -> Shaped:
        shape = inputs[0]
        if len(shape) < 2:
            raise LayerArgError(f"channel-shuffle needs channels and positions (C×H×W, C×L, …), got "
                                f"{'×'.join(map(str, shape))}")
        if shape[0] % a["groups"]:
            raise LayerArgError(f"groups={a['groups']} must divide the input channels ({shape[0]})")
        return Shaped(shape)

    def saved(self, a: Args, inputs: Sequence[Shape], out: Shape, input_grad: Sequence[bool],
              weight_grad: bool) -> tuple[Saved, ...]:
        """Nothing: a permutation of the channels (measured)."""
        return ()

    def torch_module(self, a: Args, inputs: Sequence[Shape], out: Shape) -> Any:
        from torch import nn

        return nn.ChannelShuffle(a["groups"])
