"""`tts-doctor smoke`: load a model and synthesize under a memory profiler."""
