-- Issue #14: choosing k, anomaly detection with k-means, training_info.
-- Figures that depend on the data are checked by relation (the peer script
-- test/peer/test_kmeans_anomaly_k.py checks the values against
-- scikit-learn, numpy and XGBoost).
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS t_anomaly CASCADE;
CREATE SCHEMA t_anomaly;
SET search_path = t_anomaly, public;
RESET client_min_messages;
SET mlpipe.progress = off;
-- Three tight groups of 100 points and two far outliers.
CREATE TABLE pts (id int, x float8, y float8);
INSERT INTO pts
SELECT i, (i % 3) * 10 + ((i * 7919) % 101) / 100.0, (i % 3) * 5 + ((i * 104729) % 103) / 100.0
  FROM generate_series(1, 300) i;
INSERT INTO pts VALUES (301, 50, 50), (302, -40, 30);

-- k from a range: the chosen k has the largest silhouette (5: the two
-- outliers get clusters of their own); every candidate's figures are stored.
SELECT version, (metrics->>'k')::int AS k FROM mlpipe.train('pk', 'kmeans', 'pts', features => ARRAY['x', 'y'],
    params => '{"k": [2, 6], "sample_size": 0}');
SELECT count(*) AS candidate_metrics,
       bool_and(value IS NOT NULL) AS all_defined
  FROM mlpipe.metrics WHERE model = 'pk' AND metric LIKE '%@k=%';
SELECT (SELECT value FROM mlpipe.metrics WHERE model = 'pk' AND metric = 'silhouette')
     = (SELECT max(value) FROM mlpipe.metrics WHERE model = 'pk' AND metric LIKE 'silhouette@k=%') AS chosen_is_best,
       (SELECT value FROM mlpipe.metrics WHERE model = 'pk' AND metric = 'inertia@k=5')
     = (SELECT value FROM mlpipe.metrics WHERE model = 'pk' AND metric = 'inertia') AS chosen_figures,
       (SELECT count(*) FROM mlpipe.metrics WHERE model = 'pk' AND metric LIKE 'silhouette@k=%'
           AND value > (SELECT value FROM mlpipe.metrics WHERE model = 'pk' AND metric = 'silhouette@k=2')) AS above_k2;
SELECT lineage->>'k_criterion' AS criterion, lineage->'k_candidates' AS candidates
  FROM mlpipe.model_versions WHERE model = 'pk';
-- A list, Davies-Bouldin; the elbow.
SELECT (metrics->>'k')::int AS k FROM mlpipe.train('pk_db', 'kmeans', 'pts', features => ARRAY['x', 'y'],
    params => '{"k": [2, 3, 5], "k_criterion": "davies_bouldin", "sample_size": 0}');
SELECT (metrics->>'k')::int AS k FROM mlpipe.train('pk_elbow', 'minibatch_kmeans', 'pts', features => ARRAY['x', 'y'],
    params => '{"k": [1, 6], "k_criterion": "elbow", "batch_size": 64}');
-- Bad k and criteria.
SELECT * FROM mlpipe.train('pk_bad', 'kmeans', 'pts', params => '{"k": [5, 3]}');
SELECT * FROM mlpipe.train('pk_bad', 'kmeans', 'pts', params => '{"k": [2, "x"]}');
SELECT * FROM mlpipe.train('pk_bad', 'kmeans', 'pts', params => '{"k": [2, 3], "k_criterion": "elbow"}');
SELECT * FROM mlpipe.train('pk_bad', 'kmeans', 'pts', params => '{"k": 3, "k_criterion": "silhouette"}');
SELECT * FROM mlpipe.train('pk_bad', 'kmeans', 'pts', params => '{"k": [2, 4], "k_criterion": "gap"}');
SELECT * FROM mlpipe.train('pk_bad', 'kmeans', 'pts', params => '{"k": [2, 4], "init": "given", "centroids": [[0, 0]]}');
SELECT * FROM mlpipe.train('pk_bad', 'kmeans', 'pts', features => ARRAY['x', 'y'], params => '{"k": [300, 400]}');
SELECT count(*) AS no_bad_models FROM mlpipe.models WHERE name = 'pk_bad';

-- Anomalies: the threshold is numpy's 0.99 quantile of the 302 training
-- scores (between the 298th and 299th), so 4 rows are above it, the two
-- outliers among them.
SELECT version FROM mlpipe.train('pa', 'kmeans', 'pts', features => ARRAY['x', 'y'],
    params => '{"k": 3, "contamination": 0.01, "sample_size": 0}');
