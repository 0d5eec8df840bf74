"""FastSecure jwt plugin."""
