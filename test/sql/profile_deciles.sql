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
DROP SCHEMA t_profile_deciles CASCADE;
SELECT mlpipe.drop_model('pd_km');
