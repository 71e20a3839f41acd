--------------------------------------------------------------------------
-- 30-scoring: predict, predict_label, predict_proba (float8[] and row forms,
-- by name and by artifact), export, feature_importance, training profiles
-- and drift, data checks, data time travel (params.as_of) and batch scoring
-- into tables. See docs/batch-scoring.md, docs/drift.md,
-- docs/preprocessing.md and docs/time-travel.md.
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

-- True when a model stores preprocessing (src/pg/drift.c).
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

-- The (schema, table) of an "into" argument: 'table' or 'schema.table',
-- parsed as identifiers (quoted parts keep their case).
CREATE FUNCTION mlpipe_internal._parse_into(p_into text, OUT qualified text, OUT display text)
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    parts text[];
BEGIN
    BEGIN
        parts := parse_ident(p_into);
    EXCEPTION WHEN invalid_text_representation OR invalid_parameter_value THEN
        parts := NULL;
    END;
    IF parts IS NULL OR pg_catalog.cardinality(parts) NOT IN (1, 2) OR '' = ANY (parts) THEN
        RAISE EXCEPTION 'into "%" is not a table name', p_into
            USING ERRCODE = '22023', HINT = 'Use table or schema.table; quote names with capitals or spaces.';
    END IF;
    qualified := (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(p), '.' ORDER BY o) FROM pg_catalog.unnest(parts) WITH ORDINALITY u(p, o));
    display := pg_catalog.array_to_string(parts, '.');
END $$;
COMMENT ON FUNCTION mlpipe_internal._parse_into(text) IS
    'The qualified and display names of the into argument of predict_table.';
REVOKE ALL ON FUNCTION mlpipe_internal._parse_into(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._parse_into(text) TO mlpipe_trainer;

-- Checks an existing target table: the columns predict_table writes must
-- be there with the right types (22000 naming the mismatch). The index a
-- mode needs is _key_index's business.
CREATE FUNCTION mlpipe_internal._check_target(p_rel regclass, p_key text, p_key_type regtype)
RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    want   record;
    have   regtype;
BEGIN
    IF (SELECT relkind FROM pg_catalog.pg_class WHERE oid = p_rel) NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table', p_rel USING ERRCODE = '22000';
    END IF;
    FOR want IN SELECT * FROM (VALUES (p_key, p_key_type), ('prediction', 'double precision'::regtype),
                                      ('label', 'text'::regtype), ('proba', 'double precision[]'::regtype),
                                      ('model', 'text'::regtype), ('version', 'integer'::regtype),
                                      ('scored_at', 'timestamp with time zone'::regtype)) w(col, typ) LOOP
        SELECT a.atttypid::regtype INTO have FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = p_rel AND a.attname = want.col AND a.attnum > 0 AND NOT a.attisdropped;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'table % has no column "%"', p_rel, want.col
                USING ERRCODE = '22000',
                      HINT = 'predict_table writes key, prediction, label, proba, model, version, scored_at; or let it create a new table.';
        END IF;
        IF have <> want.typ THEN
            RAISE EXCEPTION 'column "%" of table % is %, expected %', want.col, p_rel, have, want.typ
                USING ERRCODE = '22000';
        END IF;
    END LOOP;
END $$;
COMMENT ON FUNCTION mlpipe_internal._check_target(regclass, text, regtype) IS
    'Checks that an existing predict_table target has the columns predict_table writes, with their types.';
REVOKE ALL ON FUNCTION mlpipe_internal._check_target(regclass, text, regtype) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._check_target(regclass, text, regtype) TO mlpipe_trainer;

-- The index on the key that predict_table's mode needs (issue #13): upsert
-- a unique index on the key column alone (ON CONFLICT needs it),
-- incremental an index led by the key (its NOT EXISTS probe); append and
-- replace none (building one costs about as much as writing the table).
-- Created when missing and the caller owns the target (a new target or an
-- existing one); an upsert target without one that cannot get it (not the
-- owner, duplicate keys, partitioned on another column) fails with 22000
-- naming the index to create.
-- incremental works without an index, so a non-owner goes on without.
CREATE FUNCTION mlpipe_internal._key_index(p_rel regclass, p_key text, p_mode text)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    keynum int2;
    why    text := 'Only the table''s owner can create it.';
    msg    text;
BEGIN
    IF p_mode NOT IN ('upsert', 'incremental') THEN
        RETURN;
    END IF;
    SELECT a.attnum INTO keynum FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = p_rel AND a.attname = p_key AND a.attnum > 0 AND NOT a.attisdropped;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                WHERE i.indrelid = p_rel AND i.indisvalid AND i.indkey[0] = keynum AND i.indpred IS NULL
                  AND (p_mode = 'incremental' OR (i.indisunique AND i.indnatts = 1 AND i.indexprs IS NULL))) THEN
        RETURN;
    END IF;
    IF pg_catalog.pg_has_role((SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = p_rel), 'USAGE') THEN
        BEGIN
            EXECUTE pg_catalog.format('CREATE %sINDEX ON %s (%I)',
                                      CASE WHEN p_mode = 'upsert' THEN 'UNIQUE ' ELSE '' END, p_rel, p_key);
            RETURN;
        EXCEPTION WHEN unique_violation OR feature_not_supported THEN
            -- Duplicate keys (the detail names one), or a partitioned
            -- target whose partition key is not the key (the message).
            GET STACKED DIAGNOSTICS why = PG_EXCEPTION_DETAIL, msg = MESSAGE_TEXT;
            why := 'It cannot be created: ' OPERATOR(pg_catalog.||) CASE WHEN why OPERATOR(pg_catalog.<>) '' THEN why ELSE msg OPERATOR(pg_catalog.||) '.' END;
        END;
    ELSIF p_mode = 'incremental' THEN
        RETURN;
    END IF;
    RAISE EXCEPTION 'mode upsert needs a unique index on %(%)', p_rel, p_key
        USING ERRCODE = '22000', DETAIL = why, HINT = pg_catalog.format('CREATE UNIQUE INDEX ON %s (%I);', p_rel, p_key);
