"""FastSecure sqlalchemy plugin."""
