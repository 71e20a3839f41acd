"""issue10_cron.py: issue #10 items 2 and 3, schedules through pg_cron.

Runs in database `mlpipe`, the one the cluster's pg_cron serves
(cron.database_name), creating pg_cron and mlpipe there if missing; every
pipeline it makes is named torture_* and dropped at the end.
- item 2: a non-superuser member of mlpipe_admin schedules and unschedules
  its pipeline (today: 42501 from _cron_check / schema cron).
- item 3: two pipelines whose names are longer than 56 characters and share
  their first 60 get two distinct pg_cron jobs; unscheduling the first
  leaves the second's job; drop_pipeline leaves no orphan job."""
import psycopg2

import tlib

DB = "mlpipe"
ADMIN = "torture_cron_admin"
LONG1 = "torture_long_" + "p" * 50 + "_first"
LONG2 = "torture_long_" + "p" * 50 + "_second"
CFG = ('{"steps": [{"kind": "predict", "name": "p", "model": "torture_cron_m", "source": "public.torture_cron_t", '
       '"into": "public.torture_cron_out", "key": "id"}]}')


def jobs_for(cur, name):
    cur.execute("SELECT jobid, jobname FROM cron.job WHERE command = format('SELECT mlpipe.run_pipeline(%%L)', %s::text)",
                (name,))
    return cur.fetchall()


def cleanup(cur):
    cur.execute("RESET ROLE")
    cur.execute("SELECT name FROM mlpipe.pipelines WHERE name LIKE 'torture\\_%%'")
    for (n,) in cur.fetchall():
        try:
            cur.execute("SELECT mlpipe.drop_pipeline(%s)", (n,))
        except psycopg2.Error:
            pass
    cur.execute("SELECT cron.unschedule(jobid) FROM cron.job WHERE command LIKE '%%run_pipeline(''torture\\_%%'")


def main():
    c = tlib.connect(DB)
    cur = c.cursor()
    cur.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
    cur.execute("CREATE EXTENSION IF NOT EXISTS mlpipe")
    cur.execute("SET mlpipe.progress = off")
    cleanup(cur)
    cur.execute("DROP TABLE IF EXISTS public.torture_cron_t, public.torture_cron_out")
    cur.execute("CREATE TABLE public.torture_cron_t AS SELECT i AS id, i % 5 AS a, i % 3 AS b FROM generate_series(1, 50) i")
    cur.execute("SELECT 1 FROM mlpipe.train('torture_cron_m', 'kmeans', 'public.torture_cron_t', NULL, ARRAY['a','b'], '{\"k\": 2}')")
    cur.execute("DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%s') THEN "
                "CREATE ROLE %s LOGIN NOSUPERUSER; END IF; END$$" % (ADMIN, ADMIN))
    cur.execute("GRANT mlpipe_admin TO %s" % ADMIN)
    cur.execute("GRANT SELECT ON public.torture_cron_t TO %s" % ADMIN)
    cur.execute("GRANT CREATE ON SCHEMA public TO %s" % ADMIN)
    try:
        # item 2
        cur.execute("SET ROLE %s" % ADMIN)
        try:
            cur.execute("SELECT mlpipe.create_pipeline('torture_admin_p', %s::jsonb)", (CFG,))
            cur.execute("SELECT mlpipe.schedule('torture_admin_p', '0 3 * * *')")
            job = cur.fetchone()[0]
            cur.execute("SELECT mlpipe.unschedule('torture_admin_p')")
            removed = cur.fetchone()[0]
            tlib.result(job is not None and removed, "issue10 cron: a non-superuser admin schedules and unschedules",
                        "job %s, unschedule returned %s" % (job, removed),
                        )
        except psycopg2.Error as e:
            tlib.result(False, "issue10 cron: a non-superuser admin schedules and unschedules",
                        "%s %s" % (e.pgcode, (e.pgerror or "").splitlines()[0]),
                        )
        cur.execute("RESET ROLE")
        # item 3
        xf = "issue #10 item 3: long pipeline names collide in pg_cron job names"
        for n in (LONG1, LONG2):
            cur.execute("SELECT mlpipe.create_pipeline(%s, %s::jsonb)", (n, CFG))
            cur.execute("SELECT mlpipe.schedule(%s, '0 4 * * *')", (n,))
        j1, j2 = jobs_for(cur, LONG1), jobs_for(cur, LONG2)
        tlib.result(len(j1) == 1 and len(j2) == 1 and j1[0][1] != j2[0][1],
                    "issue10 cron: two long names sharing a prefix get two distinct jobs",
                    "jobs %s / %s" % (j1, j2))
        cur.execute("SELECT mlpipe.unschedule(%s)", (LONG1,))
        r = cur.fetchone()[0]
        tlib.result(r is True and not jobs_for(cur, LONG1) and len(jobs_for(cur, LONG2)) == 1,
                    "issue10 cron: unschedule of a long name removes its job and only its job",
                    "returned %s; jobs now %s / %s" % (r, jobs_for(cur, LONG1), jobs_for(cur, LONG2)))
        cur.execute("SELECT mlpipe.drop_pipeline(%s)", (LONG2,))
        left = jobs_for(cur, LONG2)
        tlib.result(not left, "issue10 cron: drop_pipeline of a long name leaves no orphan job",
                    "orphans %s" % left)
        cur.execute("SELECT mlpipe.create_pipeline(%s, %s::jsonb)", (LONG2, CFG))
        cur.execute("SELECT mlpipe.schedule(%s, '0 5 * * *')", (LONG2,))
        cur.execute("SELECT jobname FROM cron.job WHERE jobid = (SELECT cron_job_id FROM mlpipe.pipelines WHERE name = %s)",
                    (LONG2,))
        row = cur.fetchone()
        tlib.result(row is not None and len(row[0].encode()) <= 63 and row[0] != ("mlpipe:" + LONG2)[:63],
                    "issue10 cron: the job name of a long pipeline is short and unique (hash suffix)",
                    "job name %r" % (row,))
    finally:
        cleanup(cur)
        cur.execute("DROP TABLE IF EXISTS public.torture_cron_t, public.torture_cron_out")
        cur.execute("REVOKE CREATE ON SCHEMA public FROM %s" % ADMIN)
        c.close()
    tlib.finish()


if __name__ == "__main__":
    main()
