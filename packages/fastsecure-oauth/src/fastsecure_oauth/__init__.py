"""FastSecure oauth plugin."""
