"""fedla's runtime: wire protocol, worker daemon, kernels.

Installed as ``fedla.runtime``. Nothing here imports the user API in ``fedla``.
"""
