"""FastSecure session plugin."""
