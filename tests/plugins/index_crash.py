"""A plugin that kills the process building the usage index (tests/test_index_process.py).

Loaded through TTS_DOCTOR_PLUGINS=index_crash with this folder on PYTHONPATH. Every process
of a check loads the plugins; only the index process (doctor/usage.py `child`, started as
`python -c CODE PIPE_FD INDEX_PATH SYS_PATH`, the index file in a tts-doctor-usage-* folder)
dies, the way a crash in the scan would end it: without writing the index.
"""

from __future__ import annotations

import os
import sys

if (len(sys.argv) == 4 and sys.argv[0] == "-c"
        and os.path.basename(os.path.dirname(sys.argv[2])).startswith("tts-doctor-usage-")):
    sys.stderr.write("index_crash: the index process dies here\n")
    sys.stderr.flush()
    os._exit(7)
