"""Renderers: read an Analysis, return text or a rich renderable; never print."""
