"""The HTTP service: one FastAPI app mounting each domain's router."""
