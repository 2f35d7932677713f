"""Server (provisioning) integrations."""
