"""Convoy panel: one Proxmox VPS per service through the Application API."""

from extensions.servers.convoy.extension import Convoy

__all__ = ["Convoy"]
