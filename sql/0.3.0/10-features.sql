-- Feature aggregates: mlpipe.ts_features(ts, value) and mlpipe.summary(value).
-- Each group keeps its readings and computes every figure exactly at the end
-- from the readings sorted by (ts, value), so results do not depend on row
-- order or on the parallel plan. See docs/features.md.
CREATE TYPE mlpipe.ts_summary AS (
    n               bigint,   -- readings used (value and ts not NULL, value not NaN)
    n_null          bigint,   -- rows with a NULL/NaN value or a NULL ts
    mean            float8,
    std             float8,   -- sample standard deviation, like stddev()
    min             float8,
    max             float8,
    q05             float8,   -- quantiles: exact, interpolated like percentile_cont
    q25             float8,
    median          float8,
    q75             float8,
    q95             float8,
    skewness        float8,   -- adjusted Fisher-Pearson (scipy bias=False, pandas)
    kurtosis        float8,   -- adjusted excess kurtosis (scipy bias=False, pandas)
    slope           float8,   -- least-squares slope of value per hour, like regr_slope
    first           float8,   -- value of the earliest reading
    last            float8,   -- value of the latest reading
    mean_abs_change float8,   -- mean |v[i+1] - v[i]| in time order
    autocorr_lag1   float8,   -- Pearson correlation of v[i] and v[i+1] (pandas autocorr)
    longest_gap     float8    -- longest time between consecutive readings, in seconds
);

CREATE TYPE mlpipe.value_summary AS (
    n bigint, n_null bigint, mean float8, std float8, min float8, max float8,
    q05 float8, q25 float8, median float8, q75 float8, q95 float8,
    skewness float8, kurtosis float8
);

CREATE FUNCTION mlpipe._ts_features_trans(internal, timestamptz, float8) RETURNS internal
AS 'MODULE_PATHNAME', 'mlpipe_ts_features_trans' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION mlpipe._summary_trans(internal, float8) RETURNS internal
AS 'MODULE_PATHNAME', 'mlpipe_summary_trans' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION mlpipe._features_combine(internal, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'mlpipe_features_combine' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION mlpipe._features_serial(internal) RETURNS bytea
AS 'MODULE_PATHNAME', 'mlpipe_features_serial' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION mlpipe._features_deserial(bytea, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'mlpipe_features_deserial' LANGUAGE C STRICT PARALLEL SAFE;
CREATE FUNCTION mlpipe._ts_features_final(internal) RETURNS mlpipe.ts_summary
AS 'MODULE_PATHNAME', 'mlpipe_ts_features_final' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION mlpipe._summary_final(internal) RETURNS mlpipe.value_summary
AS 'MODULE_PATHNAME', 'mlpipe_summary_final' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;

-- The final functions sort the state's readings in place: the same readings,
-- so the state stays valid (READ_ONLY in effect) and window frames can grow.
CREATE AGGREGATE mlpipe.ts_features(ts timestamptz, value float8) (
    SFUNC = mlpipe._ts_features_trans,
    STYPE = internal,
    FINALFUNC = mlpipe._ts_features_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = mlpipe._features_combine,
    SERIALFUNC = mlpipe._features_serial,
    DESERIALFUNC = mlpipe._features_deserial,
    PARALLEL = SAFE
);
CREATE AGGREGATE mlpipe.summary(value float8) (
    SFUNC = mlpipe._summary_trans,
    STYPE = internal,
    FINALFUNC = mlpipe._summary_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = mlpipe._features_combine,
    SERIALFUNC = mlpipe._features_serial,
    DESERIALFUNC = mlpipe._features_deserial,
    PARALLEL = SAFE
);

-- Support functions take internal and are only called through the aggregates
-- (whose owner's EXECUTE right PostgreSQL checks), so nobody needs them
-- directly. The aggregates are pure computations on the caller's values: PUBLIC.
REVOKE ALL ON FUNCTION mlpipe._ts_features_trans(internal, timestamptz, float8) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._summary_trans(internal, float8) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._features_combine(internal, internal) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._features_serial(internal) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._features_deserial(bytea, internal) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._ts_features_final(internal) FROM PUBLIC;
REVOKE ALL ON FUNCTION mlpipe._summary_final(internal) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.ts_features(timestamptz, float8) TO PUBLIC;
GRANT EXECUTE ON FUNCTION mlpipe.summary(float8) TO PUBLIC;
