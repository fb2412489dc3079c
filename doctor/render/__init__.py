"""Renderers: turn a redacted report dict into text, JSON, JUnit XML or GitHub annotations.

Rendering never probes: each renderer reads only the dict `Report.to_dict()` made.
"""
