-- Pipelines: config validation (paths, hints), versions, runs in
-- subtransactions, failures, hostile names, schedules without pg_cron here.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS t_pipes CASCADE;
CREATE SCHEMA t_pipes;
SET search_path = t_pipes, public;
RESET client_min_messages;
SET mlpipe.progress = off;

-- Three clear groups of points, and readings of two sensors over two days.
CREATE TABLE pts AS
SELECT i AS id, (i % 3) * 10 + (i % 7) * 0.1 AS x, (i % 3) * 5 + (i % 5) * 0.1 AS y,
       CASE i % 3 WHEN 0 THEN 'a' WHEN 1 THEN 'b' ELSE 'c' END AS grp
  FROM generate_series(1, 300) i;
CREATE TABLE readings AS
SELECT s AS sensor, timestamptz '2024-01-01 00:00+00' + make_interval(hours => h) AS ts,
       (s * 10 + h % 24)::float8 AS temp
  FROM generate_series(1, 2) s, generate_series(0, 47) h;
CREATE TABLE victim (x int);

-- A valid pipeline: its version, the same config again (no new version), a change.
SELECT mlpipe.create_pipeline('pts', '{"steps": [{"kind": "train", "model": "pts_km", "algorithm": "kmeans",
    "source": "pts", "params": {"k": 3, "exclude": ["id", "grp"]}}]}');
SELECT mlpipe.create_pipeline('pts', '{"steps": [{"kind": "train", "model": "pts_km", "algorithm": "kmeans",
    "source": "pts", "params": {"k": 3, "exclude": ["id", "grp"]}}]}');
SELECT mlpipe.create_pipeline('pts', '{"description": "points", "steps": [{"kind": "train", "model": "pts_km",
    "algorithm": "kmeans", "source": "pts", "params": {"k": 3, "exclude": ["id", "grp"]}}]}'::jsonb);
SELECT name, version, description, schedule FROM mlpipe.pipelines;
SELECT name, version, config ? 'description' AS described FROM mlpipe.pipeline_versions ORDER BY version;

-- Bad configs: every error names the path in the config.
\set VERBOSITY terse
SELECT mlpipe.create_pipeline('bad', '{"steps": [{"kind": "features", "source": "readings", "ts": "ts",
    "values": ["temp"], "into": "f"}, {"kind": "train", "model": "m", "algoritm": "kmeans", "source": "f"}]}');
