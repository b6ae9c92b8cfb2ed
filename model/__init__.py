"""Declarative transition model of the lash runtime kernel."""
