"""Memory and Redis caches behind one interface."""
