-- The training profile's decile edges come from a selection of the ranks
-- (src/pg/profile.c select_ranks), not a sort: with every row in the sample
-- they must be SQL's percentile_disc at 0, 0.1, ..., 1 (duplicates removed),
-- and the counts _bin_of's, for columns full of ties, skewed and constant.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS t_profile_deciles CASCADE;
CREATE SCHEMA t_profile_deciles;
SET search_path = t_profile_deciles, public;
CREATE TABLE pts AS
SELECT i,
       (i * 7919 % 5)::float8 AS ties,
       ((i * 104729 % 3001) / 7.0)::float8 AS spread,
       CASE WHEN i % 50 = 0 THEN 1.0 ELSE 0.0 END::float8 AS mostly_zero,
       exp((i * 31 % 997) / 100.0)::float8 AS skewed,
       ARRAY[(i % 3)::float8, -(i * 13 % 101)::float8] AS x
  FROM generate_series(1, 2999) i;
SELECT 1 FROM mlpipe.train('pd_km', 'kmeans',
  'SELECT ties, spread, mostly_zero, skewed, x FROM t_profile_deciles.pts', NULL,
  params => '{"k": 2, "profile_sample": 100000, "sample_size": 100}');
CREATE TABLE expect AS
SELECT 'ties' AS feature, percentile_disc(ARRAY[0, .1, .2, .3, .4, .5, .6, .7, .8, .9, 1]) WITHIN GROUP (ORDER BY ties) AS p FROM pts
UNION ALL SELECT 'spread', percentile_disc(ARRAY[0, .1, .2, .3, .4, .5, .6, .7, .8, .9, 1]) WITHIN GROUP (ORDER BY spread) FROM pts
UNION ALL SELECT 'mostly_zero', percentile_disc(ARRAY[0, .1, .2, .3, .4, .5, .6, .7, .8, .9, 1]) WITHIN GROUP (ORDER BY mostly_zero) FROM pts
UNION ALL SELECT 'skewed', percentile_disc(ARRAY[0, .1, .2, .3, .4, .5, .6, .7, .8, .9, 1]) WITHIN GROUP (ORDER BY skewed) FROM pts
UNION ALL SELECT 'x[1]', percentile_disc(ARRAY[0, .1, .2, .3, .4, .5, .6, .7, .8, .9, 1]) WITHIN GROUP (ORDER BY x[1]) FROM pts
UNION ALL SELECT 'x[2]', percentile_disc(ARRAY[0, .1, .2, .3, .4, .5, .6, .7, .8, .9, 1]) WITHIN GROUP (ORDER BY x[2]) FROM pts;
-- edges: the distinct percentiles in order; one row per feature
SELECT f->>'feature' AS feature,
       ARRAY(SELECT (e)::float8 FROM jsonb_array_elements_text(f->'edges') e)
         = ARRAY(SELECT DISTINCT v FROM unnest(x.p) v ORDER BY v) AS edges_equal,
       jsonb_array_length(f->'edges') AS n_edges,
       (SELECT sum(c::bigint) FROM jsonb_array_elements_text(f->'counts') c) AS counted
  FROM jsonb_array_elements(mlpipe.profile('pd_km')->'features') f
  JOIN expect x ON x.feature = f->>'feature'
 ORDER BY 1;
-- counts: every value in the bin _bin_of puts it in
SELECT f->>'feature' AS feature,
       ARRAY(SELECT c::bigint FROM jsonb_array_elements_text(f->'counts') c)
         = ARRAY(SELECT count(b.k) FROM generate_series(0, 2 * jsonb_array_length(f->'edges')) g
                   LEFT JOIN (SELECT mlpipe_internal._bin_of(v, ARRAY(SELECT (e)::float8 FROM jsonb_array_elements_text(f->'edges') e)) AS k
                                FROM (SELECT CASE f->>'feature' WHEN 'ties' THEN ties WHEN 'spread' THEN spread
                                             WHEN 'mostly_zero' THEN mostly_zero WHEN 'skewed' THEN skewed
                                             WHEN 'x[1]' THEN x[1] ELSE x[2] END AS v FROM pts) s) b
                     ON b.k = g
                  GROUP BY g ORDER BY g) AS counts_equal
  FROM jsonb_array_elements(mlpipe.profile('pd_km')->'features') f
 ORDER BY 1;
