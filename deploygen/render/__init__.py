"""Rendering: a planned deployment through the Jinja templates into a formatted deploy.py."""

from deploygen.render.output import output_path, writable_output_path
from deploygen.render.renderer import render_deployment, render_deployments

__all__ = ["output_path", "render_deployment", "render_deployments", "writable_output_path"]
