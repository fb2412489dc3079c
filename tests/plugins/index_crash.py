"""A plugin that kills the process building the usage index (tests/test_index_process.py).

Loaded through TTS_DOCTOR_PLUGINS=index_crash with this folder on PYTHONPATH. Every process
of a check loads the plugins; only the index process (doctor/usage.py `child`, started as
`python -c CODE INDEX_PATH SYS_PATH`) dies, the way a crash in the scan would end it:
without writing the index.
"""

from __future__ import annotations

import os
import sys

if (len(sys.argv) == 3 and sys.argv[0] == "-c"
        and os.path.basename(sys.argv[1]).startswith("tts-doctor-usage-")):
    sys.stderr.write("index_crash: the index process dies here\n")
    sys.stderr.flush()
    os._exit(7)
