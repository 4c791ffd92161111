"""The edges: MongoDB, Redis, the broker, storage."""
