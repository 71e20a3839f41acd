-- Loads ../shared/data/brazilian_bank_transactions/MiBolsillo.utf8.csv into
-- bank.transactions (typed, one row per transaction, tx_id in file order).
-- psql -v csv=/path/to/MiBolsillo.utf8.csv -f docs/examples/load_transactions.sql
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS bank;
DROP TABLE IF EXISTS bank.transactions_raw, bank.transactions;
CREATE TABLE bank.transactions_raw (
    id text, safra_abertura text, cidade text, estado text, idade text, sexo text,
    limite_total text, limite_disp text, data text, valor text, grupo_estabelecimento text,
    cidade_estabelecimento text, pais_estabelecimento text,
    line bigint GENERATED ALWAYS AS IDENTITY);
\set copy_cmd '\\copy bank.transactions_raw (id, safra_abertura, cidade, estado, idade, sexo, limite_total, limite_disp, data, valor, grupo_estabelecimento, cidade_estabelecimento, pais_estabelecimento) FROM ' :'csv' ' WITH (FORMAT csv, HEADER true, DELIMITER '';'')'
:copy_cmd
-- Amounts use a decimal comma and "." for thousands; 13 are blank or " - ".
CREATE TABLE bank.transactions AS
SELECT line::int AS tx_id, btrim(cidade) AS city, btrim(estado) AS state, idade::int AS age,
       btrim(sexo) AS sex, limite_total::float8 AS limit_total, limite_disp::float8 AS limit_available,
       to_date(data, 'DD.MM.YYYY') AS day,
       CASE WHEN btrim(valor) ~ '^-?[0-9.]+(,[0-9]+)?$'
            THEN replace(replace(btrim(valor), '.', ''), ',', '.')::float8 END AS amount,
       btrim(grupo_estabelecimento) AS category, btrim(cidade_estabelecimento) AS merchant_city,
       nullif(btrim(pais_estabelecimento), '') AS country
  FROM bank.transactions_raw;
DROP TABLE bank.transactions_raw;
