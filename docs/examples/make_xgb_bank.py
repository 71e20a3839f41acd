#!/usr/bin/python3
"""make_xgb_bank.py OUT.json: trains the small XGBoost model that
docs/explain.md imports (UCI bank marketing, bank-full.csv.gz: y from the
seven numeric columns of docs/examples/load_bank.sh; binary:logistic,
20 rounds of depth 3) and saves it with Booster.save_model. Needs Debian's
python3-xgboost; MLPIPE_DATA points at the data sets."""
import gzip
import os
import sys

import numpy as np
import xgboost as xgb

COLS = ["age", "balance", "day", "duration", "campaign", "pdays", "previous"]
path = os.path.join(os.environ.get("MLPIPE_DATA", "../shared/data"), "uci_bank_marketing", "bank-full.csv.gz")
lines = gzip.open(path, "rt").read().replace('"', "").splitlines()
head = lines[0].split(";")
rows = [line.split(";") for line in lines[1:] if line]
X = np.array([[float(r[head.index(c)]) for c in COLS] for r in rows])
y = np.array([1 if r[head.index("y")] == "yes" else 0 for r in rows])
dm = xgb.DMatrix(X, label=y, feature_names=COLS, nthread=1)
booster = xgb.train({"objective": "binary:logistic", "max_depth": 3, "eta": 0.3, "nthread": 1,
                     "seed": 1}, dm, 20)
booster.save_model(sys.argv[1])
