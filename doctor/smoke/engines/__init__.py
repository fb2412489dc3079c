"""Smoke engines: one module each, behind the Engine protocol."""
