"""ICD synonym encoders compared on a dense-retrieval proxy of the dev protocol (category-level acc@1/@5).

400 test-group queries (held-out categories' Index paths and inclusion terms) against 9,414 descriptions (all
test-group billable codes + 5,000 others). Arguments: ``plainN`` (the backbone cut to N layers) or a model folder.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_icd_encoder.py plain6 plain3 assets/models/icd_encoder
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(names: list[str]) -> int:
    """Print the proxy accuracy of each encoder named."""
    import torch

    from engine.evaluation.icd_split import group_of, inclusion_terms, queries
    from engine.icd.alphabetic import read_index
    from engine.icd.dense import SynonymEncoder
    from engine.icd.tabular import read_tabular
    from engine.settings import Settings

    torch.set_num_threads(1)
    settings = Settings()
    tab = read_tabular()
    qs = queries(tab, read_index(settings.icd_index_path), inclusion_terms(tab), "test", limit=400)
    cands = [i for i in range(len(tab.codes)) if tab.billable[i] and not tab.extension[i]]
    test = [i for i in cands if group_of(tab.codes[i]) == "test"]
    rest = [i for i in cands if group_of(tab.codes[i]) != "test"]
    random.Random(1).shuffle(rest)
    pool = test + rest[:5000]
    texts = [tab.descriptions[i] for i in pool]
    print(len(qs), "queries", len(pool), "candidates", flush=True)
    for name in names:
        if name.startswith("plain"):
            enc = SynonymEncoder(None)
            enc.model.encoder.layer = enc.model.encoder.layer[: int(name[5:])]
        else:
            enc = SynonymEncoder(Path(name))
        t = time.time()
        top = np.argsort(-(enc.embed([q.text for q in qs]) @ enc.embed(texts).T), axis=1)[:, :5]
        got = [[tab.codes[pool[j]] for j in row] for row in top]
        c1 = np.mean([g[0][:3] == q.code[:3] for g, q in zip(got, qs, strict=True)])
        c5 = np.mean([any(c[:3] == q.code[:3] for c in g) for g, q in zip(got, qs, strict=True)])
        e1 = np.mean([g[0] == q.code for g, q in zip(got, qs, strict=True)])
        print(f"{name}: category acc@1 {c1:.3f} acc@5 {c5:.3f} exact@1 {e1:.3f}  ({time.time() - t:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
