"""FastSecure redis plugin."""
