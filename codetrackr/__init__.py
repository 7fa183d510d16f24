"""The composition root: settings, wiring of adapters, and the command-line interface."""
