#!/usr/bin/python3
"""k-means against scikit-learn on UCI skin segmentation (245,057 x 3).

Both sides get the same rows. With the same initial centroids mlpipe must end
at scikit-learn's Lloyd inertia within 1e-6 relative and give the same labels;
with k-means++ and n_init 10 its inertia must be within 1% of scikit-learn's
best of 10; silhouette, Calinski-Harabasz and Davies-Bouldin on the same
labels must equal scikit-learn's within 1e-9. Prints PASS/FAIL lines.
"""
import gzip
import io
import json
import os
import sys

import numpy as np
import psycopg2
from sklearn.cluster import KMeans
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

DATA = os.path.join(os.environ.get("MLPIPE_DATA", "../shared/data"),
                    "uci_skin_segmentation", "Skin_NonSkin.txt.gz")
failures = 0


def check(ok, what):
    global failures
    print(("PASS " if ok else "FAIL ") + what, flush=True)
    failures += 0 if ok else 1


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


def main():
    raw = gzip.open(DATA, "rb").read()
    X_all = np.loadtxt(io.BytesIO(raw), delimiter="\t", dtype=np.float64)
    X = X_all[:, :3].copy()
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SET mlpipe.progress = off")
    cur.execute("DROP TABLE IF EXISTS peer_skin; DROP TABLE IF EXISTS peer_skin_small")
    cur.execute("CREATE TABLE peer_skin (id int, b float8, g float8, r float8, class int)")
    buf = io.StringIO()
    for i, row in enumerate(X_all):
        buf.write("%d\t%d\t%d\t%d\t%d\n" % (i, row[0], row[1], row[2], row[3]))
    buf.seek(0)
    cur.copy_expert("COPY peer_skin FROM STDIN", buf)
    cur.execute("SELECT count(*) FROM peer_skin")
    check(cur.fetchone()[0] == len(X), "skin: %d rows loaded" % len(X))

    def train(model, params, source="peer_skin"):
        cur.execute("SELECT version, metrics FROM mlpipe.train(%s, 'kmeans', %s, "
                    "features => ARRAY['b','g','r'], params => %s)",
                    (model, source, json.dumps(params)))
        return cur.fetchone()

    def labels(model, source="peer_skin"):
        cur.execute("SELECT mlpipe.predict(%%s, ARRAY[b, g, r])::int FROM %s ORDER BY id" % source,
                    (model,))
        return np.array([r[0] for r in cur.fetchall()])

    rng = np.random.RandomState(0)
    for k in (2, 4, 8):
        centers = X[rng.choice(len(X), k, replace=False)]
        while len(np.unique(centers, axis=0)) < k:
            centers = X[rng.choice(len(X), k, replace=False)]
        sk = KMeans(n_clusters=k, init=centers, n_init=1, algorithm="lloyd",
                    max_iter=300, tol=1e-4).fit(X)
        name = "peer_skin_given_%d" % k
        _, m = train(name, {"k": k, "init": "given", "centroids": centers.tolist(),
                            "max_iter": 300, "tol": 1e-4, "sample_size": 2000})
        check(rel(m["inertia"], sk.inertia_) <= 1e-6,
              "skin k=%d given init: inertia mlpipe %.10g sklearn %.10g (rel %.2e), iterations %s vs %d"
              % (k, m["inertia"], sk.inertia_, rel(m["inertia"], sk.inertia_), m["iterations"], sk.n_iter_))
        agree = float(np.mean(labels(name) == sk.labels_))
        check(agree >= 0.9999, "skin k=%d given init: labels agree with sklearn on %.6f of rows" % (k, agree))

    for k in (3, 5):
        sk = KMeans(n_clusters=k, init="k-means++", n_init=10, random_state=0).fit(X)
        _, m = train("peer_skin_pp_%d" % k, {"k": k, "n_init": 10, "seed": 0, "sample_size": 2000})
        ratio = m["inertia"] / sk.inertia_
        check(ratio <= 1.01, "skin k=%d k-means++ n_init=10: inertia mlpipe/sklearn = %.6f (<= 1.01)" % (k, ratio))

    # Exact clustering metrics on a 4,084-row subset (silhouette is O(n^2)).
    cur.execute("CREATE TABLE peer_skin_small AS SELECT * FROM peer_skin WHERE id % 60 = 0")
    Xs = X[::60]
    centers = Xs[[0, len(Xs) // 2, len(Xs) - 1]]
    sk = KMeans(n_clusters=3, init=centers, n_init=1, algorithm="lloyd").fit(Xs)
    _, m = train("peer_skin_small", {"k": 3, "init": "given", "centroids": centers.tolist(),
                                     "sample_size": 100000}, source="peer_skin_small")
    lab = labels("peer_skin_small", "peer_skin_small")
    check(np.array_equal(lab, sk.labels_), "skin subset: labels equal sklearn's")
    for name, fn in (("silhouette", silhouette_score), ("calinski_harabasz", calinski_harabasz_score),
                     ("davies_bouldin", davies_bouldin_score)):
        ref = fn(Xs, sk.labels_)
        check(rel(m[name], ref) <= 1e-9, "skin subset: %s mlpipe %.12g sklearn %.12g (rel %.1e)"
              % (name, m[name], ref, rel(m[name], ref)))

    cur.execute("DROP TABLE peer_skin; DROP TABLE peer_skin_small")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
