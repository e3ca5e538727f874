"""Authentication: password hashing, access tokens, and the per-request check."""
