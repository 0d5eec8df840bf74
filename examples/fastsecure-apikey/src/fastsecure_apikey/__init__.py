"""Example API-key plugin."""
