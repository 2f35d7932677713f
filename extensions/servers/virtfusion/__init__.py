"""VirtFusion: virtual servers through the VirtFusion API v1."""

from extensions.servers.virtfusion.extension import VirtFusion

__all__ = ["VirtFusion"]
