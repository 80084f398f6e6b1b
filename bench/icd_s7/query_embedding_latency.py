"""Query-embedding latency of the plain MiniLM cut to 6, 3 and 2 layers, one torch thread (issue 18, session 7).

    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python bench/icd_s7/query_embedding_latency.py
"""

import time

import numpy as np
import torch

from engine.evaluation.icd import DEFAULT_DEV, read_dev
from engine.icd.dense import SynonymEncoder

torch.set_num_threads(1)
ms = [p for p, _, _ in read_dev(DEFAULT_DEV)][:300]
for layers in (6, 3, 2):
    enc = SynonymEncoder(None, layers=layers)
    for m in ms[:20]:
        enc.embed([m])
    t = []
    for m in ms:
        t0 = time.perf_counter()
        enc.embed([m])
        t.append((time.perf_counter() - t0) * 1000)
    print(f"layers {layers}: p50 {np.percentile(t, 50):.2f} ms p95 {np.percentile(t, 95):.2f} ms", flush=True)