END $$;
COMMENT ON FUNCTION mlpipe_internal._key_index(regclass, text, text) IS
    'Creates the index on the key that predict_table''s mode needs (upsert: unique, incremental: plain) when missing.';
REVOKE ALL ON FUNCTION mlpipe_internal._key_index(regclass, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._key_index(regclass, text, text) TO mlpipe_trainer;

-- predict_table on Citus (issue #11): when the source is a hash-distributed
-- Citus table, a new target is created here as a distributed table on the
-- key, co-located with the source when the key is the source's
-- distribution column, so that predict_table's INSERT ... SELECT scores in
-- the shards and writes each shard's rows into the co-located target shard.
-- Returns the new target, or NULL (nothing created) when Citus is not
-- installed or the source is not a distributed table (a view or a query
-- source: predict_table then creates a plain table as before). Columns
-- and their order are those of the plain table predict_table creates.
-- Resolves the caller's source name, so no pinned search_path; everything
-- else is schema-qualified.
CREATE FUNCTION mlpipe_internal._citus_target(source text, target text, key text, key_type regtype, mode text)
RETURNS regclass
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    src_rel  regclass;
    dist_col text;
    tgt      regclass;
BEGIN
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NULL
       OR source OPERATOR(pg_catalog.~*) '^[\s(]*(select|with|values|table)\M' THEN
        RETURN NULL;
    END IF;
    src_rel := pg_catalog.to_regclass(source);
    IF src_rel IS NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE 'SELECT pg_catalog.column_to_column_name(logicalrelid, partkey) FROM pg_catalog.pg_dist_partition '
            'WHERE logicalrelid OPERATOR(pg_catalog.=) $1 AND partmethod OPERATOR(pg_catalog.=) ''h'''
       INTO dist_col USING src_rel;
    IF dist_col IS NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE pg_catalog.format('CREATE TABLE %s (%I %s, prediction double precision, label text, '
                              'proba double precision[], model text, version integer, scored_at timestamptz)',
                              target, key, key_type);
    tgt := pg_catalog.to_regclass(target);
    IF dist_col OPERATOR(pg_catalog.=) key THEN
        PERFORM pg_catalog.create_distributed_table(tgt, key, colocate_with => src_rel::text);
    ELSE
        PERFORM pg_catalog.create_distributed_table(tgt, key);
    END IF;
    IF mode IN ('upsert', 'incremental') THEN
        EXECUTE pg_catalog.format('CREATE %s INDEX ON %s (%I)', CASE WHEN mode = 'upsert' THEN 'UNIQUE' ELSE '' END, target, key);
    END IF;
    EXECUTE pg_catalog.format('GRANT SELECT ON %s TO mlpipe_reader', target);
    RETURN tgt;
END $$;
COMMENT ON FUNCTION mlpipe_internal._citus_target(text, text, text, regtype, text) IS
    'For predict_table on Citus: creates a new target distributed on the key, co-located with a distributed source; NULL otherwise.';
REVOKE ALL ON FUNCTION mlpipe_internal._citus_target(text, text, text, regtype, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._citus_target(text, text, text, regtype, text) TO mlpipe_trainer;

-- The WARNING predict_table raises when the source drifted: how many of
-- the profiled features drifted and the worst three by PSI (a feature that
-- drifted by its null rate alone shows the rates), with where to look next.
CREATE FUNCTION mlpipe_internal._warn_drift(p_model text, p_version int, p_drifted jsonb, p_count int, p_profiled int,
                                            p_threshold float8)
RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    worst text;
BEGIN
    SELECT pg_catalog.string_agg(CASE WHEN (f.e->>'psi'::text)::float8 >= p_threshold
                    THEN pg_catalog.format('%s (PSI %s)', f.e->>'feature'::text,
                                           pg_catalog.round((f.e->>'psi'::text)::numeric, 3))
                    ELSE pg_catalog.format('%s (null rate %s -> %s)', f.e->>'feature'::text,
                                           pg_catalog.round((f.e->>'null_rate_train'::text)::numeric, 3),
                                           pg_catalog.round((f.e->>'null_rate_now'::text)::numeric, 3)) END,
                    ', ' ORDER BY (f.e->>'psi'::text)::float8 DESC NULLS LAST, f.e->>'feature'::text)
      INTO worst
      FROM (SELECT e FROM pg_catalog.jsonb_array_elements(p_drifted) e
             ORDER BY (e->>'psi'::text)::float8 DESC NULLS LAST, e->>'feature'::text LIMIT 3) f;
    RAISE WARNING 'predict_table %@%: % of % feature% drifted (PSI threshold %); worst: %',
        p_model, p_version, p_count, p_profiled, CASE WHEN p_profiled = 1 THEN '' ELSE 's' END, p_threshold, worst
        USING HINT = pg_catalog.format('See SELECT * FROM mlpipe.drift_history WHERE model = %L AND version = %s '
                                       'ORDER BY measured_at DESC; retrain on recent rows if the shift is real.',
                                       p_model, p_version);
END $$;
COMMENT ON FUNCTION mlpipe_internal._warn_drift(text, int, jsonb, int, int, float8) IS
    'Raises predict_table''s drift WARNING: the model@version, how many features drifted, the worst by PSI.';
REVOKE ALL ON FUNCTION mlpipe_internal._warn_drift(text, int, jsonb, int, int, float8) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._warn_drift(text, int, jsonb, int, int, float8) TO mlpipe_trainer;

-- predict_table's params, checked: the drift threshold (default 0.2), the
-- null-rate threshold (0.1) and the drift sample size (20,000; 0: none).
CREATE FUNCTION mlpipe_internal._predict_table_params(params jsonb,
    OUT drift_threshold float8, OUT null_threshold float8, OUT drift_sample int)
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k text;
BEGIN
    IF pg_catalog.jsonb_typeof(params) <> 'object' THEN
        RAISE EXCEPTION 'params must be a JSON object' USING ERRCODE = '22023';
    END IF;
    FOR k IN SELECT pg_catalog.jsonb_object_keys(params) LOOP
        IF k NOT IN ('drift_threshold', 'null_threshold', 'drift_sample') THEN
            RAISE EXCEPTION 'unknown key "%" in predict_table params', k
                USING ERRCODE = '22023', HINT = 'Allowed keys: drift_threshold, null_threshold, drift_sample.';
        END IF;
        IF pg_catalog.jsonb_typeof(params->k) <> 'number' OR (params->>k)::float8 < 0::float8
           OR (k <> 'drift_sample' AND (params->>k)::float8 = 0::float8)
           OR (k = 'drift_sample' AND (params->>k)::numeric NOT BETWEEN 0::numeric AND 10000000::numeric) THEN
            RAISE EXCEPTION 'predict_table params.% must be a positive number (drift_sample: an integer, 0 for no drift)', k
                USING ERRCODE = '22023';
        END IF;
    END LOOP;
    drift_threshold := coalesce((params->>'drift_threshold')::float8, 0.2);
    null_threshold := coalesce((params->>'null_threshold')::float8, 0.1);
    drift_sample := coalesce((params->>'drift_sample')::numeric::int, 20000);
END $$;
COMMENT ON FUNCTION mlpipe_internal._predict_table_params(jsonb) IS
    'Checks predict_table''s params and returns the drift threshold, null-rate threshold and drift sample size.';
REVOKE ALL ON FUNCTION mlpipe_internal._predict_table_params(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._predict_table_params(jsonb) TO mlpipe_trainer;

-- The inputs a NULL in which fails scoring (src/pg/export.c): every input
-- of a k-means model unless preprocessing imputes it, and inputs whose
-- preprocessing has impute = error. Trees route missing values.
CREATE FUNCTION mlpipe_internal._null_intolerant_inputs(model bytea) RETURNS text[]
AS 'MODULE_PATHNAME', 'mlpipe_null_intolerant_inputs'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._null_intolerant_inputs(bytea) IS
    'The raw inputs of a model (columns, x[i] elements) in which a NULL makes scoring fail.';
REVOKE ALL ON FUNCTION mlpipe_internal._null_intolerant_inputs(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._null_intolerant_inputs(bytea) TO mlpipe_trainer;

-- The SQL condition, over the alias src, that a row has a NULL in one of
-- p_inputs (column names, or x[i] for an element of array column x);
-- p_columns maps the source's columns to their type class. NULL when no
-- input is a column or element of the source (nothing can be NULL).
CREATE FUNCTION mlpipe_internal._null_condition(p_inputs text[], p_columns jsonb) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT pg_catalog.string_agg(CASE
               WHEN p_columns ? i THEN pg_catalog.format('src.%I IS NULL', i)
               ELSE pg_catalog.format('(src.%1$I)[%2$s] IS NULL', m[1], m[2]) END, ' OR ' ORDER BY o)
      FROM pg_catalog.unnest(p_inputs) WITH ORDINALITY u(i, o)
           LEFT JOIN LATERAL pg_catalog.regexp_match(i, '^(.*)\[([0-9]{1,6})\]$') m ON true
     WHERE p_columns ? i OR p_columns->>m[1] = 'array'
$$;
COMMENT ON FUNCTION mlpipe_internal._null_condition(text[], jsonb) IS
    'The SQL condition, over the alias src, that a row has a NULL in one of the given inputs.';
REVOKE ALL ON FUNCTION mlpipe_internal._null_condition(text[], jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._null_condition(text[], jsonb) TO mlpipe_trainer;

-- The first row predict_table's scoring fails on, and its error: the rows
-- of the source (FROM and WHERE clause p_from, alias src) are scored one at
-- a time, the float8[] form when p_xexpr is an array expression, else the
-- row form. bad_key is the row's key as text, err_* its error; NULL when
-- every row scores (the error was not a row's). Only run after the bulk
-- statement failed.
CREATE FUNCTION mlpipe_internal._failing_key(p_ref text, p_key text, p_xexpr text, p_from text,
                                    OUT bad_key text, OUT err_state text, OUT err_message text,
                                    OUT err_detail text, OUT err_hint text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    r       record;
    k       text;
    x       float8[];
    scoring boolean := false;
BEGIN
    IF p_xexpr OPERATOR(pg_catalog.=) 'src.*' THEN
        FOR r IN EXECUTE pg_catalog.format('SELECT src.*, (src.%I)::text AS mlpipe_key %s', p_key, p_from) LOOP
            k := r.mlpipe_key;
            scoring := true;
            PERFORM mlpipe.predict(p_ref, r);
            scoring := false;
        END LOOP;
    ELSE
        FOR k, x IN EXECUTE pg_catalog.format('SELECT (src.%I)::text, %s %s', p_key, p_xexpr, p_from) LOOP
            scoring := true;
            PERFORM mlpipe.predict(p_ref, x);
            scoring := false;
        END LOOP;
    END IF;
EXCEPTION WHEN OTHERS THEN
    -- Variables keep their values in the handler: k is the row being
    -- scored (not set when the source query itself failed).
    IF scoring THEN
        bad_key := coalesce(k, 'NULL');
        GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_message = MESSAGE_TEXT,
                                err_detail = PG_EXCEPTION_DETAIL, err_hint = PG_EXCEPTION_HINT;
    END IF;
END $$;
COMMENT ON FUNCTION mlpipe_internal._failing_key(text, text, text, text) IS
    'The key (as text) and error of the first source row that predict_table cannot score; NULL key if every row scores.';
REVOKE ALL ON FUNCTION mlpipe_internal._failing_key(text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._failing_key(text, text, text, text) TO mlpipe_trainer;

-- predict_table's write into a new table (issue #13, src/pg/predict_fill.c):
-- runs the scoring query as the caller and writes its rows into target, a
-- plain table just created by CREATE TABLE AS ... WITH NO DATA, a page at
-- a time as COPY does (CREATE TABLE AS writes a row at a time). The rows
-- written.
CREATE FUNCTION mlpipe_internal._fill_table(target regclass, query text) RETURNS bigint
AS 'MODULE_PATHNAME', 'mlpipe_fill_table'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION mlpipe_internal._fill_table(regclass, text) IS
    'Writes the rows of a query into a table created in this transaction (predict_table''s new target), a page at a time.';
REVOKE ALL ON FUNCTION mlpipe_internal._fill_table(regclass, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._fill_table(regclass, text) TO mlpipe_trainer;

-- The parts of predict_table's scoring SELECT: head (key, prediction and,
-- for a classifier, label and proba), consts (label and proba NULL for
-- other models) and the FROM clause over p_src_sql AS src with p_filter.
-- A classifier is scored once per row: the float8[] form through the
-- _score_* functions, whose calls for one row share an evaluation (the
-- whole projection stays in the parallel workers); the row form with
-- predict and predict_proba in a subquery (OFFSET 0 keeps the planner from
-- pulling it up, which would copy predict into the label column).
-- p_null_if: a condition on src under which the row's prediction, label
-- and proba are NULL instead of scored (on_null = 'null').
CREATE FUNCTION mlpipe_internal._predict_select(p_task text, p_ref text, p_classes text[], p_key text, p_xexpr text,
                                       p_src_sql text, p_filter text, p_null_if text,
                                       OUT head text, OUT from_sql text, OUT consts text)
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    g text := CASE WHEN p_null_if IS NOT NULL THEN pg_catalog.format('CASE WHEN %s THEN NULL ELSE ', p_null_if) ELSE '' END;
    e text := CASE WHEN p_null_if IS NOT NULL THEN ' END' ELSE '' END;
BEGIN
    consts := '';
    from_sql := pg_catalog.format(' FROM %s AS src%s', p_src_sql, p_filter);
    IF p_task OPERATOR(pg_catalog.<>) 'classification' THEN
        head := pg_catalog.format('SELECT src.%1$I, %4$smlpipe.predict(%2$L, %3$s)%5$s AS prediction', p_key, p_ref, p_xexpr, g, e);
        consts := ', NULL::text AS label, NULL::float8[] AS proba';
    ELSIF p_xexpr OPERATOR(pg_catalog.<>) 'src.*' THEN
        head := pg_catalog.format('SELECT src.%1$I, %4$smlpipe_internal._score_class(%2$L, %3$s)%5$s AS prediction, '
                       '%4$smlpipe_internal._score_label(%2$L, %3$s)%5$s AS label, %4$smlpipe_internal._score_proba(%2$L, %3$s)%5$s AS proba',
                       p_key, p_ref, p_xexpr, g, e);
    ELSE
        head := pg_catalog.format('SELECT mlpipe_s.%1$I, mlpipe_s.mlpipe_p AS prediction, '
                       '(%2$L::text[])[mlpipe_s.mlpipe_p::int + 1] AS label, mlpipe_s.mlpipe_pb AS proba',
                       p_key, p_classes);
        from_sql := pg_catalog.format(' FROM (SELECT src.%1$I, %5$smlpipe.predict(%2$L, src.*)%6$s AS mlpipe_p, '
                           '%5$smlpipe.predict_proba(%2$L, src.*)%6$s AS mlpipe_pb '
                           'FROM %3$s AS src%4$s OFFSET 0) AS mlpipe_s',
                           p_key, p_ref, p_src_sql, p_filter, g, e);
    END IF;
END $$;
COMMENT ON FUNCTION mlpipe_internal._predict_select(text, text, text[], text, text, text, text, text) IS
    'The SELECT list and FROM clause of predict_table''s scoring statement.';
REVOKE ALL ON FUNCTION mlpipe_internal._predict_select(text, text, text[], text, text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe_internal._predict_select(text, text, text[], text, text, text, text, text) TO mlpipe_trainer;

-- Scores every row of a source into a table: (key, prediction, label,
-- proba, model, version, scored_at). One INSERT ... SELECT streams the
-- source through the executor (nothing is materialised); a new target is
-- written with CREATE TABLE AS (indexed on the key in modes upsert and
-- incremental only: _key_index). Logs a run with
-- rows, seconds and drift figures, and sends predictions_written (and
-- drift_detected). Runs as the caller: the source and the target are read
-- and written with the caller's privileges. The target is named by
-- target_table, or by "into" (positional calls; a reserved word, so named
-- calls would have to quote it). on_null: what a row with a NULL the model
-- cannot take gets: an error naming its key (error), left out (skip), or
-- a NULL prediction (null). Errors come out with their own SQLSTATE,
-- message, detail and hint, without the generated SQL as context, and name
-- the key of the row they are about.
CREATE FUNCTION mlpipe.predict_table(model_ref text, source text, "into" text DEFAULT NULL, key text DEFAULT NULL,
                                     mode text DEFAULT 'append', params jsonb DEFAULT '{}',
                                     on_null text DEFAULT 'error', target_table text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    started    timestamptz := pg_catalog.clock_timestamp();
    info       record;
    ref        text;
    tgt        record;
    rel        regclass;
    key_type   regtype;
    cols       jsonb;
    src_sql    text;
    head       text;
    consts     text;
    from_sql   text;
    old_par    text[];
    xexpr      text;
    conds      text[] := '{}';
    filt       text := '';
    scored_from text;
    nullc      text;
    n          bigint;
    skipped    bigint := 0;
    k          text;
    threshold  float8;
    null_thr   float8;
    sample     int;
    metrics    jsonb := '{}';
    drifted    jsonb := '[]';
    d          record;
    bad        record;
    run        bigint;
    e_state    text;
    e_msg      text;
    e_detail   text;
    e_hint     text;
    scoring    boolean := false;
BEGIN
    -- Everyone may call it; who may is checked here, to name the role to
    -- grant (issue #12). What it calls stays granted to mlpipe_trainer only.
    IF NOT pg_catalog.pg_has_role(current_user, 'mlpipe_trainer', 'MEMBER') THEN
        RAISE EXCEPTION 'permission denied for function predict_table' USING ERRCODE = '42501',
            HINT = pg_catalog.format('GRANT mlpipe_trainer TO %I;', current_user);
    END IF;
    IF model_ref IS NULL OR source IS NULL THEN
        RAISE EXCEPTION 'model_ref and source must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF "into" IS NULL AND target_table IS NULL THEN
        RAISE EXCEPTION 'predict_table needs a target table'
            USING ERRCODE = '22023', HINT = 'Name it with target_table => ''scores'' (or as the third argument).';
    END IF;
    IF "into" IS NOT NULL AND target_table IS NOT NULL THEN
        RAISE EXCEPTION '"into" and target_table both name a target table'
            USING ERRCODE = '22023', HINT = 'Pass one of them: target_table in named calls, the third argument in positional ones.';
    END IF;
    IF key IS NULL THEN
        RAISE EXCEPTION 'key must not be NULL' USING ERRCODE = '22004',
            HINT = 'Name the source column that identifies a row, e.g. key => ''id''.';
    END IF;
    IF mode IS NULL OR mode NOT IN ('append', 'replace', 'upsert', 'incremental') THEN
        RAISE EXCEPTION 'unknown mode %', coalesce(pg_catalog.quote_literal(mode), 'NULL')
            USING ERRCODE = '22023', HINT = 'Modes: append, replace, upsert, incremental.';
    END IF;
    IF on_null IS NULL OR on_null NOT IN ('error', 'skip', 'null') THEN
        RAISE EXCEPTION 'unknown on_null %', coalesce(pg_catalog.quote_literal(on_null), 'NULL')
            USING ERRCODE = '22023', HINT = 'on_null: error (the default), skip or null.';
    END IF;
    params := coalesce(params, '{}');
    SELECT * INTO threshold, null_thr, sample FROM mlpipe_internal._predict_table_params(params);

    SELECT * INTO info FROM mlpipe_internal._scoring_info(model_ref);
    ref := info.model OPERATOR(pg_catalog.||) '@' OPERATOR(pg_catalog.||) info.version;          -- one version for the whole run
    SELECT s.type INTO key_type FROM mlpipe_internal._source_columns(source) s WHERE s.name = key;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'key column "%" is not in the source', key
            USING ERRCODE = '42703',
                  HINT = 'Columns: ' OPERATOR(pg_catalog.||) (SELECT pg_catalog.string_agg(s.name, ', ' ORDER BY s.ord) FROM mlpipe_internal._source_columns(source) s) OPERATOR(pg_catalog.||) '.';
    END IF;
    IF key IN ('prediction', 'label', 'proba', 'model', 'version', 'scored_at') THEN
        RAISE EXCEPTION 'key column "%" has the name of an output column', key
            USING ERRCODE = '22023', HINT = 'Rename it in a query source, e.g. SELECT model AS model_key, ...';
    END IF;
    src_sql := mlpipe_internal._source_sql(source);
    -- A relation source is read as itself, not as a subquery: on Citus the
    -- whole row of a subquery reaches the shards without its column names
    -- (the row form refuses it), a table's whole row keeps its type.
    IF src_sql LIKE 'SELECT * FROM %' AND source !~* '^[[:space:](]*(select|with|values|table)([[:space:](]|$)' THEN
        src_sql := pg_catalog.substr(src_sql, 15);
    ELSE
        src_sql := '(' || src_sql || ')';
    END IF;
    SELECT * INTO tgt FROM mlpipe_internal._parse_into(coalesce(target_table, "into"));
    -- Runs into one target serialise (issue #10): two concurrent replace or
    -- incremental runs would each insert every key, and with a unique index
    -- the second would fail with a raw 23505. The lock is on the target's
    -- schema-qualified name (the schema it would be created in when it does
    -- not exist yet) and lasts until the transaction ends; every statement
    -- below takes its snapshot after it (READ COMMITTED), so the second run
    -- sees the first one's rows.
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext(
        'mlpipe.predict_table ' OPERATOR(pg_catalog.||) coalesce(
            (SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)
               FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
              WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(tgt.qualified)),
            CASE WHEN pg_catalog.cardinality(pg_catalog.parse_ident(tgt.qualified)) OPERATOR(pg_catalog.=) 1
                 THEN pg_catalog.format('%I.%s', pg_catalog.current_schema(), tgt.qualified)
                 ELSE tgt.qualified END)));
    rel := pg_catalog.to_regclass(tgt.qualified);

    IF rel IS NOT NULL THEN
        PERFORM mlpipe_internal._check_target(rel, key, key_type);
        PERFORM mlpipe_internal._key_index(rel, key, mode);
        IF mode = 'incremental' THEN
            conds := conds OPERATOR(pg_catalog.||) pg_catalog.format('NOT EXISTS (SELECT 1 FROM %s AS t WHERE t.%I = src.%I AND t.model = %L AND t.version = %s)',
                           tgt.qualified, key, key, info.model, info.version);
        END IF;
    END IF;
    -- on_null skip or null: the condition that a row has a NULL the model
    -- cannot take; skip leaves such rows out (and counts them below).
    IF on_null <> 'error' THEN
        SELECT pg_catalog.jsonb_object_agg(s.name, mlpipe_internal._type_class(s.type)) INTO cols FROM mlpipe_internal._source_columns(source) s;
        nullc := mlpipe_internal._null_condition(mlpipe_internal._null_intolerant_inputs(mlpipe.artifact(ref)), cols);
    END IF;
    IF on_null = 'skip' AND nullc IS NOT NULL THEN
        EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM %s AS src WHERE %s', src_sql,
                                  pg_catalog.array_to_string(conds OPERATOR(pg_catalog.||) pg_catalog.format('(%s)', nullc), ' AND '))
            INTO skipped;
        conds := conds OPERATOR(pg_catalog.||) pg_catalog.format('NOT (%s)', nullc);
    END IF;
    IF pg_catalog.cardinality(conds) > 0 THEN
        filt := ' WHERE ' OPERATOR(pg_catalog.||) pg_catalog.array_to_string(conds, ' AND ');
    END IF;
    -- The rows a failed scoring statement is searched in for its bad row:
    -- those it scored (on_null = 'null': not the rows it wrote as NULL).
    IF on_null = 'null' AND nullc IS NOT NULL THEN
        conds := conds OPERATOR(pg_catalog.||) pg_catalog.format('NOT (%s)', nullc);
    END IF;
    scored_from := pg_catalog.format('FROM %s AS src', src_sql) OPERATOR(pg_catalog.||) CASE WHEN pg_catalog.cardinality(conds) > 0
        THEN ' WHERE ' OPERATOR(pg_catalog.||) pg_catalog.array_to_string(conds, ' AND ') ELSE '' END;
    -- Rows are scored with the row form of predict (columns matched by name,
    -- stored preprocessing applied), or, for a model without preprocessing
    -- whose features are numeric columns of the source, with the float8[]
    -- form, which gives the same predictions without building a row value.
    -- prediction: the value, cluster or class index; label and proba for
    -- classification only.
    IF NOT mlpipe_internal._has_preprocessing(mlpipe.artifact(ref)) THEN
        xexpr := mlpipe_internal._feature_array_expr(info.features, source);
    END IF;
    -- src.*, not a bare src, which a source column named src would capture.
    xexpr := coalesce(xexpr, 'src.*');
    -- The SELECT: head (per-row columns), consts (the same on every row:
    -- a new table gets them as added columns, below) and FROM.
    SELECT * INTO head, from_sql, consts FROM mlpipe_internal._predict_select(info.task, ref, info.classes, key, xexpr, src_sql, filt,
                                                                     CASE WHEN on_null = 'null' THEN nullc END);
    consts := consts OPERATOR(pg_catalog.||) pg_catalog.format(', %L::text AS model, %s::int AS version, pg_catalog.now() AS scored_at',
                               info.model, info.version);
    -- Ensembles cost microseconds a row to score: for the scoring statement,
    -- make a parallel scan of the source attractive so that CREATE TABLE AS
    -- scores in at most mlpipe.threads parallel workers (more than the CPUs
    -- only add their start-up). A single tree or k-means scores faster
    -- than a worker hands rows back, so the caller's settings stay.
    old_par := ARRAY[pg_catalog.current_setting('parallel_tuple_cost'), pg_catalog.current_setting('parallel_setup_cost'), pg_catalog.current_setting('max_parallel_workers_per_gather')];
    IF info.algorithm IN ('gbt', 'random_forest') THEN
        PERFORM pg_catalog.set_config('parallel_tuple_cost', '0.001', true), pg_catalog.set_config('parallel_setup_cost', '10', true),
                pg_catalog.set_config('max_parallel_workers_per_gather', LEAST(old_par[3]::int, coalesce(pg_catalog.current_setting('mlpipe.threads', true)::int, old_par[3]::int))::text, true);
    END IF;

    -- On Citus, a new target for a distributed source is created
    -- distributed and co-located, then filled by the INSERT below.
    IF rel IS NULL THEN
        rel := mlpipe_internal._citus_target(source, tgt.qualified, key, key_type, mode);
    END IF;
    -- The scoring statement (a data error in it names the failing row's
    -- key: see the handler at the end).
    scoring := true;
    IF rel IS NULL THEN
        -- A new table: the per-row columns only (CREATE TABLE AS, WITH NO DATA), filled a
        -- page at a time by _fill_table; model, version and scored_at are the same on every
        -- row, so they are added afterwards with that value as default,
        -- which PostgreSQL stores once in the catalog instead of in each row
        -- (no rewrite; readers see the value on every row). Key index: below.
        EXECUTE pg_catalog.format('CREATE TABLE %s AS %s%s WITH NO DATA', tgt.qualified, head, from_sql);
        n := mlpipe_internal._fill_table(pg_catalog.to_regclass(tgt.qualified), head OPERATOR(pg_catalog.||) from_sql);
        scoring := false;
        PERFORM pg_catalog.set_config('parallel_tuple_cost', old_par[1], true), pg_catalog.set_config('parallel_setup_cost', old_par[2], true), pg_catalog.set_config('max_parallel_workers_per_gather', old_par[3], true);
        EXECUTE pg_catalog.format('ALTER TABLE %s %s ADD COLUMN model text DEFAULT %L, ADD COLUMN version integer DEFAULT %s, '
                       'ADD COLUMN scored_at timestamptz DEFAULT pg_catalog.now()', tgt.qualified,
                       CASE WHEN info.task = 'classification' THEN ''
                            ELSE 'ADD COLUMN label text, ADD COLUMN proba double precision[],' END,
                       info.model, info.version);
        EXECUTE pg_catalog.format('ALTER TABLE %s ALTER COLUMN model DROP DEFAULT, ALTER COLUMN version DROP DEFAULT',
                       tgt.qualified);
        PERFORM mlpipe_internal._key_index(pg_catalog.to_regclass(tgt.qualified), key, mode);
        -- Readers read prediction tables (docs/security.md).
        EXECUTE pg_catalog.format('GRANT SELECT ON %s TO mlpipe_reader', tgt.qualified);
    ELSE
        IF mode = 'replace' THEN
            EXECUTE pg_catalog.format('DELETE FROM %s', tgt.qualified);
        END IF;
        EXECUTE pg_catalog.format('INSERT INTO %s (%I, prediction, label, proba, model, version, scored_at) %s%s%s%s',
                       tgt.qualified, key, head, consts, from_sql,
                       CASE WHEN mode = 'upsert' THEN pg_catalog.format(
                           ' ON CONFLICT (%I) DO UPDATE SET prediction = EXCLUDED.prediction, label = EXCLUDED.label, '
                           'proba = EXCLUDED.proba, model = EXCLUDED.model, version = EXCLUDED.version, '
                           'scored_at = EXCLUDED.scored_at', key) ELSE '' END);
        GET DIAGNOSTICS n = ROW_COUNT;
        scoring := false;
        PERFORM pg_catalog.set_config('parallel_tuple_cost', old_par[1], true), pg_catalog.set_config('parallel_setup_cost', old_par[2], true), pg_catalog.set_config('max_parallel_workers_per_gather', old_par[3], true);
    END IF;
    IF skipped > 0 THEN
        RAISE NOTICE 'predict_table %: left out % source row% with a NULL the model cannot take (on_null = skip)',
            ref, skipped, CASE WHEN skipped = 1 THEN '' ELSE 's' END;
    END IF;

    -- Drift of the source against the training profile, on a sample.
    IF info.profile IS NOT NULL AND sample > 0 AND n > 0 THEN
        FOR d IN SELECT * FROM mlpipe_internal._drift_figures(info.profile, source,
                     CASE WHEN n <= sample THEN 1 ELSE sample::float8 / n::float8 END) LOOP
            metrics := metrics OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('psi:' OPERATOR(pg_catalog.||) d.feature, d.psi,
                                                     'null_rate:' OPERATOR(pg_catalog.||) d.feature, d.null_rate_now);
            IF mlpipe_internal._drift_status(d.psi, d.null_rate_train, d.null_rate_now, threshold, null_thr) = 'drift' THEN
                drifted := drifted OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('feature', d.feature, 'psi', d.psi,
                                                         'null_rate_train', d.null_rate_train,
                                                         'null_rate_now', d.null_rate_now);
            END IF;
        END LOOP;
        metrics := metrics OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('drifted_features', pg_catalog.jsonb_array_length(drifted));
    END IF;
    metrics := metrics OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('rows_per_second',
        n::float8 / greatest(extract(epoch FROM pg_catalog.clock_timestamp() - started)::float8, 1e-6));
    IF skipped > 0 THEN
        metrics := metrics OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('skipped_rows', skipped);
    END IF;
    run := mlpipe_internal._log_run('predict_table', info.model, info.version, info.algorithm, source,
        pg_catalog.jsonb_build_object('model_ref', model_ref, 'into', tgt.display, 'key', key, 'mode', mode, 'params', params,
                                      'on_null', on_null),
        'succeeded', NULL, n, started, NULL, metrics, 'scoring');
    PERFORM mlpipe_internal._notify('predictions_written', pg_catalog.jsonb_build_object('model', info.model, 'version', info.version,
        'run_id', run, 'rows', n, 'into', tgt.display));
    IF pg_catalog.jsonb_array_length(drifted) > 0 THEN
        PERFORM mlpipe_internal._notify('drift_detected', pg_catalog.jsonb_build_object('model', info.model, 'version', info.version,
            'run_id', run, 'rows', n, 'into', tgt.display, 'threshold', threshold, 'features', drifted));
        -- Also said to the caller, who may not be listening (issue #12).
        PERFORM mlpipe_internal._warn_drift(info.model, info.version, drifted, pg_catalog.jsonb_array_length(drifted),
            (SELECT pg_catalog.count(*)::int FROM pg_catalog.jsonb_object_keys(metrics) m(k) WHERE m.k LIKE 'psi:%'),
            threshold);
    END IF;
    RETURN n;
EXCEPTION WHEN OTHERS THEN
    -- The error as the caller should read it: its SQLSTATE, message, detail
    -- and hint, with this line as the only context (not the nested calls
    -- and generated statements it came through).
    GET STACKED DIAGNOSTICS e_state = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT, e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
    -- A data error of the scoring statement: find the row, name its key
    -- (not for the row form's errors about the source's columns, which
    -- every row has).
    IF scoring AND e_state LIKE '22%' AND e_msg NOT LIKE 'the row has no column%'
       AND e_msg NOT LIKE 'column "%" has type %, but the model takes it as %' THEN
        -- The row's own error is reported (a source with several bad rows
        -- may fail the bulk statement on another one first).
        SELECT * INTO bad FROM mlpipe_internal._failing_key(ref, key, xexpr, scored_from);
        IF bad.bad_key IS NOT NULL THEN
            e_state := bad.err_state;
            e_detail := bad.err_detail;
            e_hint := bad.err_hint;
            e_msg := bad.err_message OPERATOR(pg_catalog.||) pg_catalog.format(
                CASE WHEN bad.err_message LIKE '%is NULL' THEN ' in the row with %s = %s' ELSE ' (in the row with %s = %s)' END,
                key, bad.bad_key);
        END IF;
        IF e_msg LIKE '%is NULL%' THEN
            e_hint := 'Pass on_null => ''skip'' (leave such rows out) or ''null'' (write a NULL prediction), '
                      'or impute the value (params.preprocess when training).';
        END IF;
    END IF;
    IF e_detail = '' AND e_hint = '' THEN
        RAISE EXCEPTION USING ERRCODE = e_state, MESSAGE = e_msg;
    ELSIF e_detail = '' THEN
        RAISE EXCEPTION USING ERRCODE = e_state, MESSAGE = e_msg, HINT = e_hint;
    ELSIF e_hint = '' THEN
        RAISE EXCEPTION USING ERRCODE = e_state, MESSAGE = e_msg, DETAIL = e_detail;
    END IF;
    RAISE EXCEPTION USING ERRCODE = e_state, MESSAGE = e_msg, DETAIL = e_detail, HINT = e_hint;
END $$;
COMMENT ON FUNCTION mlpipe.predict_table(text, text, text, text, text, jsonb, text, text) IS
    'Scores every row of a source into a table (append, replace, upsert or incremental mode); target_table names the table.';
REVOKE ALL ON FUNCTION mlpipe.predict_table(text, text, text, text, text, jsonb, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.predict_table(text, text, text, text, text, jsonb, text, text) TO mlpipe_trainer;
GRANT EXECUTE ON FUNCTION mlpipe.predict_table(text, text, text, text, text, jsonb, text, text) TO PUBLIC;

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
