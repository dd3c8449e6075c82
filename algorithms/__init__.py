"""Algorithms written once against the matrix API."""
