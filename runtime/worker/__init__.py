"""The worker daemon: gRPC servicer, request handler, tenant scopes and data reading."""
