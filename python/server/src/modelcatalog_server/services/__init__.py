"""gRPC adapters: one module per service, each unpacking requests and packing responses."""
