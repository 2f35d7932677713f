"""Affiliates: referral rewards and signups as events (no external provider)."""

from extensions.others.affiliates.extension import Affiliates

__all__ = ["Affiliates"]
