"""Entry point module."""
