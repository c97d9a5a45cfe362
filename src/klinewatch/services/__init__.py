"""Use cases. A service owns the transaction; it calls the domain, storage and exchanges."""
