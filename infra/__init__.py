"""Pulumi components, one module per concern, composed by __main__.py."""
