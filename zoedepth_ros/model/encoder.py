"""BEiT trunk of MiDaS v3.1 at any input size, over timm's modules.

timm's ``Beit`` is used as a parameter container (its key names match the released
checkpoints); the forward pass is ours because timm 1.x asserts a fixed input size and
resizes the relative-position table differently from MiDaS, whose numbers the released
weights were trained with.
"""

from __future__ import annotations

from functools import partial
from typing import cast

import torch
import torch.nn.functional as F
from timm.models.beit import Attention, Beit, Block, gen_relative_position_index
from torch import nn

from zoedepth_ros.model.config import BackboneConfig


def resize_relative_position_table(table: torch.Tensor, stored_window: int,
                                   grid: tuple[int, int]) -> torch.Tensor:
    """Relative-position bias table for a token ``grid`` (MiDaS scheme).

    Args:
        table: ((2w-1)^2 + 3, heads) stored table for a square ``stored_window`` w.
        grid: (grid_h, grid_w) token grid of the current input.

    Returns:
        ((2 grid_h - 1)(2 grid_w - 1) + 3, heads). Upstream quirk kept for the weights: the
        (2w-1)^2 part is resized bilinearly with align_corners=False, the 3 CLS rows are kept.
    """
    side = 2 * stored_window - 1
    new_h, new_w = 2 * grid[0] - 1, 2 * grid[1] - 1
    if (new_h, new_w) == (side, side):
        return table
    heads = table.shape[1]
    sub = table[:side * side].reshape(1, side, side, heads).permute(0, 3, 1, 2)
    sub = F.interpolate(sub, size=(new_h, new_w), mode='bilinear', align_corners=False)
    sub = sub.permute(0, 2, 3, 1).reshape(new_h * new_w, heads)
    return torch.cat([sub, table[side * side:]])


class ProjectReadout(nn.Module):
    """MiDaS "project" readout: [patch token, CLS token] -> Linear(2D, D) -> GELU."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.project = nn.Sequential(nn.Linear(2 * dim, dim), nn.GELU())

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, 1 + N, D) tokens (CLS first) -> (B, N, D).

        Linear([p, c]) = W_p p + (W_c c + b): the CLS half is computed once per image instead
        of once per patch (half the FLOPs, no (B, N, 2D) concatenation), same values.
        """
        first, activation = self.project
        linear = cast(nn.Linear, first)
        dim = tokens.shape[-1]
        cls = F.linear(tokens[:, :1], linear.weight[:, dim:], linear.bias)
        return activation(F.linear(tokens[:, 1:], linear.weight[:, :dim]) + cls)


