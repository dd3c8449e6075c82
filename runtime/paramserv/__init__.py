"""Parameter-server core, independent of transport: server policies, data partitioning, worker loop."""
