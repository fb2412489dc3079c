"""`python -m doctor` is `tts-doctor`."""

from doctor.cli import main

if __name__ == "__main__":
    main()
