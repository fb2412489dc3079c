"""Test doubles for `tts-doctor smoke`: callables, and small fakes of libraries that cannot
run here (ModelScope's TTS pipeline, IndexTTS-2), with their public call shapes only."""
