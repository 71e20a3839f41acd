#!/usr/bin/python3
"""The name forms of predict keep resolved references per session (issue #13):
the next statement after an alias moves, in this session or another, must
score with the new version; an uncommitted or rolled-back move must not be
seen by others. Two sessions, prepared statements as pgbench runs them.

Also (issue #12): two identical trainings give the identical profile and
identical drift figures; and (issue #11) the bytea form, whose decoded model
is keyed by the artifact's length and header, scores each of two
same-length artifacts alternating row by row with its own model.
Prints PASS/FAIL lines; connects with the PG* environment variables.
"""
import sys

import psycopg2

failures = 0
X = "ARRAY[5.0, 5.0]::float8[]"


def check(ok, what):
    global failures
    print(("PASS " if ok else "FAIL ") + what, flush=True)
    failures += 0 if ok else 1


def one(cur, sql, args=None):
    cur.execute(sql, args)
    return cur.fetchone()[0]


def main():
    a = psycopg2.connect("")
    a.autocommit = True
    b = psycopg2.connect("")
    b.autocommit = True
    ca, cb = a.cursor(), b.cursor()
    ca.execute("SET mlpipe.progress = off")
    ca.execute("DROP SCHEMA IF EXISTS peer_refcache CASCADE; CREATE SCHEMA peer_refcache")
    for m in ("peer_rc", "peer_rc_p", "peer_rc_k"):
        ca.execute("SELECT count(*) FROM mlpipe.model_versions WHERE model = %s", (m,))
        if ca.fetchone()[0]:
            sys.exit("model %s exists: run this in a fresh database" % m)
    ca.execute("CREATE TABLE peer_refcache.t AS SELECT i AS id, ARRAY[(i % 10)::float8, (i % 7)::float8] AS x, "
               "(i % 10)::float8 AS y FROM generate_series(1, 2000) i")
    # Two versions that predict differently for X: v1 regresses y, v2 a constant.
    v1 = one(ca, "SELECT version FROM mlpipe.train('peer_rc', 'gbt', 'peer_refcache.t', 'y', NULL, "
                 "'{\"n_estimators\": 5, \"exclude\": [\"id\"]}')")
    v2 = one(ca, "SELECT version FROM mlpipe.train('peer_rc', 'gbt', "
                 "'SELECT id, x, 1.0::float8 AS y FROM peer_refcache.t', 'y', NULL, "
                 "'{\"n_estimators\": 5, \"exclude\": [\"id\"]}')")
    p1 = one(ca, "SELECT mlpipe.predict('peer_rc@%d', %s)" % (v1, X))
    p2 = one(ca, "SELECT mlpipe.predict('peer_rc@%d', %s)" % (v2, X))
    check(p1 != p2, "the two versions predict differently (%r, %r)" % (p1, p2))
    ca.execute("SELECT mlpipe.promote('peer_rc', %s)", (v1,))
    cb.execute("PREPARE p AS SELECT mlpipe.predict('peer_rc', %s)" % X)
    ca.execute("PREPARE p AS SELECT mlpipe.predict('peer_rc', %s)" % X)

    check(one(cb, "EXECUTE p") == p1 and one(cb, "EXECUTE p") == p1, "B scores with production = v1")
    ca.execute("SELECT mlpipe.promote('peer_rc', %s)", (v2,))
    check(one(cb, "EXECUTE p") == p2, "B's next statement after A's committed promote scores with v2")

    # Uncommitted move in A: B keeps v2; A sees its own move at its next statement.
    a.autocommit = False
    ca.execute("SELECT mlpipe.promote('peer_rc', %s)", (v1,))
    check(one(ca, "EXECUTE p") == p1, "A sees its own uncommitted promote at the next statement")
    check(one(cb, "EXECUTE p") == p2, "B does not see A's uncommitted promote")
    a.rollback()
    check(one(ca, "EXECUTE p") == p2, "after A's ROLLBACK, A scores with v2 again")
    check(one(cb, "EXECUTE p") == p2, "after A's ROLLBACK, B still scores with v2")
    ca.execute("SELECT mlpipe.rollback('peer_rc')")
    a.commit()
    a.autocommit = True
    check(one(cb, "EXECUTE p") == p1, "B sees mlpipe.rollback (back to v1) at its next statement")

    # B inside a READ COMMITTED transaction: the next statement sees a committed move.
    b.autocommit = False
    check(one(cb, "EXECUTE p") == p1, "B in a transaction scores with v1")
    ca.execute("SELECT mlpipe.promote('peer_rc', %s)", (v2,))
    check(one(cb, "EXECUTE p") == p2, "B's next statement in the same transaction sees the promote")
    b.commit()
    b.autocommit = True

    # A deleted version: the cached reference must not outlive it.
    v3 = one(ca, "SELECT version FROM mlpipe.train('peer_rc', 'gbt', 'peer_refcache.t', 'y', NULL, "
                 "'{\"n_estimators\": 5, \"exclude\": [\"id\"], \"seed\": 3}')")
    cb.execute("PREPARE p3 AS SELECT mlpipe.predict('peer_rc@%d', %s)" % (v3, X))
    cb.execute("EXECUTE p3")
    ca.execute("DELETE FROM mlpipe.model_versions WHERE model = 'peer_rc' AND version = %s", (v3,))
    try:
        cb.execute("EXECUTE p3")
        check(False, "B scoring a deleted version fails")
    except psycopg2.Error as e:
        check(e.pgcode == "42704", "B scoring a deleted version fails with 42704 (%s)" % e.pgerror.splitlines()[0])

    # Issue #12: two identical trainings, identical profiles and drift figures.
    ra = one(ca, "SELECT version FROM mlpipe.train('peer_rc_p', 'gbt', 'peer_refcache.t', 'y', NULL, "
                 "'{\"n_estimators\": 2, \"exclude\": [\"id\"], \"profile_sample\": 500}')")
    # (another model name: the same one would make the second a run of the first's version)
    rb = one(ca, "SELECT version FROM mlpipe.train('peer_rc_p2', 'gbt', 'peer_refcache.t', 'y', NULL, "
                 "'{\"n_estimators\": 2, \"exclude\": [\"id\"], \"profile_sample\": 500}')")
    prof_a = one(ca, "SELECT mlpipe.profile('peer_rc_p@%d')::text" % ra)
    prof_b = one(ca, "SELECT mlpipe.profile('peer_rc_p2@%d')::text" % rb)
    check(prof_a == prof_b and '"rows": 500' in prof_a,
          "two identical trainings store the identical profile (a 500-row sample of 2000)")
    ca.execute("SELECT feature, psi, null_rate_train FROM mlpipe.drift('peer_rc_p@%d', "
               "'SELECT * FROM peer_refcache.t WHERE id > 500') ORDER BY feature" % ra)
    da = ca.fetchall()
    ca.execute("SELECT feature, psi, null_rate_train FROM mlpipe.drift('peer_rc_p2@%d', "
               "'SELECT * FROM peer_refcache.t WHERE id > 500') ORDER BY feature" % rb)
    db = ca.fetchall()
    check(da == db and len(da) == 2, "and identical drift figures: %r" % (da,))

    # The bytea form keys its decoded model by length + header (CRC32C): two
    # artifacts of the same length alternating row by row must each be used.
    ka = one(ca, "SELECT version FROM mlpipe.train('peer_rc_k', 'kmeans', 'SELECT x FROM peer_refcache.t', "
                 "params => '{\"k\": 3, \"seed\": 1}')")
    kb = one(ca, "SELECT version FROM mlpipe.train('peer_rc_k', 'kmeans', 'SELECT x FROM peer_refcache.t', "
                 "params => '{\"k\": 3, \"seed\": 2, \"init\": \"random\"}')")
    ca.execute("CREATE TABLE peer_refcache.arts AS SELECT 0 AS k, mlpipe.artifact('peer_rc_k@%d') AS a "
               "UNION ALL SELECT 1, mlpipe.artifact('peer_rc_k@%d')" % (ka, kb))
    ca.execute("SELECT count(DISTINCT length(a)), count(DISTINCT a) FROM peer_refcache.arts")
    check(ca.fetchone() == (1, 2), "two different k-means artifacts of the same length")
    ca.execute("SELECT count(*), count(*) FILTER (WHERE mlpipe.predict(r.a, t.x) IS DISTINCT FROM "
               "CASE r.k WHEN 0 THEN mlpipe.predict('peer_rc_k@%d', t.x) ELSE mlpipe.predict('peer_rc_k@%d', t.x) END), "
               "count(DISTINCT (r.k, mlpipe.predict(r.a, t.x))) "
               "FROM peer_refcache.t t JOIN peer_refcache.arts r ON r.k = t.id %% 2" % (ka, kb))
    n, bad, distinct = ca.fetchone()
    check(n == 2000 and bad == 0, "bytea predict with alternating artifacts equals the name form on every row "
          "(%d rows, %d mismatches)" % (n, bad))

    ca.execute("DROP SCHEMA peer_refcache CASCADE")
    a.close()
    b.close()


if __name__ == "__main__":
    main()
    sys.exit(1 if failures else 0)
