-- mlpipe demo: cluster the UCI wine data (178 wines, 13 chemical measurements,
-- shipped with Debian's python3-sklearn) with k-means, register the model,
-- score every wine into a table and show what was recorded.
-- Run by `make demo`; the path of wine_data.csv arrives as :wine_csv.
\set ON_ERROR_STOP 1
\pset footer off
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS mlpipe;
DROP SCHEMA IF EXISTS demo CASCADE;
CREATE SCHEMA demo;
CREATE TABLE demo.wine (
    alcohol float8, malic_acid float8, ash float8, alcalinity float8, magnesium float8,
    total_phenols float8, flavanoids float8, nonflavanoid_phenols float8,
    proanthocyanins float8, color_intensity float8, hue float8, od280 float8,
    proline float8, cultivar int);
\set copy_cmd '\\copy demo.wine FROM PROGRAM ''tail -n +2 ' :wine_csv '''' ' CSV'
:copy_cmd
ALTER TABLE demo.wine ADD COLUMN id int GENERATED ALWAYS AS IDENTITY;
RESET client_min_messages;

\echo
\echo '== 1. Train k-means (k = 3, standardised features, 10 k-means++ restarts)'
SELECT model, version, promoted, run_id,
       round((metrics->>'silhouette')::numeric, 4) AS silhouette,
       round((metrics->>'davies_bouldin')::numeric, 4) AS davies_bouldin,
       metrics->>'iterations' AS iterations
  FROM mlpipe.train('wine_clusters', 'kmeans', 'demo.wine',
                    params => '{"k": 3, "standardize": true, "n_init": 10, "seed": 42,
                                "exclude": ["id", "cultivar"]}');

\echo '== 2. Score every wine into demo.wine_scored'
CREATE TABLE demo.wine_scored AS
SELECT id, cultivar,
       mlpipe.predict('wine_clusters',
           ARRAY[alcohol, malic_acid, ash, alcalinity, magnesium, total_phenols, flavanoids,
                 nonflavanoid_phenols, proanthocyanins, color_intensity, hue, od280, proline]) AS cluster,
       now() AS scored_at
  FROM demo.wine;

\echo '== 3. Clusters against the true cultivar (never shown to the model)'
SELECT cluster, count(*) FILTER (WHERE cultivar = 0) AS cultivar_0,
       count(*) FILTER (WHERE cultivar = 1) AS cultivar_1,
       count(*) FILTER (WHERE cultivar = 2) AS cultivar_2
  FROM demo.wine_scored GROUP BY cluster ORDER BY cluster;

\echo '== 4. What the registry recorded'
SELECT model, version, algorithm, training_rows, size AS artifact_bytes, status, created_by
  FROM mlpipe.model_versions WHERE model = 'wine_clusters';
SELECT alias, version FROM mlpipe.aliases WHERE model = 'wine_clusters';
SELECT version, split, metric, round(value::numeric, 4) AS value
  FROM mlpipe.metrics
 WHERE model = 'wine_clusters'
   AND version = (SELECT max(version) FROM mlpipe.model_versions WHERE model = 'wine_clusters')
 ORDER BY metric;

\echo 'Look further with:  SELECT mlpipe.model_info(''wine_clusters'');  SELECT mlpipe.export(''wine_clusters'');'
\echo 'Tables: demo.wine, demo.wine_scored, mlpipe.models, mlpipe.model_versions, mlpipe.metrics, mlpipe.runs'
