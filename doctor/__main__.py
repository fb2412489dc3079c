"""`python -m tts_doctor` is `tts-doctor`."""

from tts_doctor.cli import main

if __name__ == "__main__":
    main()
