"""After warming, the loaded models and index are exempt from cyclic garbage collection (engine.pipeline).

Runs in a subprocess: freezing is process-wide, and the test process should keep its own collector state.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CODE = """
import gc, json, weakref
from engine.pipeline import ANALYSIS_STAGES, freeze_loaded_objects, load_pipeline

p = load_pipeline(device="cpu")
p.warm(ANALYSIS_STAGES)
frozen = gc.get_freeze_count()
left = len(gc.get_objects())  # tracked and not frozen
class Node:
    pass
a, b = Node(), Node()
a.other, b.other = b, a  # a reference cycle, alive at the next freeze
ref = weakref.ref(a)
freeze_loaded_objects()
del a, b  # now garbage that only the cyclic collector can reclaim
freeze_loaded_objects()
cycle_freed = ref() is None
result = p.analyze("Patient denies chest pain. History of hypertension on metformin.")
print(json.dumps({"frozen": frozen, "left": left, "cycle_freed": cycle_freed, "entities": len(result.entities)}))
"""


def test_warm_freezes_the_loaded_objects_and_a_later_freeze_reclaims_dropped_cycles() -> None:
    proc = subprocess.run([sys.executable, "-c", CODE], cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["frozen"] > 100_000  # the models and the ICD index
    assert out["left"] < out["frozen"] // 10
    assert out["cycle_freed"]
    assert out["entities"] > 0
