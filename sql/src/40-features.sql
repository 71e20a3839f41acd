--------------------------------------------------------------------------
-- 40-features: the ts_features and summary aggregates. See docs/features.md.
--------------------------------------------------------------------------

CREATE FUNCTION mlpipe_internal._ts_features_trans(mlpipe.agg_state, timestamptz, float8) RETURNS mlpipe.agg_state
AS 'MODULE_PATHNAME', 'mlpipe_ts_features_trans' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._ts_features_trans(mlpipe.agg_state, timestamptz, float8) IS
    'Transition function of the ts_features aggregates.';
REVOKE ALL ON FUNCTION mlpipe_internal._ts_features_trans(mlpipe.agg_state, timestamptz, float8) FROM PUBLIC;

CREATE FUNCTION mlpipe_internal._summary_trans(mlpipe.agg_state, float8) RETURNS mlpipe.agg_state
AS 'MODULE_PATHNAME', 'mlpipe_summary_trans' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._summary_trans(mlpipe.agg_state, float8) IS
    'Transition function of the summary aggregates.';
REVOKE ALL ON FUNCTION mlpipe_internal._summary_trans(mlpipe.agg_state, float8) FROM PUBLIC;

CREATE FUNCTION mlpipe_internal._features_combine(mlpipe.agg_state, mlpipe.agg_state) RETURNS mlpipe.agg_state
AS 'MODULE_PATHNAME', 'mlpipe_features_combine' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._features_combine(mlpipe.agg_state, mlpipe.agg_state) IS
    'Combine function of the ts_features and summary aggregates (parallel aggregation).';
REVOKE ALL ON FUNCTION mlpipe_internal._features_combine(mlpipe.agg_state, mlpipe.agg_state) FROM PUBLIC;

CREATE FUNCTION mlpipe_internal._ts_features_final(mlpipe.agg_state) RETURNS mlpipe.ts_summary
AS 'MODULE_PATHNAME', 'mlpipe_ts_features_final' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._ts_features_final(mlpipe.agg_state) IS 'Final function of mlpipe.ts_features.';
REVOKE ALL ON FUNCTION mlpipe_internal._ts_features_final(mlpipe.agg_state) FROM PUBLIC;

CREATE FUNCTION mlpipe_internal._summary_final(mlpipe.agg_state) RETURNS mlpipe.value_summary
AS 'MODULE_PATHNAME', 'mlpipe_summary_final' LANGUAGE C CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION mlpipe_internal._summary_final(mlpipe.agg_state) IS 'Final function of mlpipe.summary.';
REVOKE ALL ON FUNCTION mlpipe_internal._summary_final(mlpipe.agg_state) FROM PUBLIC;

-- The final functions sort the state's readings in place: the same readings,
-- so the state stays valid (READ_ONLY in effect) and window frames can grow.
-- SSPACE = 8176: the planner's estimate of a state stays the 8 kB it was for
-- `internal` (8176 + 16), so plans and hash-table limits do not change.
CREATE AGGREGATE mlpipe.ts_features(ts timestamptz, value float8) (
    SFUNC = mlpipe_internal._ts_features_trans,
    STYPE = mlpipe.agg_state,
    SSPACE = 8176,
    FINALFUNC = mlpipe_internal._ts_features_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = mlpipe_internal._features_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE mlpipe.ts_features(timestamptz, float8) IS
    'Summary of a time series in one pass: moments, quantiles, slope, changes, autocorrelation and gaps.';
GRANT EXECUTE ON FUNCTION mlpipe.ts_features(timestamptz, float8) TO PUBLIC;

CREATE AGGREGATE mlpipe.summary(value float8) (
    SFUNC = mlpipe_internal._summary_trans,
    STYPE = mlpipe.agg_state,
    SSPACE = 8176,
    FINALFUNC = mlpipe_internal._summary_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = mlpipe_internal._features_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE mlpipe.summary(float8) IS
    'Distribution summary of a column: n, n_null, mean, std, min, max, quantiles, skewness and kurtosis.';
GRANT EXECUTE ON FUNCTION mlpipe.summary(float8) TO PUBLIC;
