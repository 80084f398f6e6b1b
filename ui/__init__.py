"""Streamlit app support: pure helpers (rendering, ingest, charts) and the cached engine/database resources.

Everything here except :mod:`ui.resources` is free of Streamlit state so it can be unit tested directly.
"""
