"""Flax Linen modules only: no training logic lives here."""

from gm.models.conv import ConvDecoder, ConvEncoder
from gm.models.layers import ConvTranspose

__all__ = ["ConvDecoder", "ConvEncoder", "ConvTranspose"]
