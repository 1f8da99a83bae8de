"""Code that runs inside the container: real modules here, included verbatim in every deploy.py.

Each module imports only the standard library at its top (third-party packages inside the function
that needs them, since the download image and the SGLang image differ), and reads no constant of the
rendered file: the per-profile values arrive as arguments from the thin Modal wrappers around them.
"""
