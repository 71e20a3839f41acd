-- mlpipe 0.1.0 -> 0.2.0: tree models (decision_tree, random_forest, gbt).
-- Training goes through the existing mlpipe.train / mlpipe._fit; this adds
-- class labels, probabilities and feature importance.
\echo Use "ALTER EXTENSION mlpipe UPDATE TO '0.2.0'" to load this file. \quit

CREATE OR REPLACE FUNCTION mlpipe.version() RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT '0.2.0'::text $$;

-- The class label as trained (text), for classification models.
CREATE FUNCTION mlpipe.predict_label(model_ref text, features float8[]) RETURNS text
AS 'MODULE_PATHNAME', 'mlpipe_predict_label_ref'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE FUNCTION mlpipe.predict_label(model bytea, features float8[]) RETURNS text
AS 'MODULE_PATHNAME', 'mlpipe_predict_label_bytea'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- One probability per class, in the order of mlpipe.classes(model_ref).
CREATE FUNCTION mlpipe.predict_proba(model_ref text, features float8[]) RETURNS float8[]
AS 'MODULE_PATHNAME', 'mlpipe_predict_proba_ref'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE FUNCTION mlpipe.predict_proba(model bytea, features float8[]) RETURNS float8[]
AS 'MODULE_PATHNAME', 'mlpipe_predict_proba_bytea'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION mlpipe._importance(model bytea) RETURNS float8[]
AS 'MODULE_PATHNAME', 'mlpipe_importance_bytea'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- Normalised total gain per feature, largest first.
CREATE FUNCTION mlpipe.feature_importance(model_ref text)
RETURNS TABLE (feature text, importance float8)
LANGUAGE sql STABLE STRICT AS $$
    SELECT f, i FROM unnest(mlpipe.features(model_ref), mlpipe._importance(mlpipe.artifact(model_ref))) AS t(f, i)
     ORDER BY i DESC, f
$$;