class BeitEncoder(nn.Module):
    """BEiT trunk + readouts: image -> four (B, D, H/16, W/16) token maps.

    Attributes:
        backbone: timm ``Beit`` (parameters only; its forward is not used).
        readout: one ProjectReadout per hooked block.
    """

    def __init__(self, cfg: BackboneConfig, sdpa: bool = True) -> None:
        super().__init__()
        self.cfg = cfg
        self.sdpa = sdpa
        self.backbone = Beit(
            img_size=cfg.img_size, patch_size=cfg.patch_size, embed_dim=cfg.embed_dim,
            depth=cfg.depth, num_heads=cfg.num_heads, mlp_ratio=cfg.mlp_ratio,
            num_classes=cfg.num_classes, use_abs_pos_emb=False, use_rel_pos_bias=True,
            init_values=0.1,
            # timm annotates norm_layer as a class but calls it, so a partial works
            norm_layer=cast('type[nn.Module]', partial(nn.LayerNorm, eps=cfg.layer_norm_eps)))
        self.readout = nn.ModuleList(ProjectReadout(cfg.embed_dim) for _ in cfg.hooks)
        self._index_cache: dict[tuple[int, int, str], torch.Tensor] = {}
        self._bias_cache: dict[tuple[int, int, int, str, torch.dtype],
                               tuple[int, torch.Tensor]] = {}

    def reset_buffers(self) -> None:
        """Refill timm's constant (non-persistent) buffers after uninitialised allocation."""
        window = self.cfg.img_size // self.cfg.patch_size
        index = gen_relative_position_index((window, window))
        with torch.no_grad():
            for block in self.backbone.blocks:
                attn = cast(Block, block).attn
                # timm registers both as buffers; mypy sees only its `= None` branch
                cast(torch.Tensor, attn.k_bias).zero_()
                cast(torch.Tensor, attn.relative_position_index).copy_(index)

    def block_attention(self, block: int) -> Attention:
        """timm's attention module of ``block`` (torch types ModuleList items as Module)."""
        return cast(Block, self.backbone.blocks[block]).attn

    def train(self, mode: bool = True) -> BeitEncoder:
        self._bias_cache.clear()
        return super().train(mode)

    def _relative_index(self, grid: tuple[int, int], device: torch.device) -> torch.Tensor:
        key = (grid[0], grid[1], str(device))
        if key not in self._index_cache:
            self._index_cache[key] = gen_relative_position_index(grid).to(device)
        return self._index_cache[key]

    def relative_position_bias(self, block: int, grid: tuple[int, int],
                               dtype: torch.dtype) -> torch.Tensor:
        """(heads, N, N) additive attention bias of ``block`` for a token grid.

        Cached per grid size in eval mode (weights frozen); recomputed in training. An entry
        remembers the table's version counter, so loading new weights in place refreshes it.
        """
        table = self.block_attention(block).relative_position_bias_table
        key = (block, grid[0], grid[1], str(table.device), dtype)
        cached = self._bias_cache.get(key)
        # Inference tensors (a model copied under inference_mode) have no version counter.
        version = 0 if table.is_inference() else table._version
        if cached is not None and cached[0] == version and not self.training:
            return cached[1]
        resized = resize_relative_position_table(table, self.cfg.img_size // self.cfg.patch_size,
                                                 grid)
        index = self._relative_index(grid, table.device)
        n = grid[0] * grid[1] + 1
        bias = resized[index.view(-1)].view(n, n, -1).permute(2, 0, 1).contiguous().to(dtype)
        if not self.training and not torch.is_grad_enabled():
            self._bias_cache[key] = (version, bias)
        return bias

    def _attention(self, block: int, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        attn = self.block_attention(block)
        batch, tokens, dim = x.shape
        qkv_bias = torch.cat([attn.q_bias, torch.zeros_like(attn.v_bias), attn.v_bias])
        qkv = F.linear(x, attn.qkv.weight, qkv_bias)
        qkv = qkv.reshape(batch, tokens, 3, attn.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        bias = self.relative_position_bias(block, grid, q.dtype).unsqueeze(0)
        if self.sdpa:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=attn.scale)
        else:
            logits = (q * attn.scale) @ k.transpose(-2, -1) + bias
            out = logits.softmax(dim=-1) @ v
        return attn.proj(out.transpose(1, 2).reshape(batch, tokens, dim))

    def forward_tokens(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Normalised image (B, 3, H, W), H and W multiples of 16 -> hooked token sequences.

        Returns:
            One (B, 1 + H/16 * W/16, D) tensor per hook (CLS first, patches row-major),
            taken after both residual adds of the hooked block.
        """
        patch = self.cfg.patch_size
        grid = (x.shape[-2] // patch, x.shape[-1] // patch)
        tokens = self.backbone.patch_embed.proj(x).flatten(2).transpose(1, 2)
        cls = self.backbone.cls_token.expand(x.shape[0], -1, -1)
        tokens = torch.cat([cls, tokens], dim=1)
        hooked = []
        last = max(self.cfg.hooks)
        for index, module in enumerate(self.backbone.blocks):
            blk = cast(Block, module)
            tokens = tokens + blk.gamma_1 * self._attention(index, blk.norm1(tokens), grid)
            tokens = tokens + blk.gamma_2 * blk.mlp(blk.norm2(tokens))
            if index in self.cfg.hooks:
                hooked.append(tokens)
            if index == last:
                break
        return hooked

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Normalised image (B, 3, H, W) -> four (B, D, H/16, W/16) readout maps."""
        grid = (x.shape[-2] // self.cfg.patch_size, x.shape[-1] // self.cfg.patch_size)
        maps = []
        for readout, tokens in zip(self.readout, self.forward_tokens(x)):
            features = readout(tokens).transpose(1, 2)
            maps.append(features.unflatten(2, grid))
        return maps
