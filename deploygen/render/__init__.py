"""Rendering: a planned deployment through the Jinja templates into a formatted, atomic deploy.py."""

from deploygen.render.renderer import render_deployment, render_deployments, write_atomic

__all__ = ["render_deployment", "render_deployments", "write_atomic"]
