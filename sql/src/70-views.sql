--------------------------------------------------------------------------
-- 70-views: the registry as plain columns, for psql and BI tools that do
-- not read JSON (see docs/registry.md, "Views for BI tools").
--------------------------------------------------------------------------

-- Every version with its main metrics as columns (NULL where the task has
-- no such metric). Training metrics: on the test split where there is one.
CREATE VIEW mlpipe.version_metrics AS
SELECT v.model, v.version, v.algorithm, v.task, v.status,
       (a.version IS NOT NULL) AS in_production,
       v.created_at, v.created_by, v.training_rows, v.skipped_rows,
       (v.metrics->>'accuracy')::float8          AS accuracy,
       (v.metrics->>'precision_macro')::float8   AS precision_macro,
       (v.metrics->>'recall_macro')::float8      AS recall_macro,
       (v.metrics->>'f1_macro')::float8          AS f1_macro,
       (v.metrics->>'f1_weighted')::float8       AS f1_weighted,
       (v.metrics->>'roc_auc')::float8           AS roc_auc,
       (v.metrics->>'log_loss')::float8          AS log_loss,
       (v.metrics->>'rmse')::float8              AS rmse,
       (v.metrics->>'mae')::float8               AS mae,
       (v.metrics->>'mape')::float8              AS mape,
       (v.metrics->>'r2')::float8                AS r2,
       (v.metrics->>'silhouette')::float8        AS silhouette,
       (v.metrics->>'inertia')::float8           AS inertia,
       (v.metrics->>'davies_bouldin')::float8    AS davies_bouldin,
       (v.metrics->>'calinski_harabasz')::float8 AS calinski_harabasz,
       (v.metrics->>'training_seconds')::float8  AS training_seconds
  FROM mlpipe.model_versions v
  LEFT JOIN mlpipe.aliases a ON a.model = v.model AND a.version = v.version AND a.alias = 'production';
COMMENT ON VIEW mlpipe.version_metrics IS
    'Every model version with its main training metrics as columns (wide form, no JSON).';
REVOKE ALL ON mlpipe.version_metrics FROM PUBLIC;
GRANT SELECT ON mlpipe.version_metrics TO mlpipe_reader;

-- The version each model's production alias points to, with its metrics.
CREATE VIEW mlpipe.production_models AS
SELECT m.name AS model, a.version, vm.algorithm, vm.task, a.updated_at AS promoted_at,
       a.updated_by AS promoted_by, vm.created_at AS trained_at, vm.training_rows,
       vm.accuracy, vm.f1_macro, vm.roc_auc, vm.log_loss, vm.rmse, vm.mae, vm.r2,
       vm.silhouette, vm.inertia
  FROM mlpipe.models m
  JOIN mlpipe.aliases a ON a.model = m.name AND a.alias = 'production'
  JOIN mlpipe.version_metrics vm ON vm.model = a.model AND vm.version = a.version;
COMMENT ON VIEW mlpipe.production_models IS
    'One row per model with a production version: the version, when it was promoted and its main metrics as columns.';
REVOKE ALL ON mlpipe.production_models FROM PUBLIC;
GRANT SELECT ON mlpipe.production_models TO mlpipe_reader;

-- The confusion matrix of every mlpipe.evaluate run of a classifier, one
-- row per (actual, predicted) pair, zero counts included.
CREATE VIEW mlpipe.confusion_matrices AS
SELECT r.run_id, r.model, r.version, r.source, r.finished_at AS evaluated_at,
       act.label AS actual, pred.label AS predicted,
       (r.params->'confusion_matrix'->'matrix'->(act.i::int - 1)->>(pred.i::int - 1))::bigint AS count
  FROM mlpipe.runs r,
       jsonb_array_elements_text(r.params->'confusion_matrix'->'labels') WITH ORDINALITY AS act(label, i),
       jsonb_array_elements_text(r.params->'confusion_matrix'->'labels') WITH ORDINALITY AS pred(label, i)
 WHERE r.kind = 'evaluate' AND jsonb_typeof(r.params->'confusion_matrix') = 'object';
COMMENT ON VIEW mlpipe.confusion_matrices IS
    'The confusion matrix of each evaluate run of a classifier as rows (actual, predicted, count).';
REVOKE ALL ON mlpipe.confusion_matrices FROM PUBLIC;
GRANT SELECT ON mlpipe.confusion_matrices TO mlpipe_reader;

-- Every PSI measured (mlpipe.drift, predict_table, pipeline drift steps),
-- one row per run and feature, with its null rate.
CREATE VIEW mlpipe.drift_history AS
SELECT r.run_id, r.kind, r.model, r.version, r.source, r.finished_at AS measured_at,
       substr(p.metric, 5) AS feature, p.value AS psi, n.value AS null_rate
  FROM mlpipe.runs r
  JOIN mlpipe.metrics p ON p.run_id = r.run_id AND p.metric LIKE 'psi:%'
  LEFT JOIN mlpipe.metrics n ON n.run_id = r.run_id AND n.split = p.split
                            AND n.metric = 'null_rate:' || substr(p.metric, 5);
COMMENT ON VIEW mlpipe.drift_history IS
    'Every population stability index measured (drift, predict_table, pipeline drift steps): one row per run and feature.';
REVOKE ALL ON mlpipe.drift_history FROM PUBLIC;
GRANT SELECT ON mlpipe.drift_history TO mlpipe_reader;

-- pg_dump keeps the grouped models' and the training iterations' rows
-- (issue #14). Here, last, so that the
-- extension's table list has the order the upgrade scripts give it.
SELECT pg_catalog.pg_extension_config_dump('mlpipe.grouped_models', '');
SELECT pg_catalog.pg_extension_config_dump('mlpipe.model_groups', '');
SELECT pg_catalog.pg_extension_config_dump('mlpipe.training_iterations', '');
