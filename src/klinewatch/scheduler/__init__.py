"""When things run; no business rules."""
