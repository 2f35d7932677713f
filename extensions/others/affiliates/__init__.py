"""Affiliates: referral rewards, signups and order attributions as events (no external provider)."""

from extensions.others.affiliates.extension import Affiliates

__all__ = ["Affiliates"]
