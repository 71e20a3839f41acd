-- explain (TreeSHAP, k-means parts) and import (XGBoost JSON) through SQL.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS mlpipe CASCADE;
CREATE EXTENSION mlpipe;
DROP SCHEMA IF EXISTS t_explain CASCADE;
CREATE SCHEMA t_explain;
SET search_path = t_explain, public;
RESET client_min_messages;
SET mlpipe.progress = off;

-- A two-stump XGBoost 1.7.4 binary:logistic model on features a, b (eta 0.5).
-- XGBoost: predict [0.3328414 x3, 0.49318615 x2, 0.67582434 x3] on the rows
-- below; pred_contribs of row 1: a -0.7015996, b 0, bias 0.00623806.
CREATE TABLE doc (d jsonb);
INSERT INTO doc VALUES ('{"learner":{"attributes":{"best_iteration":"1","best_ntree_limit":"2"},"feature_names":["a","b"],"feature_types":[],"gradient_booster":{"model":{"gbtree_model_param":{"num_parallel_tree":"1","num_trees":"2","size_leaf_vector":"0"},"tree_info":[0,0],"trees":[{"base_weights":[-0E0,-6.666667E-1,8.5714287E-1],"categories":[],"categories_nodes":[],"categories_segments":[],"categories_sizes":[],"default_left":[1,0,0],"id":0,"left_children":[1,-1,-1],"loss_changes":[2.2857141E0,0E0,0E0],"parents":[2147483647,0,0],"right_children":[2,-1,-1],"split_conditions":[5.5E0,-3.3333334E-1,4.2857143E-1],"split_indices":[0,0,0],"split_type":[0,0,0],"sum_hessian":[2E0,1.25E0,7.5E-1],"tree_param":{"num_deleted":"0","num_feature":"2","num_nodes":"3","size_leaf_vector":"0"}},{"base_weights":[3.282309E-2,-7.240565E-1,6.121524E-1],"categories":[],"categories_nodes":[],"categories_segments":[],"categories_sizes":[],"default_left":[1,0,0],"id":1,"left_children":[1,-1,-1],"loss_changes":[1.7290828E0,0E0,0E0],"parents":[2147483647,0,0],"right_children":[2,-1,-1],"split_conditions":[3.5E0,-3.6202824E-1,3.060762E-1],"split_indices":[0,0,0],"split_type":[0,0,0],"sum_hessian":[1.9324994E0,7.295464E-1,1.202953E0],"tree_param":{"num_deleted":"0","num_feature":"2","num_nodes":"3","size_leaf_vector":"0"}}]},"name":"gbtree"},"learner_model_param":{"base_score":"5E-1","boost_from_average":"0","num_class":"0","num_feature":"2","num_target":"1"},"objective":{"name":"binary:logistic","reg_loss_param":{"scale_pos_weight":"1"}}},"version":[1,7,4]}');
CREATE TABLE pts AS
SELECT * FROM (VALUES (1, 1.0::float8, 5.0::float8), (4, 4, 1), (6, 6, 2), (7, NULL, 9)) v(id, a, b);

SELECT mlpipe.import('tiny', d, classes => ARRAY['no', 'yes'], origin => 'regress') FROM doc;
SELECT version, algorithm, task, source, status, features, classes, metrics,
       lineage->'imported' AS imported
  FROM mlpipe.model_versions WHERE model = 'tiny';
SELECT id, round((mlpipe.predict_proba('tiny', p))[2]::numeric, 6) AS p_yes FROM pts p ORDER BY id;
SELECT feature, value, round(contribution::numeric, 6) AS contribution
  FROM pts p, mlpipe.explain('tiny', p) e WHERE p.id = 1;
SELECT round(v::numeric, 6) FROM unnest(mlpipe.explain_values('tiny', ARRAY[1, 5]::float8[])) v;
-- The contributions and the expected value add up to the margin.
SELECT p.id, abs(1 / (1 + exp(-sum(e.contribution))) - (mlpipe.predict_proba('tiny', p))[2]) < 1e-12 AS adds_up
  FROM pts p, mlpipe.explain('tiny', p) e GROUP BY p.id, p.* ORDER BY p.id;
SELECT p.id, e.feature FROM pts p CROSS JOIN LATERAL mlpipe.explain('tiny', p, top_k => 1) e ORDER BY p.id, e.feature;
-- A second import: no test metrics, so it stays a candidate.
SELECT mlpipe.import('tiny', d, classes => ARRAY['no', 'yes']) FROM doc;
SELECT version, status, gate->>'reason' AS reason FROM mlpipe.model_versions WHERE model = 'tiny' ORDER BY version;

-- Trained models explain too.
CREATE TABLE shapes AS
SELECT i AS id, (i % 10)::float8 AS a, CASE WHEN i % 7 = 0 THEN NULL ELSE (i % 3)::float8 END AS b,
       CASE WHEN i % 10 >= 5 OR i % 7 = 0 THEN 'big' ELSE 'small' END AS size
  FROM generate_series(1, 700) i;
SELECT version FROM mlpipe.train('shape_tree', 'decision_tree', 'SELECT a, b, size FROM t_explain.shapes', 'size');
SELECT feature, value, round(contribution::numeric, 6) AS contribution
  FROM mlpipe.explain('shape_tree', ARRAY[7, NULL]::float8[]);
SELECT version FROM mlpipe.train('shape_km', 'kmeans', 'SELECT a FROM t_explain.shapes', params => '{"k": 2, "seed": 1}');
SELECT feature, value, round(contribution::numeric, 6) AS contribution
  FROM mlpipe.explain('shape_km', ARRAY[9]::float8[]);

-- Errors.
SELECT * FROM mlpipe.explain('tiny', ARRAY[1]::float8[]);
SELECT * FROM mlpipe.explain('tiny', ARRAY[1, 2]::float8[], class => 'no');
SELECT * FROM mlpipe.explain('tiny', ARRAY[1, 2]::float8[], top_k => -1);
SELECT mlpipe.import('bad', '{"a": 1}');
SELECT mlpipe.import('bad', jsonb_set(d, '{learner,objective,name}', '"rank:pairwise"')) FROM doc;
SELECT mlpipe.import('bad', jsonb_set(d, '{learner,gradient_booster,model,trees,1,split_indices,0}', '7')) FROM doc;
SELECT mlpipe.import('bad', d, features => ARRAY['x']) FROM doc;
SELECT mlpipe.import('bad', mlpipe.export(mlpipe.artifact('shape_km')));
SELECT mlpipe.import('bad@1', d) FROM doc;

DROP SCHEMA t_explain CASCADE;
