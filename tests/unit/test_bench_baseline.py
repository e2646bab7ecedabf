"""The throughput benchmark's ``cspulse-base`` runs the other checkout's code, not this one's.

``python -m`` puts the working directory first on ``sys.path``: a child started from
this tree imports this tree's ``streams`` whatever ``PYTHONPATH`` says.
"""

import sys
from pathlib import Path

from bench.throughput import Child, base_env, baseline_worker


def test_the_baseline_worker_imports_from_the_baseline_tree(tmp_path: Path) -> None:
    tree = tmp_path / "checkout"
    (tree / "streams").mkdir(parents=True)
    (tree / "streams" / "__init__.py").write_text("")
    (tree / "streams" / "__main__.py").write_text("import streams; print(streams.__file__)\n")
    child = Child("base", [sys.executable, "-m", "streams"], base_env(), tmp_path / "base.log")
    baseline_worker(child, tree)
    child.start()
    assert child.proc is not None
    assert child.proc.wait(60) == 0, child.tail()
    assert child.tail().strip() == str(tree / "streams" / "__init__.py")