SELECT mlpipe.create_pipeline('bad', '{"steps": [{"kind": "trian", "model": "m"}]}');
SELECT mlpipe.create_pipeline('bad', '{"steps": [{"model": "m"}]}');
SELECT mlpipe.create_pipeline('bad', '{"steps": [{"kind": "train", "model": "m", "source": "pts"}]}');
SELECT mlpipe.create_pipeline('bad', '{"steps": [{"kind": "train", "model": "m", "algorithm": "kmeens", "source": "pts"}]}');
SELECT mlpipe.create_pipeline('bad', '{"steps": [{"kind": "train", "model": "m@2", "algorithm": "kmeans", "source": "pts"}]}');
SELECT mlpipe.create_pipeline('bad', '{"steps": [{"kind": "train", "model": "m", "algorithm": "kmeans", "source": "nowhere"}]}');
SELECT mlpipe.create_pipeline('bad', '{"steps": [{"kind": "train", "model": "m", "algorithm": "kmeans", "source": "pts", "params": [1]}]}');
SELECT mlpipe.create_pipeline('bad', '{"steps": [{"kind": "features", "source": "readings", "ts": "ts", "values": "temp", "into": "f"}]}');
SELECT mlpipe.create_pipeline('bad', '{"steps": [{"kind": "features", "source": "readings", "ts": "ts", "values": [], "into": "f"}]}');
SELECT mlpipe.create_pipeline('bad', '{"steps": [{"kind": "features", "source": "readings", "ts": "ts", "values": ["temp"], "into": "f", "period": "days"}]}');
SELECT mlpipe.create_pipeline('bad', '{"steps": [{"kind": "predict", "model": "m", "source": "pts", "into": "out", "key": "id", "mode": "upsret"}]}');
SELECT mlpipe.create_pipeline('bad', '{"steps": [{"kind": "search", "model": "m", "algorithm": "gbt", "source": "pts", "target": "grp", "space": {}, "folds": 1}]}');
SELECT mlpipe.create_pipeline('bad', '{"steps": [{"kind": "evaluate", "model": "m", "source": "pts", "into": "x"}]}');
SELECT mlpipe.create_pipeline('bad', '{"step": []}');
SELECT mlpipe.create_pipeline('bad', '{"steps": []}');
SELECT mlpipe.create_pipeline('bad', '{"steps": {}}');
SELECT mlpipe.create_pipeline('bad', '[]');
SELECT mlpipe.create_pipeline('bad', '{"steps": [');
SELECT mlpipe.create_pipeline('bad', '{"steps": [42]}');
SELECT mlpipe.create_pipeline('', '{"steps": []}');
-- Sources: one SELECT only; names must be names.
SELECT mlpipe.create_pipeline('bad', '{"steps": [{"kind": "evaluate", "model": "m", "source": "SELECT 1; DROP TABLE victim"}]}');
SELECT mlpipe.create_pipeline('bad', '{"steps": [{"kind": "evaluate", "model": "m", "source": "SELECT * INTO victim2 FROM pts"}]}');
SELECT mlpipe.create_pipeline('bad', '{"steps": [{"kind": "evaluate", "model": "m", "source": "WITH d AS (DELETE FROM victim RETURNING *) SELECT * FROM d"}]}');
SELECT mlpipe.create_pipeline('bad', '{"steps": [{"kind": "evaluate", "model": "m", "source": "SELECT FROM WHERE"}]}');
SELECT mlpipe.create_pipeline('bad', '{"steps": [{"kind": "evaluate", "model": "m", "source": "pts; DROP TABLE victim"}]}');
SELECT mlpipe.create_pipeline('bad', '{"steps": [{"kind": "predict", "model": "m", "source": "pts", "into": "a.b.c.d", "key": "id"}]}');
-- A step cannot read what a later step writes.
SELECT mlpipe.create_pipeline('bad', '{"steps": [{"kind": "evaluate", "model": "m", "source": "later"},
    {"kind": "features", "source": "readings", "ts": "ts", "values": ["temp"], "into": "later"}]}');
\set VERBOSITY default
\set SHOW_CONTEXT never
-- The hint suggests the key that was meant.
SELECT mlpipe.create_pipeline('bad', '{"steps": [{"kind": "train", "model": "m", "algorithm": "kmeans", "source": "pts", "gaet": {}}]}');
\set VERBOSITY terse
SELECT count(*) AS bad_pipelines FROM mlpipe.pipelines WHERE name = 'bad';

-- A run: features per sensor and day, then k-means on the new table (a
-- source written by an earlier step), each step a run under the pipeline run.
SELECT mlpipe.create_pipeline('sensors', '{"steps": [
    {"kind": "features", "source": "readings", "group_by": ["sensor"], "ts": "ts", "values": ["temp"],
     "period": "day", "stats": ["n", "mean", "max"], "into": "t_pipes.daily"},
    {"kind": "train", "model": "daily_km", "algorithm": "kmeans", "source": "daily",
     "params": {"k": 2, "exclude": ["sensor", "period_start"]}, "gate": {"metric": "silhouette", "min": 0.1}}]}');
SELECT mlpipe.run_pipeline('sensors') > 0 AS ran;
SELECT * FROM daily ORDER BY sensor, period_start;
SELECT r.kind, r.algorithm, r.status, r.rows, p.kind AS parent_kind
  FROM mlpipe.runs r LEFT JOIN mlpipe.runs p ON p.run_id = r.parent_run_id
 WHERE r.run_id >= (SELECT max(run_id) FROM mlpipe.runs WHERE kind = 'pipeline')
 ORDER BY r.run_id;
