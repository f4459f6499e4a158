"""`python -m cnnkit.lab.bench --child KIND PARAMS-JSON`: one measurement in a fresh process.

`common.run_child` starts these; people run the benchmarks with `python -m cnnkit bench`.
(Not through cnnkit.cli from here: the CLI imports this package, and lab never imports it back.)
"""

from __future__ import annotations

import sys

from cnnkit.lab.bench import CHILDREN
from cnnkit.lab.bench.common import child_main

USAGE = ("usage: python -m cnnkit.lab.bench --child KIND PARAMS-JSON   (KIND: "
         + ", ".join(CHILDREN) + ")\nthe benchmarks themselves: python -m cnnkit bench [which…] (--help)")

if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        sys.exit(child_main(sys.argv[2:], CHILDREN))
    print(USAGE, file=sys.stderr)
    sys.exit(2)
