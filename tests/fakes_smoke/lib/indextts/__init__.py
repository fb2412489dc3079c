"""A fake of IndexTTS-2's public call shapes (see ../README.md)."""