SELECT lineage->'contamination' AS contamination, (lineage->>'anomaly_threshold')::float8 > 1 AS threshold_above_1
  FROM mlpipe.model_versions WHERE model = 'pa';
SELECT count(*) FILTER (WHERE mlpipe.is_anomaly('pa', ARRAY[x, y])) AS flagged,
       bool_and(mlpipe.is_anomaly('pa', ARRAY[x, y])) FILTER (WHERE id > 300) AS outliers_flagged
  FROM pts;
SELECT bool_and(mlpipe.anomaly_score('pa', ARRAY[x, y]) = mlpipe.anomaly_score('pa', p)
            AND mlpipe.anomaly_score('pa', p) = mlpipe.anomaly_score(mlpipe.artifact('pa'), ARRAY[x, y])
            AND mlpipe.anomaly_score(mlpipe.artifact('pa'), p) = mlpipe.anomaly_score('pa', p)
            AND mlpipe.is_anomaly('pa', p) = mlpipe.is_anomaly(mlpipe.artifact('pa'), ARRAY[x, y])
            AND mlpipe.is_anomaly(mlpipe.artifact('pa'), p) = mlpipe.is_anomaly('pa', ARRAY[x, y]))
       AS all_forms_agree
  FROM pts p;
-- The mean squared score over the training rows is 1 (scales are RMS distances).
SELECT round(avg(mlpipe.anomaly_score('pa', ARRAY[x, y]) ^ 2)::numeric, 9) AS mean_sq_score FROM pts;
SELECT mlpipe.export('pa')->'anomaly' ? 'scales' AS exported;
-- Errors: a model without contamination, a gbt model, a wrong row, bad contamination.
SELECT version FROM mlpipe.train('pa_plain', 'kmeans', 'pts', features => ARRAY['x', 'y'], params => '{"k": 3}');
SELECT mlpipe.anomaly_score('pa_plain', ARRAY[1.0, 2.0]);
SELECT mlpipe.is_anomaly('pa', ARRAY[1.0]);
SELECT mlpipe.is_anomaly('pa', ARRAY[1.0, 'NaN']);
SELECT * FROM mlpipe.train('pa_bad', 'kmeans', 'pts', params => '{"k": 3, "contamination": 0.7}');
SELECT * FROM mlpipe.train('pa_bad', 'kmeans', 'pts', params => '{"k": 3, "contamination": 0}');
CREATE TABLE reg AS SELECT x, y, 2 * x + y AS t FROM pts;
SELECT version FROM mlpipe.train('pg', 'gbt', 'reg', 't',
    params => '{"n_estimators": 8, "max_depth": 2, "early_stopping_rounds": 3}');
SELECT mlpipe.anomaly_score('pg', ARRAY[1.0, 2.0]);

-- training_info: k-means iterations with a falling inertia, the last at
-- least the final inertia; gbt rounds with training and validation loss.
SELECT count(*) = (SELECT (metrics->>'iterations')::int FROM mlpipe.model_versions WHERE model = 'pa') AS one_row_per_iteration,
       min(iteration) AS first,
       bool_and(validation_loss IS NULL) AS no_validation,
       bool_and(elapsed_ms >= 0) AS elapsed
  FROM mlpipe.training_info('pa');
SELECT bool_and(training_loss <= prev) AS inertia_falls
  FROM (SELECT training_loss, lag(training_loss, 1, 'Infinity') OVER (ORDER BY iteration) AS prev
          FROM mlpipe.training_info('pa')) s;
SELECT count(*) AS rounds, bool_and(validation_loss > 0) AS validation_loss,
       (array_agg(training_loss ORDER BY iteration))[1] > (array_agg(training_loss ORDER BY iteration DESC))[1] AS loss_falls
  FROM mlpipe.training_info('pg');
SELECT count(*) AS epochs_recorded FROM mlpipe.training_info('pk_elbow') HAVING count(*) > 0;
SELECT version FROM mlpipe.train('pt', 'decision_tree', 'reg', 't', params => '{"max_depth": 2}');
SELECT * FROM mlpipe.training_info('pt');
SELECT * FROM mlpipe.training_info('no_such_model');
-- the figures stay out of the lineage and go with the version when it is dropped
SELECT count(*) AS trace_in_lineage FROM mlpipe.model_versions WHERE lineage ? 'trace';
SELECT mlpipe.drop_model('pg');
SELECT count(*) AS rows_left FROM mlpipe.training_iterations WHERE model = 'pg';
