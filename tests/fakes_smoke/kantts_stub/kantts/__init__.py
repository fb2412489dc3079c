"""Stub of KAN-TTS for the names ModelScope imports (see ../README.md): not the real library."""

STUB = True
