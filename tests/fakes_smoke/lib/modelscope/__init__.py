"""A fake of ModelScope's public TTS call shapes (see ../README.md)."""

__version__ = "0.0.0+fake"
