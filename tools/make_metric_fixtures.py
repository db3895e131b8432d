"""scikit-learn reference values for daa's metrics (run by hand, not by CI):
tests/fixtures/metrics.json holds score/label sets with many ties and sklearn's
roc_auc_score and log_loss on each.

    python tools/make_metric_fixtures.py   # needs numpy, scikit-learn
"""
import json
import pathlib

import numpy as np
from sklearn.metrics import log_loss, roc_auc_score

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "metrics.json"


def main():
    rng = np.random.default_rng(7)
    cases = []
    for n, levels, rate in [(50, 5, 0.3), (400, 11, 0.05), (1000, 1000, 0.02), (300, 2, 0.5)]:
        labels = (rng.random(n) < rate).astype(int)
        labels[0], labels[1] = 1, 0
        # Few distinct levels: heavy ties. Values are float32-exact (multiples of 1/1024).
        scores = np.round(rng.integers(0, levels, n) / max(levels - 1, 1) * 1024) / 1024
        scores = np.clip(scores * 0.98 + 0.01, 0, 1).astype(np.float32)
        cases.append({
            "scores": [float(s) for s in scores],
            "labels": [int(l) for l in labels],
            "auc": roc_auc_score(labels, scores),
            "log_loss": log_loss(labels, scores.astype(np.float64)),
        })
    OUT.write_text(json.dumps(cases) + "\n")


if __name__ == "__main__":
    main()
