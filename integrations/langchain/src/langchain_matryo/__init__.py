"""Placeholder: filled by its adapter issue."""
