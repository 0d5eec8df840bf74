"""One module per named provider, each with its real endpoints as overridable defaults."""
