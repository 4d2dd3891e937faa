"""A test-only plugin that misbehaves on purpose: ``testeeg`` data, with faults chosen by
environment variables (read in the worker, so they reach spawned processes).

``BADEEG_BUG=S02``    label_windows divides by zero for subject S02 (a plugin bug)
``BADEEG_EXIT=S02``   read_raw calls sys.exit(3) for subject S02
``BADEEG_KILL=S03``   read_raw kills its own process with SIGKILL for subject S03 ...
``BADEEG_ONCE=PATH``  ... only while PATH does not exist (it is created just before)
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from sd_testeeg import TestEEG

from sd_core import hookimpl


def _hit(var: str, subject: str) -> bool:
    return subject in os.environ.get(var, "").split(",")


class BadEEG(TestEEG):
    name = "badeeg"

    def read_raw(self, recording, options):
        sid = recording.path.parent.name
        if _hit("BADEEG_EXIT", sid):
            sys.exit(3)
        if _hit("BADEEG_KILL", sid):
            once = os.environ.get("BADEEG_ONCE")
            if not once or not Path(once).exists():
                if once:
                    Path(once).touch()
                os.kill(os.getpid(), signal.SIGKILL)
        return super().read_raw(recording, options)

    def label_windows(self, recording, spans, options):
        if _hit("BADEEG_BUG", recording.path.parent.name):
            return [{"event": 1 // 0} for _ in spans]
        return super().label_windows(recording, spans, options)


@hookimpl
def sd_datasets():
    return [BadEEG()]
