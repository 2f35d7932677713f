"""Proxmox VE: one QEMU VM or LXC container per service through the PVE API."""

from extensions.servers.proxmox.extension import Proxmox

__all__ = ["Proxmox"]