SELECT version, status FROM mlpipe.model_versions WHERE model = 'daily_km';
-- The next scheduled run, on unchanged data, reproduces that model: its
-- train run is recorded against version 1 and no version 2 piles up.
SELECT mlpipe.run_pipeline('sensors') > 0 AS ran_again;
SELECT (SELECT count(*) FROM mlpipe.model_versions WHERE model = 'daily_km') AS versions,
       (SELECT count(*) FROM mlpipe.runs WHERE model = 'daily_km' AND kind = 'train' AND version = 1) AS train_runs,
       (SELECT count(*) FROM mlpipe.alias_events WHERE model = 'daily_km') AS alias_events;

-- A failing step: logged with its error, the run failed, the earlier step's
-- model kept, the later step not run.
SELECT mlpipe.create_pipeline('breaks', '{"steps": [
    {"kind": "train", "model": "kept", "algorithm": "kmeans", "source": "pts", "params": {"k": 3, "exclude": ["id", "grp"]}},
    {"kind": "train", "model": "never", "algorithm": "gbt", "source": "pts", "target": "no_such_column"},
    {"kind": "train", "model": "never2", "algorithm": "kmeans", "source": "pts", "params": {"k": 2, "exclude": ["id", "grp"]}}]}');
SELECT mlpipe.run_pipeline('breaks') > 0 AS returned;
SELECT kind, status, rows, error, params->>'sqlstate' AS sqlstate FROM mlpipe.runs
 WHERE run_id >= (SELECT max(run_id) FROM mlpipe.runs WHERE kind = 'pipeline') AND kind LIKE 'pipeline%'
 ORDER BY run_id;
SELECT model, count(*) FROM mlpipe.model_versions WHERE model IN ('kept', 'never', 'never2') GROUP BY model;

-- Hostile names: quotes and semicolons are data, never SQL.
SELECT mlpipe.create_pipeline($$x'); DROP TABLE t_pipes.victim; --$$, '{"steps": [{"kind": "features",
    "source": "readings", "group_by": ["sensor"], "ts": "ts", "values": ["temp"], "stats": ["n"],
    "into": "\"odd; name\""}]}');
SELECT mlpipe.run_pipeline($$x'); DROP TABLE t_pipes.victim; --$$) > 0 AS ran;
SELECT * FROM "odd; name" ORDER BY sensor;
SELECT to_regclass('t_pipes.victim') IS NOT NULL AS victim_still_there;
SELECT status FROM mlpipe.runs WHERE kind = 'pipeline' ORDER BY run_id DESC LIMIT 1;

-- Unknown pipelines, schedules: pg_cron lives in another database of this
-- cluster (or is not preloaded), so schedule is 55000 with the command to run there.
SELECT mlpipe.run_pipeline('nope');
SELECT mlpipe.schedule('nope', '* * * * *');
SELECT mlpipe.schedule('pts', '');
SELECT mlpipe.schedule('pts', '* * * * *');
SELECT mlpipe.unschedule('pts');
\set VERBOSITY default
SELECT mlpipe.schedule($$x'); DROP TABLE t_pipes.victim; --$$, '0 21 * * *');
\set VERBOSITY terse

-- History is append-only; dropping keeps it, and a new pipeline of that name continues the versions.
DELETE FROM mlpipe.pipeline_versions;
SELECT mlpipe.drop_pipeline('pts');
SELECT mlpipe.drop_pipeline('pts');
SELECT mlpipe.create_pipeline('pts', '{"steps": [{"kind": "evaluate", "model": "pts_km", "source": "pts"}]}');
SELECT name, version FROM mlpipe.pipeline_versions WHERE name = 'pts' ORDER BY version;

-- Privileges: pipelines are for mlpipe_admin; mlpipe_reader reads the tables.
SET client_min_messages = warning;
DROP ROLE IF EXISTS t_pipes_reader;
CREATE ROLE t_pipes_reader IN ROLE mlpipe_reader;
RESET client_min_messages;
SET ROLE t_pipes_reader;
SELECT count(*) > 0 AS reads_pipelines FROM mlpipe.pipelines;
SELECT mlpipe.create_pipeline('sneaky', '{"steps": [{"kind": "evaluate", "model": "m", "source": "SELECT 1"}]}');
SELECT mlpipe.run_pipeline('sensors');
RESET ROLE;
DROP ROLE t_pipes_reader;
\set VERBOSITY default

SET client_min_messages = warning;
DROP SCHEMA t_pipes CASCADE;