-- Drift counts of float8[] elements (issue #13): one _elem_bin_counts per
-- array column gives the counts the per-element expressions gave. Over the
-- training rows every PSI is 0 (the counts are the profile's); a shifted
-- source with NULL elements gives the same figures as the same values in a
-- real[] column (counted the per-element way).
SELECT feature, psi = 0 AS psi_zero, null_rate_now, rows_now
  FROM mlpipe_internal._drift_figures(mlpipe.profile('pd_km'), 'pts') ORDER BY feature;
CREATE VIEW shifted AS
SELECT i, ties, spread + 1 AS spread, mostly_zero, skewed,
       ARRAY[x[1] + 1, CASE WHEN i % 4 = 0 THEN NULL ELSE x[2] END] AS x FROM pts;
SELECT count(*) AS features,
       count(*) FILTER (WHERE a.psi > 0) AS drifted,
       count(*) FILTER (WHERE a.psi IS NOT DISTINCT FROM b.psi AND a.null_rate_now IS NOT DISTINCT FROM b.null_rate_now
                          AND a.rows_now = b.rows_now) AS same_as_real
  FROM mlpipe_internal._drift_figures(mlpipe.profile('pd_km'), 'shifted') a
  JOIN mlpipe_internal._drift_figures(mlpipe.profile('pd_km'),
         'SELECT i, ties, spread, mostly_zero, skewed, x::real[] AS x FROM t_profile_deciles.shifted') b USING (feature);
-- The aggregate itself against the per-element expressions, on arrays with
-- NULLs, NaN, other lower bounds, two dimensions, too few elements.
CREATE TABLE eb (x float8[]);
INSERT INTO eb VALUES ('{1,2,3}'), ('{0.5,NULL,7}'), (NULL), ('{NaN,2,2}'), ('[0:2]={5,6,7}'),
                      ('{{1,2},{3,4}}'), ('{4}'), ('{}'), ('{-1,3,100,2,2}'), ('{0,2,5}');
SELECT mlpipe_internal._elem_bin_counts(x, '{1,3,2,5}', '{7,5,7,1}', '{0,2,5,1,7,2,3,4}', '{3,2,3,0}') AS counts,
       mlpipe_internal._elem_bin_counts(x, '{1,3,2,5}', '{7,5,7,1}', '{0,2,5,1,7,2,3,4}', '{3,2,3,0}')
         = ARRAY[count(x[1])] || coalesce(mlpipe_internal._bin_counts(mlpipe_internal._bin_of(x[1], '{0,2,5}'), 7) FILTER (WHERE x[1] IS NOT NULL), array_fill(0::bigint, ARRAY[7]))
           || count(x[3]) || coalesce(mlpipe_internal._bin_counts(mlpipe_internal._bin_of(x[3], '{1,7}'), 5) FILTER (WHERE x[3] IS NOT NULL), array_fill(0::bigint, ARRAY[5]))
           || count(x[2]) || coalesce(mlpipe_internal._bin_counts(mlpipe_internal._bin_of(x[2], '{2,3,4}'), 7) FILTER (WHERE x[2] IS NOT NULL), array_fill(0::bigint, ARRAY[7]))
           || count(x[5]) || coalesce(mlpipe_internal._bin_counts(mlpipe_internal._bin_of(x[5], '{}'), 1) FILTER (WHERE x[5] IS NOT NULL), array_fill(0::bigint, ARRAY[1]))
         AS same_counts
  FROM eb;
SELECT mlpipe_internal._elem_bin_counts(x, '{1}', '{1}', '{0}', '{1}') FROM eb;
SELECT mlpipe_internal._elem_bin_counts(x, '{1}', '{3}', '{0}', '{2}') FROM eb;
-- _bin_of's search (a compare per step, no branch): every case of the
-- rule, with infinities, NaN (above every number, equal to a NaN edge) and -0.
SELECT e AS edges, string_agg(v::text || '->' || mlpipe_internal._bin_of(v, e), ' ' ORDER BY o) AS bins
  FROM (VALUES ('{1,2,3}'::float8[]), ('{1,2,NaN}'), ('{}'), ('{0}'), ('{-Infinity,5}')) es(e),
       unnest('{-Infinity,-0,0,0.5,1,1.5,2,2.5,3,4,5,Infinity,NaN}'::float8[]) WITH ORDINALITY u(v, o)
 GROUP BY e ORDER BY e::text;
DROP SCHEMA t_profile_deciles CASCADE;
SELECT mlpipe.drop_model('pd_km');
