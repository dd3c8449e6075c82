"""gRPC wire protocol: the .proto contract, payload codec, framing and the coordinator client."""
