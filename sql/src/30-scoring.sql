--------------------------------------------------------------------------
-- 30-scoring: predict, predict_label, predict_proba (float8[] and row forms,
-- by name and by artifact), export, feature_importance, training profiles
-- and drift, data checks and data time travel (params.as_of); batch
-- scoring into tables (predict_table) is in 35-predict-table. See
-- docs/drift.md, docs/preprocessing.md and docs/time-travel.md.
--------------------------------------------------------------------------

CREATE FUNCTION mlpipe.predict(model_ref text, features float8[]) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_predict_ref'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe.predict(text, float8[]) IS
    'Scores one row: cluster number (0-based), class index or regression value, by model_ref (features as float8[]).';
REVOKE ALL ON FUNCTION mlpipe.predict(text, float8[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.predict(text, float8[]) TO mlpipe_scorer;

CREATE FUNCTION mlpipe.predict(model bytea, features float8[]) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_predict_bytea'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe.predict(bytea, float8[]) IS
    'Scores one row: cluster number (0-based), class index or regression value, by artifact (features as float8[]).';
REVOKE ALL ON FUNCTION mlpipe.predict(bytea, float8[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.predict(bytea, float8[]) TO mlpipe_scorer;

-- The artifact decoded into readable JSON (centroids, scaling, ...).
CREATE FUNCTION mlpipe.export(model bytea) RETURNS jsonb
AS 'MODULE_PATHNAME', 'mlpipe_export_bytea'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe.export(bytea) IS
    'The model as JSON (trees, centroids, preprocessing) for inspection or other tools, by artifact.';

CREATE FUNCTION mlpipe.export(model_ref text) RETURNS jsonb
LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
    SELECT jsonb_build_object('model', r.model, 'version', r.version)
           || mlpipe.export(mlpipe.artifact(model_ref))
      FROM mlpipe.resolve(model_ref) r
$$;
COMMENT ON FUNCTION mlpipe.export(text) IS
    'The model as JSON (trees, centroids, preprocessing) for inspection or other tools, by model_ref.';
REVOKE ALL ON FUNCTION mlpipe.export(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.export(text) TO mlpipe_reader;

-- The class label as trained (text), for classification models.
CREATE FUNCTION mlpipe.predict_label(model_ref text, features float8[]) RETURNS text
AS 'MODULE_PATHNAME', 'mlpipe_predict_label_ref'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe.predict_label(text, float8[]) IS
    'The predicted class label as it was in the training target (text), by model_ref (features as float8[]).';
REVOKE ALL ON FUNCTION mlpipe.predict_label(text, float8[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.predict_label(text, float8[]) TO mlpipe_scorer;

CREATE FUNCTION mlpipe.predict_label(model bytea, features float8[]) RETURNS text
AS 'MODULE_PATHNAME', 'mlpipe_predict_label_bytea'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe.predict_label(bytea, float8[]) IS
    'The predicted class label as it was in the training target (text), by artifact (features as float8[]).';
REVOKE ALL ON FUNCTION mlpipe.predict_label(bytea, float8[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.predict_label(bytea, float8[]) TO mlpipe_scorer;

-- One probability per class, in the order of mlpipe.classes(model_ref).
CREATE FUNCTION mlpipe.predict_proba(model_ref text, features float8[]) RETURNS float8[]
AS 'MODULE_PATHNAME', 'mlpipe_predict_proba_ref'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe.predict_proba(text, float8[]) IS
    'One probability per class, in the order of mlpipe.classes(model_ref), by model_ref (features as float8[]).';
REVOKE ALL ON FUNCTION mlpipe.predict_proba(text, float8[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.predict_proba(text, float8[]) TO mlpipe_scorer;

CREATE FUNCTION mlpipe.predict_proba(model bytea, features float8[]) RETURNS float8[]
AS 'MODULE_PATHNAME', 'mlpipe_predict_proba_bytea'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe.predict_proba(bytea, float8[]) IS
    'One probability per class, in the order of mlpipe.classes(model_ref), by artifact (features as float8[]).';
REVOKE ALL ON FUNCTION mlpipe.predict_proba(bytea, float8[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.predict_proba(bytea, float8[]) TO mlpipe_scorer;

CREATE FUNCTION mlpipe_internal._importance(model bytea) RETURNS float8[]
AS 'MODULE_PATHNAME', 'mlpipe_importance_bytea'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._importance(bytea) IS
    'Gain-based feature importance of a tree artifact, one value per feature.';

-- Normalised total gain per feature, largest first.
CREATE FUNCTION mlpipe.feature_importance(model_ref text)
RETURNS TABLE (feature text, importance float8)
LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
    SELECT f, i FROM unnest(mlpipe.features(model_ref), mlpipe_internal._importance(mlpipe.artifact(model_ref))) AS t(f, i)
     ORDER BY i DESC, f
$$;
COMMENT ON FUNCTION mlpipe.feature_importance(text) IS
    'Gain-based importance of each feature of a tree model (sums to 1).';
REVOKE ALL ON FUNCTION mlpipe.feature_importance(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.feature_importance(text) TO mlpipe_reader;

-- Preprocessing and row-form scoring (docs/preprocessing.md).
-- Row forms of predict, predict_label and predict_proba: the row's columns
-- are matched to the model's raw inputs by name (extra columns ignored),
-- once per statement and row type, and the stored preprocessing applied.
CREATE FUNCTION mlpipe.predict(model_ref text, "row" record) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_predict_row_ref'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe.predict(text, record) IS
    'Scores one row: cluster number (0-based), class index or regression value, by model_ref (row form: columns matched by name).';
REVOKE ALL ON FUNCTION mlpipe.predict(text, record) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.predict(text, record) TO mlpipe_scorer;

CREATE FUNCTION mlpipe.predict(model bytea, "row" record) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_predict_row_bytea'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe.predict(bytea, record) IS
    'Scores one row: cluster number (0-based), class index or regression value, by artifact (row form: columns matched by name).';
REVOKE ALL ON FUNCTION mlpipe.predict(bytea, record) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.predict(bytea, record) TO mlpipe_scorer;

CREATE FUNCTION mlpipe.predict_label(model_ref text, "row" record) RETURNS text
AS 'MODULE_PATHNAME', 'mlpipe_predict_label_row_ref'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe.predict_label(text, record) IS
    'The predicted class label as it was in the training target (text), by model_ref (row form: columns matched by name).';
REVOKE ALL ON FUNCTION mlpipe.predict_label(text, record) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.predict_label(text, record) TO mlpipe_scorer;

CREATE FUNCTION mlpipe.predict_label(model bytea, "row" record) RETURNS text
AS 'MODULE_PATHNAME', 'mlpipe_predict_label_row_bytea'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe.predict_label(bytea, record) IS
    'The predicted class label as it was in the training target (text), by artifact (row form: columns matched by name).';
REVOKE ALL ON FUNCTION mlpipe.predict_label(bytea, record) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.predict_label(bytea, record) TO mlpipe_scorer;

CREATE FUNCTION mlpipe.predict_proba(model_ref text, "row" record) RETURNS float8[]
AS 'MODULE_PATHNAME', 'mlpipe_predict_proba_row_ref'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe.predict_proba(text, record) IS
    'One probability per class, in the order of mlpipe.classes(model_ref), by model_ref (row form: columns matched by name).';
REVOKE ALL ON FUNCTION mlpipe.predict_proba(text, record) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.predict_proba(text, record) TO mlpipe_scorer;

CREATE FUNCTION mlpipe.predict_proba(model bytea, "row" record) RETURNS float8[]
AS 'MODULE_PATHNAME', 'mlpipe_predict_proba_row_bytea'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe.predict_proba(bytea, record) IS
    'One probability per class, in the order of mlpipe.classes(model_ref), by artifact (row form: columns matched by name).';
REVOKE ALL ON FUNCTION mlpipe.predict_proba(bytea, record) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.predict_proba(bytea, record) TO mlpipe_scorer;

-- Probabilities labelled with their classes: {"class": p, ...} from the
-- classes of a model (mlpipe.classes) and a proba array (predict_proba, or
-- the proba column of a predict_table target) in the same order. Pure, so
-- a query reads the classes once: mlpipe.proba_json((SELECT
-- mlpipe.classes('churn')), proba). For a binary model the positive class
-- is the second of the two (sorted order, like scikit-learn's classes_[1]).
CREATE FUNCTION mlpipe.proba_json(classes text[], proba float8[]) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF pg_catalog.cardinality(classes) <> pg_catalog.cardinality(proba) THEN
        RAISE EXCEPTION '% probabilities for % classes', pg_catalog.cardinality(proba), pg_catalog.cardinality(classes)
            USING ERRCODE = '22023', HINT = 'Pass mlpipe.classes() of the version that computed the probabilities (the model and version columns of a predict_table target).';
    END IF;
    RETURN (SELECT pg_catalog.jsonb_object_agg(c, p)
              FROM ROWS FROM (pg_catalog.unnest(classes), pg_catalog.unnest(proba)) u(c, p));
END $$;
COMMENT ON FUNCTION mlpipe.proba_json(text[], float8[]) IS
    'Class probabilities as a JSON object {class: probability}, from mlpipe.classes(model_ref) and a proba array.';
REVOKE ALL ON FUNCTION mlpipe.proba_json(text[], float8[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.proba_json(text[], float8[]) TO mlpipe_reader;

-- Anomaly detection with k-means models trained with params.contamination
-- (BigQuery's ML.DETECT_ANOMALIES for k-means; docs/kmeans.md): by name or
-- artifact, features as float8[] or a row matched by name.
CREATE FUNCTION mlpipe.anomaly_score(model_ref text, features float8[]) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_anomaly_score_ref'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe.anomaly_score(text, float8[]) IS
    'The normalised distance of a row to its nearest centroid (distance over the cluster''s root mean squared training distance), by model_ref (features as float8[]).';
REVOKE ALL ON FUNCTION mlpipe.anomaly_score(text, float8[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.anomaly_score(text, float8[]) TO mlpipe_scorer;

CREATE FUNCTION mlpipe.anomaly_score(model_ref text, "row" record) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_anomaly_score_row_ref'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe.anomaly_score(text, record) IS
    'The normalised distance of a row to its nearest centroid (distance over the cluster''s root mean squared training distance), by model_ref (row form: columns matched by name).';
REVOKE ALL ON FUNCTION mlpipe.anomaly_score(text, record) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.anomaly_score(text, record) TO mlpipe_scorer;

CREATE FUNCTION mlpipe.anomaly_score(model bytea, features float8[]) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_anomaly_score_bytea'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe.anomaly_score(bytea, float8[]) IS
    'The normalised distance of a row to its nearest centroid (distance over the cluster''s root mean squared training distance), by artifact (features as float8[]).';
REVOKE ALL ON FUNCTION mlpipe.anomaly_score(bytea, float8[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.anomaly_score(bytea, float8[]) TO mlpipe_scorer;

CREATE FUNCTION mlpipe.anomaly_score(model bytea, "row" record) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_anomaly_score_row_bytea'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe.anomaly_score(bytea, record) IS
    'The normalised distance of a row to its nearest centroid (distance over the cluster''s root mean squared training distance), by artifact (row form: columns matched by name).';
REVOKE ALL ON FUNCTION mlpipe.anomaly_score(bytea, record) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.anomaly_score(bytea, record) TO mlpipe_scorer;

CREATE FUNCTION mlpipe.is_anomaly(model_ref text, features float8[]) RETURNS boolean
AS 'MODULE_PATHNAME', 'mlpipe_is_anomaly_ref'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe.is_anomaly(text, float8[]) IS
    'Whether a row''s anomaly score is above the threshold stored at training (the (1 - contamination) quantile of the training scores), by model_ref (features as float8[]).';
REVOKE ALL ON FUNCTION mlpipe.is_anomaly(text, float8[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.is_anomaly(text, float8[]) TO mlpipe_scorer;

CREATE FUNCTION mlpipe.is_anomaly(model_ref text, "row" record) RETURNS boolean
AS 'MODULE_PATHNAME', 'mlpipe_is_anomaly_row_ref'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe.is_anomaly(text, record) IS
    'Whether a row''s anomaly score is above the threshold stored at training (the (1 - contamination) quantile of the training scores), by model_ref (row form: columns matched by name).';
REVOKE ALL ON FUNCTION mlpipe.is_anomaly(text, record) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.is_anomaly(text, record) TO mlpipe_scorer;

CREATE FUNCTION mlpipe.is_anomaly(model bytea, features float8[]) RETURNS boolean
AS 'MODULE_PATHNAME', 'mlpipe_is_anomaly_bytea'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe.is_anomaly(bytea, float8[]) IS
    'Whether a row''s anomaly score is above the threshold stored at training (the (1 - contamination) quantile of the training scores), by artifact (features as float8[]).';
REVOKE ALL ON FUNCTION mlpipe.is_anomaly(bytea, float8[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.is_anomaly(bytea, float8[]) TO mlpipe_scorer;

CREATE FUNCTION mlpipe.is_anomaly(model bytea, "row" record) RETURNS boolean
AS 'MODULE_PATHNAME', 'mlpipe_is_anomaly_row_bytea'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe.is_anomaly(bytea, record) IS
    'Whether a row''s anomaly score is above the threshold stored at training (the (1 - contamination) quantile of the training scores), by artifact (row form: columns matched by name).';
REVOKE ALL ON FUNCTION mlpipe.is_anomaly(bytea, record) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.is_anomaly(bytea, record) TO mlpipe_scorer;

-- A classifier's class index, label and probabilities for predict_table:
-- the same as predict, predict_label and predict_proba (float8[] forms), but
-- the three calls for a row share one evaluation (a per-backend memo of the
-- last row scored, src/pg/predict.c).
CREATE FUNCTION mlpipe_internal._score_class(model_ref text, features float8[]) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_score_class_ref'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._score_class(text, float8[]) IS
    'A classifier''s class index for predict_table (shares one evaluation with _score_label and _score_proba).';
REVOKE ALL ON FUNCTION mlpipe_internal._score_class(text, float8[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._score_class(text, float8[]) TO mlpipe_scorer;

CREATE FUNCTION mlpipe_internal._score_label(model_ref text, features float8[]) RETURNS text
AS 'MODULE_PATHNAME', 'mlpipe_score_label_ref'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._score_label(text, float8[]) IS
    'A classifier''s class label for predict_table (shares one evaluation with _score_class and _score_proba).';
REVOKE ALL ON FUNCTION mlpipe_internal._score_label(text, float8[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._score_label(text, float8[]) TO mlpipe_scorer;

CREATE FUNCTION mlpipe_internal._score_proba(model_ref text, features float8[]) RETURNS float8[]
AS 'MODULE_PATHNAME', 'mlpipe_score_proba_ref'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._score_proba(text, float8[]) IS
    'A classifier''s class probabilities for predict_table (shares one evaluation with _score_class and _score_label).';
REVOKE ALL ON FUNCTION mlpipe_internal._score_proba(text, float8[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._score_proba(text, float8[]) TO mlpipe_scorer;

-- Scoring by name anywhere (issue #11, src/pg/predict_support.c): in a
-- query that touches a Citus table, a constant model reference in the name
-- forms is resolved once while the query is planned on the coordinator
-- (which holds the registry) and the call becomes the artifact form with
-- the artifact as a constant, so shard queries never read the registry.
-- The planner support function below does it for multi-shard queries; the
-- planner hook installed when the library loads does it for router and
-- INSERT ... SELECT queries. Without Citus nothing is rewritten.
CREATE FUNCTION mlpipe_internal._predict_support(internal) RETURNS internal
AS 'MODULE_PATHNAME', 'mlpipe_predict_support'
LANGUAGE C STRICT;
COMMENT ON FUNCTION mlpipe_internal._predict_support(internal) IS
    'Planner support for the name-form scorers: on Citus, a constant model reference becomes the artifact at plan time.';
REVOKE ALL ON FUNCTION mlpipe_internal._predict_support(internal) FROM PUBLIC;

ALTER FUNCTION mlpipe.predict(text, float8[]) SUPPORT mlpipe_internal._predict_support;
ALTER FUNCTION mlpipe.predict_label(text, float8[]) SUPPORT mlpipe_internal._predict_support;
ALTER FUNCTION mlpipe.predict_proba(text, float8[]) SUPPORT mlpipe_internal._predict_support;
ALTER FUNCTION mlpipe.predict(text, record) SUPPORT mlpipe_internal._predict_support;
ALTER FUNCTION mlpipe.predict_label(text, record) SUPPORT mlpipe_internal._predict_support;
ALTER FUNCTION mlpipe.predict_proba(text, record) SUPPORT mlpipe_internal._predict_support;
ALTER FUNCTION mlpipe_internal._score_class(text, float8[]) SUPPORT mlpipe_internal._predict_support;
ALTER FUNCTION mlpipe_internal._score_label(text, float8[]) SUPPORT mlpipe_internal._predict_support;
ALTER FUNCTION mlpipe_internal._score_proba(text, float8[]) SUPPORT mlpipe_internal._predict_support;
ALTER FUNCTION mlpipe.anomaly_score(text, float8[]) SUPPORT mlpipe_internal._predict_support;
ALTER FUNCTION mlpipe.anomaly_score(text, record) SUPPORT mlpipe_internal._predict_support;
ALTER FUNCTION mlpipe.is_anomaly(text, float8[]) SUPPORT mlpipe_internal._predict_support;
ALTER FUNCTION mlpipe.is_anomaly(text, record) SUPPORT mlpipe_internal._predict_support;

-- A plan that embedded an artifact lists model_versions and aliases among
-- its relations; the registry's statement triggers (mlpipe_internal._registry_changed,
-- 10-registry.sql) invalidate their relcache entries on every change, so
-- cached plans (prepared statements, plpgsql) are replanned instead of
-- scoring with an artifact an alias no longer points to.

-- The SELECT a source (table, view or query) stands for, as training reads it.
CREATE FUNCTION mlpipe_internal._source_sql(source text) RETURNS text
AS 'MODULE_PATHNAME', 'mlpipe_source_sql'
LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION mlpipe_internal._source_sql(text) IS
    'The SELECT a source (table, view or query) stands for, as training reads it.';
REVOKE ALL ON FUNCTION mlpipe_internal._source_sql(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._source_sql(text) TO mlpipe_trainer;

-- Column names and types of a source, read as the caller (LIMIT 0).
CREATE FUNCTION mlpipe_internal._source_columns(source text)
RETURNS TABLE (name text, type regtype, ord int)
AS 'MODULE_PATHNAME', 'mlpipe_source_columns'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION mlpipe_internal._source_columns(text) IS
    'Column names and types of a source, read as the caller (LIMIT 0).';
REVOKE ALL ON FUNCTION mlpipe_internal._source_columns(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._source_columns(text) TO mlpipe_trainer;

CREATE FUNCTION mlpipe_internal._bin_counts_accum(bigint[], int, int) RETURNS bigint[]
AS 'MODULE_PATHNAME', 'mlpipe_bin_counts_accum'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._bin_counts_accum(bigint[], int, int) IS
    'Transition function of _bin_counts: adds one row to its bin.';

CREATE FUNCTION mlpipe_internal._bin_counts_combine(bigint[], bigint[]) RETURNS bigint[]
AS 'MODULE_PATHNAME', 'mlpipe_bin_counts_combine'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._bin_counts_combine(bigint[], bigint[]) IS
    'Combine function of _bin_counts: adds two count arrays.';

-- Rows per bin: _bin_counts(bin, nbins) is a bigint[nbins] of counts
-- (bins are 0-based; a NULL bin is not counted). Parallel safe.
CREATE AGGREGATE mlpipe_internal._bin_counts(int, int) (
    SFUNC = mlpipe_internal._bin_counts_accum,
    STYPE = bigint[],
    COMBINEFUNC = mlpipe_internal._bin_counts_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE mlpipe_internal._bin_counts(int, int) IS
    'Rows per bin: a bigint[nbins] of counts of 0-based bins (NULL bins not counted).';

CREATE FUNCTION mlpipe_internal._elem_bin_counts_accum(bigint[], float8[], int[], int[], float8[], int[]) RETURNS bigint[]
AS 'MODULE_PATHNAME', 'mlpipe_elem_bin_counts_accum'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._elem_bin_counts_accum(bigint[], float8[], int[], int[], float8[], int[]) IS
    'Transition function of _elem_bin_counts: counts one row''s elements and their bins.';

-- The drift counts of several elements of a float8[] column in one call a
-- row (issue #13, src/pg/drift.c): per element elements[k], the count of
-- its non-NULL values, then nbins[k] counts of its bins by
-- _bin_of(value, the next n_edges[k] values of edges), one bigint[].
CREATE AGGREGATE mlpipe_internal._elem_bin_counts(float8[], int[], int[], float8[], int[]) (
    SFUNC = mlpipe_internal._elem_bin_counts_accum,
    STYPE = bigint[],
    COMBINEFUNC = mlpipe_internal._bin_counts_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE mlpipe_internal._elem_bin_counts(float8[], int[], int[], float8[], int[]) IS
    'Per element of a float8[] column: its non-NULL count, then its rows per drift bin (one bigint[] for all elements).';

-- The bin of a value given sorted distinct edges e[1..n] (the training
-- minimum, deciles and maximum): 0 below e[1], 2k - 1 for x = e[k], 2k for
-- e[k] < x < e[k+1] (2n above the maximum): 2n + 1 bins. Edges are bins of
-- their own so that a heavy atom (a column that is mostly 0) does not hide
-- a change in the values around it, and values beyond the training range
-- always move the PSI.
CREATE FUNCTION mlpipe_internal._bin_of(x float8, e float8[]) RETURNS int
AS 'MODULE_PATHNAME', 'mlpipe_bin_of'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._bin_of(float8, float8[]) IS
    'The profile bin of a value given sorted distinct edges.';

-- Type class of a column type: numeric, array (of real / double precision),
-- categorical (text-like, boolean, enum) or other (not profiled).
CREATE FUNCTION mlpipe_internal._type_class(t regtype) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN t IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype, 'real'::regtype,
                   'double precision'::regtype, 'numeric'::regtype) THEN 'numeric'
        WHEN t IN ('real[]'::regtype, 'double precision[]'::regtype) THEN 'array'
        WHEN t IN ('text'::regtype, 'character varying'::regtype, 'character'::regtype,
                   'boolean'::regtype, 'name'::regtype)
             OR (SELECT typtype FROM pg_catalog.pg_type WHERE oid = t) = 'e' THEN 'categorical'
        ELSE 'other' END
$$;
COMMENT ON FUNCTION mlpipe_internal._type_class(regtype) IS
    'Type class of a column type for profiling: numeric, array, categorical or other.';
REVOKE ALL ON FUNCTION mlpipe_internal._type_class(regtype) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._type_class(regtype) TO mlpipe_trainer;

-- params.as_of / as_of_column: the source restricted to rows whose
-- as_of_column <= as_of, and the lineage to record. The column is quoted as
-- an identifier, the instant is normalised to ISO 8601 and quoted as a literal.
CREATE FUNCTION mlpipe_internal._as_of_source(p_source text, p_params jsonb, OUT sql text, OUT lineage jsonb)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    col   text := p_params->>'as_of_column'::text;
    ts    timestamptz;
    iso   text;
    ctype regtype;
BEGIN
    IF (p_params ? 'as_of'::text) <> (p_params ? 'as_of_column'::text) THEN
        RAISE EXCEPTION 'params.as_of and params.as_of_column go together'
            USING ERRCODE = '22023',
                  HINT = 'Give both, e.g. {"as_of": "2024-03-05 00:00+00", "as_of_column": "updated_at"}.';
    END IF;
    IF pg_catalog.jsonb_typeof(p_params->'as_of'::text) <> 'string' THEN
        RAISE EXCEPTION 'params.as_of must be a timestamp string, not %', pg_catalog.jsonb_typeof(p_params->'as_of'::text)
            USING ERRCODE = '22023';
    END IF;
    IF pg_catalog.jsonb_typeof(p_params->'as_of_column'::text) <> 'string' THEN
        RAISE EXCEPTION 'params.as_of_column must be a column name (string)' USING ERRCODE = '22023';
    END IF;
    BEGIN
        ts := (p_params->>'as_of'::text)::timestamptz;
    EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format OR invalid_parameter_value THEN
        RAISE EXCEPTION 'params.as_of "%" is not a valid timestamp', p_params->>'as_of'::text
            USING ERRCODE = '22023', HINT = 'Use ISO 8601, e.g. "2024-03-05 00:00:00+00".';
    END;
    IF NOT pg_catalog.isfinite(ts) THEN
        RAISE EXCEPTION 'params.as_of must be a finite timestamp, not %', p_params->>'as_of'::text
            USING ERRCODE = '22023';
    END IF;
    SELECT s.type INTO ctype FROM mlpipe_internal._source_columns(p_source) s WHERE s.name = col;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'params.as_of_column names column "%", which is not in the source', col
            USING ERRCODE = '22023',
                  HINT = 'Columns: ' OPERATOR(pg_catalog.||) (SELECT pg_catalog.string_agg(s.name, ', ' ORDER BY s.ord) FROM mlpipe_internal._source_columns(p_source) s) OPERATOR(pg_catalog.||) '.';
    END IF;
    IF ctype NOT IN ('timestamp with time zone'::regtype, 'timestamp without time zone'::regtype, 'date'::regtype) THEN
        RAISE EXCEPTION 'params.as_of_column "%" has type %, not a date or timestamp', col, ctype
            USING ERRCODE = '22023';
    END IF;
    iso := pg_catalog.to_jsonb(ts) #>> '{}'::text[];
    sql := pg_catalog.format('SELECT * FROM (%s) AS mlpipe_as_of WHERE %I <= %L::timestamptz',
                  mlpipe_internal._source_sql(p_source), col, iso);
    lineage := pg_catalog.jsonb_build_object('as_of', iso, 'as_of_column', col);
END $$;
COMMENT ON FUNCTION mlpipe_internal._as_of_source(text, jsonb) IS
    'A source restricted by params.as_of / as_of_column, and the lineage to record.';
REVOKE ALL ON FUNCTION mlpipe_internal._as_of_source(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._as_of_source(text, jsonb) TO mlpipe_trainer;

-- params.checks: validated strictly, then one query over the source;
-- every failing check is named with its figure (22000).
CREATE FUNCTION mlpipe_internal._check_data(p_source text, p_checks jsonb) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    cols     jsonb;
    k        text;
    e        record;
    exprs    text[] := ARRAY['pg_catalog.count(*)::text'];
    what     text[] := ARRAY['rows'];
    res      text[];
    fails    text[] := '{}';
    n        bigint;
    i        int;
    lo       text;
    hi       text;
BEGIN
    IF pg_catalog.jsonb_typeof(p_checks) <> 'object' THEN
        RAISE EXCEPTION 'params.checks must be a JSON object, not %', pg_catalog.jsonb_typeof(p_checks)
            USING ERRCODE = '22023', HINT = 'For example {"min_rows": 1000, "not_null": ["a"]}.';
    END IF;
    FOR k IN SELECT pg_catalog.jsonb_object_keys(p_checks) LOOP
        IF k NOT IN ('min_rows', 'not_null', 'ranges', 'allowed') THEN
            RAISE EXCEPTION 'unknown key "%" in params.checks', k
                USING ERRCODE = '22023', HINT = 'Allowed keys: min_rows, not_null, ranges, allowed.';
        END IF;
    END LOOP;
    SELECT pg_catalog.jsonb_object_agg(s.name, mlpipe_internal._type_class(s.type)) INTO cols FROM mlpipe_internal._source_columns(p_source) s;
    IF p_checks ? 'min_rows'::text AND (pg_catalog.jsonb_typeof(p_checks->'min_rows'::text) <> 'number'
        OR (p_checks->>'min_rows'::text)::numeric < 0::numeric OR (p_checks->>'min_rows'::text)::numeric <> pg_catalog.trunc((p_checks->>'min_rows'::text)::numeric)) THEN
        RAISE EXCEPTION 'params.checks.min_rows must be a non-negative integer' USING ERRCODE = '22023';
    END IF;
    IF p_checks ? 'not_null'::text THEN
        IF pg_catalog.jsonb_typeof(p_checks->'not_null'::text) <> 'array' THEN
            RAISE EXCEPTION 'params.checks.not_null must be an array of column names' USING ERRCODE = '22023';
        END IF;
        FOR e IN SELECT v FROM pg_catalog.jsonb_array_elements(p_checks->'not_null'::text) v LOOP
            IF pg_catalog.jsonb_typeof(e.v) <> 'string' THEN
                RAISE EXCEPTION 'params.checks.not_null must be an array of column names' USING ERRCODE = '22023';
            END IF;
            IF NOT cols ? (e.v #>> '{}'::text[]) THEN
                RAISE EXCEPTION 'params.checks.not_null names column "%", which is not in the source', e.v #>> '{}'::text[]
                    USING ERRCODE = '22023';
            END IF;
            exprs := exprs OPERATOR(pg_catalog.||) pg_catalog.format('pg_catalog.count(*) FILTER (WHERE src.%I IS NULL)::text', e.v #>> '{}'::text[]);
            what := what OPERATOR(pg_catalog.||) pg_catalog.format('not_null: column "%s" has %%s NULL values', e.v #>> '{}'::text[]);
        END LOOP;
    END IF;
    IF p_checks ? 'ranges'::text THEN
        IF pg_catalog.jsonb_typeof(p_checks->'ranges'::text) <> 'object' THEN
            RAISE EXCEPTION 'params.checks.ranges must be an object of column: [min, max]' USING ERRCODE = '22023';
        END IF;
        FOR e IN SELECT key, value FROM pg_catalog.jsonb_each(p_checks->'ranges'::text) LOOP
            IF NOT cols ? e.key THEN
                RAISE EXCEPTION 'params.checks.ranges names column "%", which is not in the source', e.key
                    USING ERRCODE = '22023';
            END IF;
            IF cols->>e.key <> 'numeric' THEN
                RAISE EXCEPTION 'params.checks.ranges: column "%" is not numeric', e.key USING ERRCODE = '22023';
            END IF;
            IF pg_catalog.jsonb_typeof(e.value) <> 'array' OR pg_catalog.jsonb_array_length(e.value) <> 2
               OR pg_catalog.jsonb_typeof(e.value->0) NOT IN ('number', 'null') OR pg_catalog.jsonb_typeof(e.value->1) NOT IN ('number', 'null')
               OR (pg_catalog.jsonb_typeof(e.value->0) = 'number' AND pg_catalog.jsonb_typeof(e.value->1) = 'number'
                   AND (e.value->>0)::float8 > (e.value->>1)::float8) THEN
                RAISE EXCEPTION 'params.checks.ranges."%" must be [min, max] with min <= max (null for no bound)', e.key
                    USING ERRCODE = '22023';
            END IF;
            lo := e.value->>0;
            hi := e.value->>1;
            exprs := exprs OPERATOR(pg_catalog.||) pg_catalog.format('pg_catalog.count(*) FILTER (WHERE (src.%I)::float8 < %s OR (src.%I)::float8 > %s)::text',
                                     e.key, coalesce(pg_catalog.quote_literal(lo) OPERATOR(pg_catalog.||) '::float8', '''-Infinity''::float8'),
                                     e.key, coalesce(pg_catalog.quote_literal(hi) OPERATOR(pg_catalog.||) '::float8', '''Infinity''::float8'));
            what := what OPERATOR(pg_catalog.||) pg_catalog.format('ranges: column "%s" has %%s values outside [%s, %s]', e.key,
                                   coalesce(lo, '-inf'), coalesce(hi, 'inf'));
        END LOOP;
    END IF;
    IF p_checks ? 'allowed'::text THEN
        IF pg_catalog.jsonb_typeof(p_checks->'allowed'::text) <> 'object' THEN
            RAISE EXCEPTION 'params.checks.allowed must be an object of column: [values]' USING ERRCODE = '22023';
        END IF;
        FOR e IN SELECT key, value FROM pg_catalog.jsonb_each(p_checks->'allowed'::text) LOOP
            IF NOT cols ? e.key THEN
                RAISE EXCEPTION 'params.checks.allowed names column "%", which is not in the source', e.key
                    USING ERRCODE = '22023';
            END IF;
            IF pg_catalog.jsonb_typeof(e.value) <> 'array' OR pg_catalog.jsonb_array_length(e.value) = 0
               OR EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements(e.value) v WHERE pg_catalog.jsonb_typeof(v) NOT IN ('string', 'number', 'boolean')) THEN
                RAISE EXCEPTION 'params.checks.allowed."%" must be a non-empty array of values', e.key
                    USING ERRCODE = '22023';
            END IF;
            exprs := exprs OPERATOR(pg_catalog.||) pg_catalog.format('(pg_catalog.count(*) FILTER (WHERE (src.%1$I)::text <> ALL (%2$L::text[])) OPERATOR(pg_catalog.||) '' values outside the allowed ones (e.g. '' OPERATOR(pg_catalog.||) '
                                     OPERATOR(pg_catalog.||) 'coalesce(pg_catalog.quote_literal(pg_catalog.min((src.%1$I)::text) FILTER (WHERE (src.%1$I)::text <> ALL (%2$L::text[]))), ''-'') OPERATOR(pg_catalog.||) '')'')',
                                     e.key, ARRAY(SELECT v #>> '{}'::text[] FROM pg_catalog.jsonb_array_elements(e.value) v)::text);
            what := what OPERATOR(pg_catalog.||) pg_catalog.format('allowed: column "%s" has %%s', e.key);
        END LOOP;
    END IF;
    EXECUTE pg_catalog.format('SELECT ARRAY[%s] FROM (%s) AS src', pg_catalog.array_to_string(exprs, ', '), mlpipe_internal._source_sql(p_source))
        INTO res;
    n := res[1]::bigint;
    IF p_checks ? 'min_rows'::text AND n::numeric < (p_checks->>'min_rows'::text)::numeric THEN
        fails := fails OPERATOR(pg_catalog.||) pg_catalog.format('min_rows: the source has %s rows, fewer than %s', n, p_checks->>'min_rows'::text);
    END IF;
    FOR i IN 2 .. pg_catalog.cardinality(res) LOOP
        IF pg_catalog.split_part(res[i], ' ', 1) <> '0' THEN
            fails := fails OPERATOR(pg_catalog.||) (pg_catalog.format(what[i], res[i]) OPERATOR(pg_catalog.||) CASE WHEN what[i] LIKE 'allowed:%' THEN '' ELSE pg_catalog.format(' (of %s rows)', n) END);
        END IF;
    END LOOP;
    IF pg_catalog.cardinality(fails) > 0 THEN
        RAISE EXCEPTION 'data checks failed: %', pg_catalog.array_to_string(fails, '; ')
            USING ERRCODE = '22000', HINT = 'Fix the source or relax params.checks.';
    END IF;
    RETURN n;
END $$;
COMMENT ON FUNCTION mlpipe_internal._check_data(text, jsonb) IS
    'Runs the params.checks data checks over a source and raises 22000 naming every failing check.';
REVOKE ALL ON FUNCTION mlpipe_internal._check_data(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._check_data(text, jsonb) TO mlpipe_trainer;

-- Stores a version's profile: only for a version the session user created
-- in the current transaction (the _register that _train just called), and
-- only while it has none.
CREATE FUNCTION mlpipe_internal._set_profile(p_model text, p_version int, p_profile jsonb)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE mlpipe.model_versions v SET profile = p_profile
     WHERE v.model = p_model AND v.version = p_version
       AND v.profile IS NULL AND v.created_by = session_user
       AND v.created_at >= pg_catalog.now();     -- created in this transaction
    IF NOT FOUND THEN
        RAISE EXCEPTION 'version %@% was not created by % in this transaction, or has a profile already',
            p_model, p_version, session_user
            USING ERRCODE = '42501';
    END IF;
END $$;
COMMENT ON FUNCTION mlpipe_internal._set_profile(text, int, jsonb) IS
    'Stores the profile of a version the session user created in the current transaction.';
REVOKE ALL ON FUNCTION mlpipe_internal._set_profile(text, int, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._set_profile(text, int, jsonb) TO mlpipe_trainer;

-- The training profile of a model_ref (NULL for versions trained before 0.3.0).
CREATE FUNCTION mlpipe.profile(model_ref text) RETURNS jsonb
LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT v.profile FROM mlpipe.model_versions v, mlpipe.resolve(model_ref) r
     WHERE v.model = r.model AND v.version = r.version
$$;
COMMENT ON FUNCTION mlpipe.profile(text) IS
    'The training profile of a version (bin edges and shares per feature) used by drift.';
REVOKE ALL ON FUNCTION mlpipe.profile(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.profile(text) TO mlpipe_reader;

-- What scoring a model_ref needs, in one SECURITY DEFINER lookup.
CREATE FUNCTION mlpipe_internal._scoring_info(model_ref text,
    OUT model text, OUT version int, OUT algorithm text, OUT task text,
    OUT features text[], OUT classes text[], OUT profile jsonb)
LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT v.model, v.version, v.algorithm, v.task, v.features, v.classes, v.profile
      FROM mlpipe.model_versions v, mlpipe.resolve(model_ref) r
     WHERE v.model = r.model AND v.version = r.version
$$;
COMMENT ON FUNCTION mlpipe_internal._scoring_info(text) IS
    'What scoring a model_ref needs, in one SECURITY DEFINER lookup.';
REVOKE ALL ON FUNCTION mlpipe_internal._scoring_info(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._scoring_info(text) TO mlpipe_reader;

-- PSI and null rates of a source against a profile. PSI over the non-null
-- values: sum over bins of (a - e) * ln(a / e), with e and a the training
-- and current shares of each bin, each at least 1e-4 (empty bins).
-- p_fraction < 1 reads a sample, the same one on every call over the same
-- data (issue #12: PSI must not vary from run to run): TABLESAMPLE SYSTEM
-- REPEATABLE (whole pages, so only that share of the table is read) when
-- the source is a table or materialized view, else the query's rows whose
-- text hashes below the fraction.
CREATE FUNCTION mlpipe_internal._drift_figures(p_profile jsonb, p_source text, p_fraction float8 DEFAULT 1)
RETURNS TABLE (feature text, psi float8, null_rate_train float8, null_rate_now float8, rows_now bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    f      jsonb;
    cols   jsonb;
    exprs  text[] := '{}';
    ex     text;
    bin    text;
    cur    jsonb;
    i      int := 0;
    n      bigint;
    rel    regclass;
    from_  text;
    arrs   text[];
    spec   jsonb;
    inner_ text[] := '{}';
    agg    text;
    off    int;
    nb     int;
BEGIN
    SELECT pg_catalog.jsonb_object_agg(s.name, mlpipe_internal._type_class(s.type)),
           pg_catalog.array_agg(s.name) FILTER (WHERE s.type OPERATOR(pg_catalog.=) 'double precision[]'::regtype)
      INTO cols, arrs FROM mlpipe_internal._source_columns(p_source) s;
    -- Numeric elements of a float8[] column are counted by one
    -- _elem_bin_counts per column, a column of the inner query (inner_,
    -- one row of aggregates): one call a row, not several per element, and
    -- the same counts. spec maps such a column to "ref", that column, and
    -- "at", each feature's offset in its counts (its non-NULL count, then
    -- its bins).
    SELECT coalesce(pg_catalog.jsonb_object_agg(g.col, pg_catalog.jsonb_build_object('at', g.at, 'ref', 's.mlpipe_a' OPERATOR(pg_catalog.||) g.k)), '{}'),
           coalesce(pg_catalog.array_agg(pg_catalog.format('mlpipe_internal._elem_bin_counts(src.%I, %L::int[], %L::int[], %L::float8[], %L::int[]) AS mlpipe_a%s',
                                                           g.col, g.els, g.nbs, g.eds, g.nes, g.k) ORDER BY g.k), '{}')
      INTO spec, inner_
      FROM (SELECT e.col, pg_catalog.row_number() OVER (ORDER BY pg_catalog.min(e.o)) AS k,
                   pg_catalog.jsonb_object_agg(e.feat, e.off) AS at,
                   pg_catalog.array_agg(e.el ORDER BY e.o)::text AS els,
                   pg_catalog.array_agg(e.nb ORDER BY e.o)::text AS nbs,
                   pg_catalog.array_agg(e.ne ORDER BY e.o)::text AS nes,
                   coalesce(('{' OPERATOR(pg_catalog.||) pg_catalog.string_agg(pg_catalog.btrim(e.edges::text, '[]'), ',' ORDER BY e.o) FILTER (WHERE e.ne OPERATOR(pg_catalog.>) 0)
                             OPERATOR(pg_catalog.||) '}')::float8[], '{}')::text AS eds
              FROM (SELECT t.x->>'column'::text AS col, t.x->>'feature'::text AS feat, t.o, (t.x->>'element'::text)::int AS el,
                           pg_catalog.jsonb_array_length(t.x->'counts'::text) AS nb, pg_catalog.jsonb_array_length(t.x->'edges'::text) AS ne,
                           t.x->'edges'::text AS edges,
                           pg_catalog.sum(1 OPERATOR(pg_catalog.+) pg_catalog.jsonb_array_length(t.x->'counts'::text))
                               OVER (PARTITION BY t.x->>'column'::text ORDER BY t.o) OPERATOR(pg_catalog.-)
                               (1 OPERATOR(pg_catalog.+) pg_catalog.jsonb_array_length(t.x->'counts'::text)) AS off
                      FROM pg_catalog.jsonb_array_elements(p_profile->'features'::text) WITH ORDINALITY t(x, o)
                     WHERE t.x->>'kind'::text OPERATOR(pg_catalog.=) 'numeric' AND t.x->>'element'::text IS NOT NULL
                       AND t.x->>'column'::text OPERATOR(pg_catalog.=) ANY (arrs)) e
             GROUP BY e.col) g;
    FOR f IN SELECT x FROM pg_catalog.jsonb_array_elements(p_profile->'features'::text) x LOOP
        IF NOT cols ? (f->>'column'::text) THEN
            RAISE EXCEPTION 'the source has no column "%" (feature "%" of the model)', f->>'column'::text, f->>'feature'::text
                USING ERRCODE = '42703',
                      HINT = 'Columns: ' OPERATOR(pg_catalog.||) (SELECT pg_catalog.string_agg(k, ', ' ORDER BY k) FROM pg_catalog.jsonb_object_keys(cols) k) OPERATOR(pg_catalog.||) '.';
        END IF;
        IF f->>'kind'::text = 'numeric' AND f->>'element'::text IS NOT NULL AND spec ? (f->>'column'::text) THEN
            -- this element's slice of its column's counts: non-NULL count, then bins
            agg := spec->(f->>'column'::text)->>'ref'::text;
            off := (spec->(f->>'column'::text)->'at'::text->>(f->>'feature'::text))::int;
            nb := pg_catalog.jsonb_array_length(f->'counts'::text);
            exprs := exprs OPERATOR(pg_catalog.||) pg_catalog.format('pg_catalog.jsonb_build_object(''n'', coalesce(%1$s[%2$s], 0), ''c'', CASE WHEN %1$s[%2$s] OPERATOR(pg_catalog.>) 0 THEN pg_catalog.to_jsonb(%1$s[%3$s:%4$s]) END)',
                                     agg, off OPERATOR(pg_catalog.+) 1, off OPERATOR(pg_catalog.+) 2, off OPERATOR(pg_catalog.+) 1 OPERATOR(pg_catalog.+) nb);
            CONTINUE;
        END IF;
        IF f->>'kind'::text = 'numeric' THEN
            IF cols->>(f->>'column'::text) NOT IN ('numeric', 'array') THEN
                RAISE EXCEPTION 'column "%" is % in the source but was numeric at training', f->>'column'::text, cols->>(f->>'column'::text)
                    USING ERRCODE = '22000';
            END IF;
            ex := CASE WHEN f->>'element'::text IS NULL THEN pg_catalog.format('(src.%I)::float8', f->>'column'::text)
                       ELSE pg_catalog.format('(src.%I)[%s]::float8', f->>'column'::text, (f->>'element'::text)::int) END;
            bin := pg_catalog.format('mlpipe_internal._bin_of(%s, %L::float8[])', ex,
                          ARRAY(SELECT e::float8 FROM pg_catalog.jsonb_array_elements_text(f->'edges'::text) e)::text);
        ELSE
            ex := pg_catalog.format('(src.%I)::text', f->>'column'::text);
            bin := pg_catalog.format('coalesce(pg_catalog.array_position(%L::text[], %s), 0)', 
                          ARRAY(SELECT e FROM pg_catalog.jsonb_array_elements_text(f->'categories'::text) e)::text, ex);
        END IF;
        exprs := exprs OPERATOR(pg_catalog.||) ('s.mlpipe_f' OPERATOR(pg_catalog.||) pg_catalog.cardinality(inner_));
        inner_ := inner_ OPERATOR(pg_catalog.||) pg_catalog.format('pg_catalog.jsonb_build_object(''n'', pg_catalog.count(%s), ''c'', pg_catalog.to_jsonb(mlpipe_internal._bin_counts(%s, %s) FILTER (WHERE %s IS NOT NULL))) AS mlpipe_f%s',
                                 ex, bin, pg_catalog.jsonb_array_length(f->'counts'::text), ex, pg_catalog.cardinality(inner_));
    END LOOP;
    IF pg_catalog.cardinality(exprs) = 0 THEN
        RETURN;
    END IF;
    from_ := pg_catalog.format('(%s) AS src', mlpipe_internal._source_sql(p_source));
    IF p_fraction < 1::float8 THEN
        IF p_source !~* '^[[:space:](]*(select|with|values|table)([[:space:](]|$)' THEN
            BEGIN
                rel := pg_catalog.to_regclass(p_source);
            EXCEPTION WHEN OTHERS THEN
                rel := NULL;
            END;
        END IF;
        IF rel IS NOT NULL AND (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = rel) IN ('r', 'm', 'p') THEN
            from_ := pg_catalog.format('%s AS src TABLESAMPLE SYSTEM (%s) REPEATABLE (12)', rel, p_fraction * 100::float8);
        ELSE
            from_ := from_ OPERATOR(pg_catalog.||) pg_catalog.format(
                ' WHERE (pg_catalog.hashtext((src.*)::text) OPERATOR(pg_catalog.&) 1048575) OPERATOR(pg_catalog.<) %s',
                (p_fraction * 1048576::float8)::int);
        END IF;
    END IF;
    EXECUTE pg_catalog.format('SELECT pg_catalog.jsonb_build_object(''n'', s.mlpipe_n, ''f'', pg_catalog.to_jsonb(ARRAY[%s]::jsonb[])) '
                              'FROM (SELECT pg_catalog.count(*) AS mlpipe_n, %s FROM %s) s',
                   pg_catalog.array_to_string(exprs, ', '), pg_catalog.array_to_string(inner_, ', '), from_)
        INTO cur;
    n := (cur->>'n'::text)::bigint;
    IF n = 0 AND p_fraction < 1::float8 THEN
        RETURN;                 -- an empty sample: no figures
    END IF;
    IF n = 0 THEN
        RAISE EXCEPTION 'the source returned no rows' USING ERRCODE = '22000';
    END IF;
    FOR f IN SELECT x FROM pg_catalog.jsonb_array_elements(p_profile->'features'::text) x LOOP
        i := i + 1;
        feature := f->>'feature'::text;
        null_rate_train := (f->>'null_rate'::text)::float8;
        null_rate_now := CASE WHEN n > 0 THEN 1::float8 - (cur->'f'::text->(i - 1)->>'n'::text)::float8 / n::float8 END;
        rows_now := n;
        psi := NULL;
        IF pg_catalog.jsonb_typeof(cur->'f'::text->(i - 1)->'c'::text) = 'array' THEN
            SELECT pg_catalog.sum((greatest(c / sum_c, 1e-4) - greatest(t / sum_t, 1e-4))
                       * pg_catalog.ln(greatest(c / sum_c, 1e-4) / greatest(t / sum_t, 1e-4)))
              INTO psi
              FROM (SELECT t, c, pg_catalog.sum(t) OVER () AS sum_t, pg_catalog.sum(c) OVER () AS sum_c
                      FROM ROWS FROM (pg_catalog.unnest(ARRAY(SELECT x::float8 FROM pg_catalog.jsonb_array_elements_text(f->'counts'::text) x)),
                                      pg_catalog.unnest(ARRAY(SELECT x::float8 FROM pg_catalog.jsonb_array_elements_text(cur->'f'::text->(i - 1)->'c'::text) x))) u(t, c)) b
             WHERE sum_t > 0::float8 AND sum_c > 0::float8;
        END IF;
        RETURN NEXT;
    END LOOP;
END $$;
COMMENT ON FUNCTION mlpipe_internal._drift_figures(jsonb, text, float8) IS
    'PSI and null rates of each profiled feature of a source against a profile.';
REVOKE ALL ON FUNCTION mlpipe_internal._drift_figures(jsonb, text, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._drift_figures(jsonb, text, float8) TO mlpipe_trainer;

-- The status of one feature's drift figures (see mlpipe.drift).
CREATE FUNCTION mlpipe_internal._drift_status(psi float8, null_train float8, null_now float8,
                                     threshold float8, null_threshold float8) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE
        WHEN pg_catalog.abs(coalesce(null_now, 0) - coalesce(null_train, 0)) >= null_threshold THEN 'drift'
        WHEN psi IS NULL THEN 'no data'
        WHEN psi >= threshold THEN 'drift'
        WHEN psi >= threshold / 2 THEN 'warning'
        ELSE 'ok' END
$$;
COMMENT ON FUNCTION mlpipe_internal._drift_status(float8, float8, float8, float8, float8) IS
    'The status (ok, drift, new_values, ...) of one feature''s drift figures.';

-- Drift of a source against the training profile of a model version: one
-- row per profiled feature. status: 'drift' when psi >= threshold or the
-- null rate moved by null_threshold or more, 'warning' when psi >= threshold / 2,
-- 'no data' when the source has no value for the feature, else 'ok'.
-- Each call is logged as a run (kind 'drift') with psi:<feature> and
-- null_rate:<feature> metrics, as predict_table logs them.
CREATE FUNCTION mlpipe.drift(model_ref text, source text, threshold float8 DEFAULT 0.2,
                             null_threshold float8 DEFAULT 0.1)
RETURNS TABLE (feature text, psi float8, null_rate_train float8, null_rate_now float8, status text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    info    record;
    started timestamptz := pg_catalog.clock_timestamp();
    metrics jsonb := '{}';
    drifted int := 0;
    n       bigint;
BEGIN
    -- Everyone may call it; who may is checked here, to name the role to
    -- grant (issue #12). What it calls stays granted to mlpipe_trainer only.
    IF NOT pg_catalog.pg_has_role(current_user, 'mlpipe_trainer', 'MEMBER') THEN
        RAISE EXCEPTION 'permission denied for function drift' USING ERRCODE = '42501',
            HINT = pg_catalog.format('GRANT mlpipe_trainer TO %I;', current_user);
    END IF;
    IF model_ref IS NULL OR source IS NULL THEN
        RAISE EXCEPTION 'model_ref and source must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF threshold IS NULL OR threshold <= 0::float8 OR null_threshold IS NULL OR null_threshold <= 0::float8 THEN
        RAISE EXCEPTION 'threshold and null_threshold must be positive numbers' USING ERRCODE = '22023';
    END IF;
    SELECT * INTO info FROM mlpipe_internal._scoring_info(model_ref);
    IF info.profile IS NULL THEN
        RAISE EXCEPTION 'version %@% has no training profile', info.model, info.version
            USING ERRCODE = '22000', HINT = 'Versions trained before mlpipe 0.3.0, or with params.profile_sample = 0, have none; retrain to get one.';
    END IF;
    FOR feature, psi, null_rate_train, null_rate_now, status, n IN
        SELECT d.feature, d.psi, d.null_rate_train, d.null_rate_now,
               mlpipe_internal._drift_status(d.psi, d.null_rate_train, d.null_rate_now, threshold, null_threshold),
               d.rows_now
          FROM mlpipe_internal._drift_figures(info.profile, source) d LOOP
        -- The same metric names as predict_table: psi:<feature>, null_rate:<feature>.
        metrics := metrics || pg_catalog.jsonb_build_object('psi:' || feature, psi, 'null_rate:' || feature, null_rate_now);
        drifted := drifted + CASE WHEN status = 'drift' THEN 1 ELSE 0 END;
        RETURN NEXT;
    END LOOP;
    -- Logged as a run (kind 'drift', split 'drift') with the version, for
    -- the drift history (mlpipe.drift_history); not in a read-only
    -- transaction (a hot standby), where drift still answers.
    IF pg_catalog.current_setting('transaction_read_only'::text) OPERATOR(pg_catalog.=) 'off'::text THEN
        PERFORM mlpipe_internal._log_run('drift', info.model, info.version, info.algorithm, source,
            pg_catalog.jsonb_build_object('model_ref', model_ref, 'threshold', threshold, 'null_threshold', null_threshold),
            'succeeded', NULL, n, started, NULL,
            metrics OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('drifted_features', drifted), 'drift');
    END IF;
END $$;
COMMENT ON FUNCTION mlpipe.drift(text, text, float8, float8) IS
    'Population stability index and null rates of each feature of a source against the training profile of a version.';
REVOKE ALL ON FUNCTION mlpipe.drift(text, text, float8, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.drift(text, text, float8, float8) TO mlpipe_trainer;
GRANT EXECUTE ON FUNCTION mlpipe.drift(text, text, float8, float8) TO PUBLIC;

-- True when a model stores preprocessing (src/pg/export.c).
CREATE FUNCTION mlpipe_internal._has_preprocessing(model bytea) RETURNS boolean
AS 'MODULE_PATHNAME', 'mlpipe_has_preprocessing'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._has_preprocessing(bytea) IS
    'True when a model artifact stores preprocessing.';
REVOKE ALL ON FUNCTION mlpipe_internal._has_preprocessing(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._has_preprocessing(bytea) TO mlpipe_trainer;

-- The float8[] a model without preprocessing scores, as SQL over the alias
-- "src": the array column itself when the features are exactly its
-- elements in order, else ARRAY[...] of numeric columns and elements. NULL
-- when a feature is not a numeric column or element of the source (the
-- row form then scores, or says what is missing).
CREATE FUNCTION mlpipe_internal._feature_array_expr(p_features text[], p_source text) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    cols  jsonb;
    types jsonb;
    f     text;
    c     text;
    parts text[] := '{}';
BEGIN
    SELECT pg_catalog.jsonb_object_agg(s.name, mlpipe_internal._type_class(s.type)), pg_catalog.jsonb_object_agg(s.name, s.type::text)
      INTO cols, types FROM mlpipe_internal._source_columns(p_source) s;
    FOREACH f IN ARRAY p_features LOOP
        IF cols->>f = 'numeric' THEN
            parts := parts OPERATOR(pg_catalog.||) pg_catalog.format('(src.%I)::float8', f);
            CONTINUE;
        END IF;
        c := substring(f FROM '^(.*)\[[0-9]{1,6}\]$');
        IF c IS NULL OR cols->>c IS DISTINCT FROM 'array' THEN
            RETURN NULL;
        END IF;
        parts := parts OPERATOR(pg_catalog.||) pg_catalog.format('(src.%I)[%s]::float8', c, substring(f FROM '\[([0-9]{1,6})\]$'));
    END LOOP;
    -- Features x[1], ..., x[d] of one array column: pass the column as it is.
    c := substring(p_features[1] FROM '^(.*)\[1\]$');
    IF c IS NOT NULL AND cols->>c = 'array' AND p_features = ARRAY(
            SELECT pg_catalog.format('%s[%s]', c, g) FROM pg_catalog.generate_series(1, pg_catalog.cardinality(p_features)) g) THEN
        RETURN CASE WHEN types->>c = 'double precision[]' THEN pg_catalog.format('src.%I', c)
                    ELSE pg_catalog.format('(src.%I)::float8[]', c) END;
    END IF;
    RETURN 'ARRAY[' OPERATOR(pg_catalog.||) pg_catalog.array_to_string(parts, ', ') OPERATOR(pg_catalog.||) ']';
END $$;
COMMENT ON FUNCTION mlpipe_internal._feature_array_expr(text[], text) IS
    'The SQL of the float8[] a model without preprocessing scores, over the alias src.';
REVOKE ALL ON FUNCTION mlpipe_internal._feature_array_expr(text[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._feature_array_expr(text[], text) TO mlpipe_trainer;

-- Explanations (issue #14): TreeSHAP for tree models, distance parts for k-means.
CREATE FUNCTION mlpipe.explain(model_ref text, features float8[], top_k int DEFAULT NULL, class text DEFAULT NULL)
RETURNS TABLE (feature text, value float8, contribution float8)
AS 'MODULE_PATHNAME', 'mlpipe_explain_array'
LANGUAGE C STABLE PARALLEL SAFE ROWS 20;
COMMENT ON FUNCTION mlpipe.explain(text, float8[], int, text) IS
    'Why a model scored a row (float8[]): one row per feature with its exact TreeSHAP contribution (k-means: its part of the squared distance), then a row with feature NULL holding the expected value (k-means: cluster and squared distance).';
REVOKE ALL ON FUNCTION mlpipe.explain(text, float8[], int, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.explain(text, float8[], int, text) TO mlpipe_scorer;

CREATE FUNCTION mlpipe.explain(model_ref text, "row" record, top_k int DEFAULT NULL, class text DEFAULT NULL)
RETURNS TABLE (feature text, value float8, contribution float8)
AS 'MODULE_PATHNAME', 'mlpipe_explain_row'
LANGUAGE C STABLE PARALLEL SAFE ROWS 20;
COMMENT ON FUNCTION mlpipe.explain(text, record, int, text) IS
    'Why a model scored a row (columns matched by name): one row per feature (per original column for a model with preprocessing) with its contribution, then the expected value (feature NULL).';
REVOKE ALL ON FUNCTION mlpipe.explain(text, record, int, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.explain(text, record, int, text) TO mlpipe_scorer;

CREATE FUNCTION mlpipe.explain_values(model_ref text, features float8[]) RETURNS float8[]
AS 'MODULE_PATHNAME', 'mlpipe_explain_values'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe.explain_values(text, float8[]) IS
    'Every output''s TreeSHAP contributions of a tree model in XGBoost''s pred_contribs layout: per output, one value per feature, then the expected value.';
REVOKE ALL ON FUNCTION mlpipe.explain_values(text, float8[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.explain_values(text, float8[]) TO mlpipe_scorer;

-- The model one group of a grouped model scores with (docs/grouped-models.md):
-- the production version of the group's model; for a group never trained
-- (or without a production version), the grouped model's fallback; else
-- no row (the row scores NULL).
CREATE FUNCTION mlpipe_internal._group_model(p_parent text, p_key text[])
RETURNS TABLE (model text, version int, artifact bytea)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    fb  text;
    r   record;
BEGIN
    RETURN QUERY
        SELECT v.model, v.version, v.artifact
          FROM mlpipe.model_groups g
          JOIN mlpipe.aliases a ON a.model = g.model AND a.alias = 'production'
          JOIN mlpipe.model_versions v ON v.model = a.model AND v.version = a.version
         WHERE g.parent = p_parent AND g.group_key = p_key;
    IF FOUND THEN
        RETURN;
    END IF;
    SELECT gm.fallback INTO fb FROM mlpipe.grouped_models gm WHERE gm.name = p_parent;
    IF fb IS NOT NULL THEN
        SELECT * INTO r FROM mlpipe.resolve(fb);
        RETURN QUERY SELECT r.model::text, r.version::int, mlpipe_internal._artifact_at(r.model, r.version);
    END IF;
END $$;
COMMENT ON FUNCTION mlpipe_internal._group_model(text, text[]) IS
    'The model, version and artifact that rows of one group of a grouped model score with (none: NULL scores).';
REVOKE ALL ON FUNCTION mlpipe_internal._group_model(text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._group_model(text, text[]) TO mlpipe_reader;

-- The features as explain's row form reports them (the original columns of
-- a model with preprocessing) with their normalised gain importance.
CREATE FUNCTION mlpipe_internal._explained_importance(model bytea)
RETURNS TABLE (feature text, gain_importance float8)
AS 'MODULE_PATHNAME', 'mlpipe_explained_importance'
LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._explained_importance(bytea) IS
    'The features of a tree model as explain reports them (original columns with preprocessing), with their normalised gain importance.';
REVOKE ALL ON FUNCTION mlpipe_internal._explained_importance(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._explained_importance(bytea) TO mlpipe_trainer;

-- A tree model's global explanation over a source: each feature's mean
-- |contribution| (explain's row form, so original columns for a model with
-- preprocessing) over a deterministic sample of the source's rows (the
-- `sample` rows with the smallest hash of their text; every row when the
-- source has fewer), beside its gain importance; largest first. Reads the
-- source as the caller, like train: no pinned search_path, and everything
-- it names itself is qualified.
CREATE FUNCTION mlpipe.explain_global(model_ref text, source text, sample int DEFAULT 10000,
                                      class text DEFAULT NULL)
RETURNS TABLE (feature text, mean_abs_contribution float8, gain_importance float8)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    -- Everyone may call it; who may is checked here, to name the role to
    -- grant (issue #12). What it calls stays granted to mlpipe_trainer only.
    IF NOT pg_catalog.pg_has_role(current_user, 'mlpipe_trainer', 'MEMBER') THEN
        RAISE EXCEPTION 'permission denied for function explain_global' USING ERRCODE = '42501',
            HINT = pg_catalog.format('GRANT mlpipe_trainer TO %I;', current_user);
    END IF;
    IF model_ref IS NULL OR source IS NULL THEN
        RAISE EXCEPTION 'model_ref and source must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF sample IS NULL OR sample OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION 'sample must be at least 1 row, got %', coalesce(sample::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'sample is how many rows of the source to explain (default 10000).';
    END IF;
    RETURN QUERY EXECUTE pg_catalog.format(
        'WITH imp AS (SELECT i.feature, i.gain_importance, i.ord FROM '
        'mlpipe_internal._explained_importance(mlpipe.artifact($1)) WITH ORDINALITY AS i(feature, gain_importance, ord)), '
        'smp AS MATERIALIZED (SELECT src.* FROM (%s) AS src '
        'ORDER BY pg_catalog.hashtext(ROW(src.*)::text), ROW(src.*)::text LIMIT $3), '
        'c AS (SELECT e.feature, pg_catalog.avg(pg_catalog.abs(e.contribution)) AS mean_abs '
        'FROM smp, LATERAL mlpipe.explain($1, smp.*, NULL, $2) AS e WHERE e.feature IS NOT NULL GROUP BY e.feature) '
        'SELECT imp.feature, coalesce(c.mean_abs, 0::float8), imp.gain_importance '
        'FROM imp LEFT JOIN c ON c.feature OPERATOR(pg_catalog.=) imp.feature ORDER BY 2 DESC, imp.ord',
        mlpipe_internal._source_sql(source)) USING model_ref, class, sample;
END $$;
COMMENT ON FUNCTION mlpipe.explain_global(text, text, int, text) IS
    'A tree model''s global explanation over a source: each feature''s mean |TreeSHAP contribution| over a deterministic sample of rows, beside its gain importance.';
REVOKE ALL ON FUNCTION mlpipe.explain_global(text, text, int, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.explain_global(text, text, int, text) TO mlpipe_trainer;
GRANT EXECUTE ON FUNCTION mlpipe.explain_global(text, text, int, text) TO PUBLIC;
