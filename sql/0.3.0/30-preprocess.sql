-- Preprocessing and row-form scoring (docs/preprocessing.md).
-- Row forms of predict, predict_label and predict_proba: the row's columns
-- are matched to the model's raw inputs by name (extra columns ignored),
-- once per statement and row type, and the stored preprocessing applied.
CREATE FUNCTION mlpipe.predict(model_ref text, "row" record) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_predict_row_ref'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE FUNCTION mlpipe.predict(model bytea, "row" record) RETURNS float8
AS 'MODULE_PATHNAME', 'mlpipe_predict_row_bytea'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION mlpipe.predict_label(model_ref text, "row" record) RETURNS text
AS 'MODULE_PATHNAME', 'mlpipe_predict_label_row_ref'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE FUNCTION mlpipe.predict_label(model bytea, "row" record) RETURNS text
AS 'MODULE_PATHNAME', 'mlpipe_predict_label_row_bytea'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION mlpipe.predict_proba(model_ref text, "row" record) RETURNS float8[]
AS 'MODULE_PATHNAME', 'mlpipe_predict_proba_row_ref'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE FUNCTION mlpipe.predict_proba(model bytea, "row" record) RETURNS float8[]
AS 'MODULE_PATHNAME', 'mlpipe_predict_proba_row_bytea'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- By name: scorers and up. By artifact: the caller already holds the bytes
-- (the float8[] bytea forms are PUBLIC too), so they stay PUBLIC.
REVOKE ALL ON FUNCTION mlpipe.predict(text, record) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe.predict_label(text, record) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe.predict_proba(text, record) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.predict(text, record) TO mlpipe_scorer;
GRANT EXECUTE ON FUNCTION mlpipe.predict_label(text, record) TO mlpipe_scorer;
GRANT EXECUTE ON FUNCTION mlpipe.predict_proba(text, record) TO mlpipe_scorer;
