"""Run a Python script, then print its own peak resident memory to stderr.

The kernel's VmHWM of this process's memory, not getrusage(): a child's ru_maxrss
also counts the high-water mark of the process it was forked from (the benchmark,
with its image cache), which says nothing about the tool measured.

    python bench/peak_rss.py manage.py download_urls ...
"""

import atexit
import os
import runpy
import sys


def _report() -> None:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                print(f"PEAK_RSS_KB {line.split()[1]}", file=sys.stderr, flush=True)


atexit.register(_report)
sys.argv = sys.argv[1:]
sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))  # as if it were run directly
runpy.run_path(sys.argv[0], run_name="__main__")
