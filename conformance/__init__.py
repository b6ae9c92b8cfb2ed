"""Conformance layer: joins the model and the kernel through traces."""
