-- Issue #10 item 1: every function of schema mlpipe pins its search_path
-- (SET search_path = pg_catalog, pg_temp in proconfig) or is on one of the
-- allow-lists below, so that nothing it runs resolves through the caller's
-- search_path. Both queries list offenders and must return no rows.
--
-- Allowed without a pin:
-- * C functions. They run no SQL, except the by-name scoring forms
--   (predict.c, predict_support.c: SPI strings call only mlpipe_internal._resolve_key
--   and mlpipe_internal._artifact_at, schema-qualified, with exactly typed
--   parameters; predict_group.c: mlpipe.grouped_models and
--   mlpipe_internal._group_model, likewise) and _fit / _fit_groups / _source_columns / _source_sql (source.c,
--   source_describe.c: they read the caller's source, wrapped as
--   SELECT * FROM (<source>) AS mlpipe_source, which calls nothing), and
--   _fill_table (predict_fill.c: it runs the scoring SELECT predict_table
--   built, as predict_table's own EXECUTE did, under the caller's
--   search_path; that statement qualifies everything it calls).
--   A pin on the per-row scoring functions would also cost a GUC
--   save/restore per row.
-- * Aggregates: they cannot carry SET; their support functions are C.
-- * The functions that resolve the caller's relation names or run the
--   caller's source queries (docs/security.md, "search_path"). They must
--   resolve THOSE under the caller's search_path, so they stay unpinned;
--   everything they call or emit is schema-qualified or exactly typed (issue #10
--   item 1; test/torture/issue10_search_path.py must PASS). Remove a
--   name here when it gets pinned or fully qualified.
WITH source_readers(proname) AS (VALUES
    ('train'), ('_train'), ('_as_of_source'), ('_check_data'),
    ('drift'), ('_drift_figures'), ('_feature_array_expr'), ('predict_table'), ('evaluate'),
    ('_eval_from'), ('_eval_metrics'), ('cross_validate'), ('_cross_validate'), ('search'), ('_search'),
    ('create_pipeline'), ('_pipeline_ident'), ('_pipeline_from'), ('_pipeline_features'),
    ('_pipeline_step'), ('run_pipeline'), ('_citus_target'), ('_train_groups'), ('_failing_key'), ('explain_global'),
    ('tune_threshold'), ('_tune_threshold'))
SELECT p.oid::regprocedure AS unpinned
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.pronamespace IN ('mlpipe'::regnamespace, 'mlpipe_internal'::regnamespace)
   AND p.prokind <> 'a'
   AND l.lanname <> 'c'
   AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)
   AND p.proname NOT IN (SELECT proname FROM source_readers)
 ORDER BY 1::text;
-- The source-reader list holds no stale names (each is an unpinned function).
WITH source_readers(proname) AS (VALUES
    ('train'), ('_train'), ('_as_of_source'), ('_check_data'),
    ('drift'), ('_drift_figures'), ('_feature_array_expr'), ('predict_table'), ('evaluate'),
    ('_eval_from'), ('_eval_metrics'), ('cross_validate'), ('_cross_validate'), ('search'), ('_search'),
    ('create_pipeline'), ('_pipeline_ident'), ('_pipeline_from'), ('_pipeline_features'),
    ('_pipeline_step'), ('run_pipeline'), ('_citus_target'), ('_train_groups'), ('_failing_key'), ('explain_global'),
    ('tune_threshold'), ('_tune_threshold'))
SELECT r.proname AS stale_allow_list_entry
  FROM source_readers r
 WHERE NOT EXISTS (SELECT 1 FROM pg_proc p
                    WHERE p.pronamespace IN ('mlpipe'::regnamespace, 'mlpipe_internal'::regnamespace) AND p.proname = r.proname
                      AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false))
 ORDER BY 1;
