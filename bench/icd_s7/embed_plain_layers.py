"""Embed every index string with the plain MiniLM cut to N layers, into the vector cache (issue 18, session 7).

    PYTHONPATH=. OMP_NUM_THREADS=2 .venv/bin/python bench/icd_s7/embed_plain_layers.py 3
"""
import sys
import time

import torch

from engine.icd.dense import SynonymEncoder, dense_strings, embed_cached
from engine.icd.store import load_or_build
from engine.settings import Settings

torch.set_num_threads(2)
s = Settings(device="cpu")
data, _, notice = load_or_build(s)
enc = SynonymEncoder(None, layers=int(sys.argv[1]))
strings, owners = dense_strings(data)
print(len(strings), enc.version, flush=True)
t = time.perf_counter()
embed_cached(s, enc, strings, progress=True)
print("all in", time.perf_counter() - t, flush=True)
