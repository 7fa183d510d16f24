"""Sandboxed plugin runtime (QuickJS). Not built yet."""
