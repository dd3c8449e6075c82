"""Optimizers as pure update functions with state: each module exposes init and update."""
