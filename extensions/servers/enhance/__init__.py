"""Enhance control panel: websites as subscriptions of customer organisations."""

from extensions.servers.enhance.extension import Enhance

__all__ = ["Enhance"]
