"""The rules of the catalog: validation, accounts, folders, roles and models; no gRPC, no SQL."""
