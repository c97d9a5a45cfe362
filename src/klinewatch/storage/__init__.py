"""Storage: the only package that imports SQLAlchemy. Repositories never commit; the
service that opened the session owns the transaction."""
