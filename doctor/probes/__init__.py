"""The probe catalogue. Importing this package registers every probe (cheaply: each probe
imports its heavy modules inside its own body)."""

from doctor.probes import packages, python, torch  # noqa: F401
