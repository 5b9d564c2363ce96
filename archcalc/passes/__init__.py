"""Passes: small pure functions over a LayerGraph returning one result per node."""
