"""Dashboard pages and static assets."""
