-- The watch catalog: bingo's rows, and what it refuses.
CREATE EXTENSION bingo_tune CASCADE;

SELECT name, budget, percentile, priority, params, description
FROM bingo_tune.watch ORDER BY priority, name;

SELECT name, unnest(indexes) AS index FROM bingo_tune.watch ORDER BY priority, name, 2;

-- every statement parses
SELECT name FROM bingo_tune.watch, LATERAL bingo_tune.statement_check(statement) ORDER BY name;

-- canonical form and names of definitions
SELECT bingo_tune.index_parse('Movies ( Year desc , NAME ) include ( duration )');
SELECT bingo_tune.index_parse('other."Mixed Case" ("Col""Quote" DESC NULLS LAST, b ASC NULLS FIRST)');
SELECT bingo_tune.index_name('movies (year DESC, name)');
SELECT bingo_tune.index_name('"Movies" ("Year")');
SELECT length(bingo_tune.index_name('a_very_long_table_name_for_testing (first_long_column_name, second_long_column_name)'));

-- an operator's own row
INSERT INTO bingo_tune.watch (name, statement, budget, percentile, indexes, params)
VALUES ('orders_by_customer', 'SELECT * FROM orders WHERE customer_id = $1', '50 ms', 99,
		ARRAY['orders (customer_id, created DESC)'], '{42}');
SELECT name, budget, percentile, indexes FROM bingo_tune.watch WHERE NOT builtin;

-- bad rows are refused, and nothing is stored
INSERT INTO bingo_tune.watch (name, statement, budget) VALUES ('no_text', '', '1 s');
INSERT INTO bingo_tune.watch (name, statement, budget) VALUES ('no_text', NULL, '1 s');
INSERT INTO bingo_tune.watch (name, statement, budget) VALUES ('Bad Name', 'SELECT 1', '1 s');
INSERT INTO bingo_tune.watch (name, statement, budget) VALUES ('negative', 'SELECT 1', '-1 s');
INSERT INTO bingo_tune.watch (name, statement, budget) VALUES ('zero', 'SELECT 1', '0');
INSERT INTO bingo_tune.watch (name, statement, budget, percentile) VALUES ('pct_low', 'SELECT 1', '1 s', 0.5);
INSERT INTO bingo_tune.watch (name, statement, budget, percentile) VALUES ('pct_high', 'SELECT 1', '1 s', 101);
INSERT INTO bingo_tune.watch (name, statement, budget) VALUES ('two', 'SELECT 1; SELECT 2', '1 s');
INSERT INTO bingo_tune.watch (name, statement, budget) VALUES ('utility', 'VACUUM sessions', '1 s');
INSERT INTO bingo_tune.watch (name, statement, budget) VALUES ('syntax', 'SELEKT 1', '1 s');
UPDATE bingo_tune.watch SET budget = '-5 ms' WHERE name = 'orders_by_customer';

-- index definitions that are not plain column lists
INSERT INTO bingo_tune.watch (name, statement, budget, indexes) VALUES ('i1', 'SELECT 1', '1 s', ARRAY['orders (lower(email))']);
INSERT INTO bingo_tune.watch (name, statement, budget, indexes) VALUES ('i2', 'SELECT 1', '1 s', ARRAY['orders (id) WHERE id > 0']);
INSERT INTO bingo_tune.watch (name, statement, budget, indexes) VALUES ('i3', 'SELECT 1', '1 s', ARRAY['orders (id) WITH (fillfactor = 10)']);
INSERT INTO bingo_tune.watch (name, statement, budget, indexes) VALUES ('i4', 'SELECT 1', '1 s', ARRAY['orders USING hash (id)']);
INSERT INTO bingo_tune.watch (name, statement, budget, indexes) VALUES ('i5', 'SELECT 1', '1 s', ARRAY['orders (id); DROP TABLE bingo_tune.watch; --)']);
INSERT INTO bingo_tune.watch (name, statement, budget, indexes) VALUES ('i6', 'SELECT 1', '1 s', ARRAY['orders (id, id)']);
INSERT INTO bingo_tune.watch (name, statement, budget, indexes) VALUES ('i7', 'SELECT 1', '1 s', ARRAY['orders ()']);
INSERT INTO bingo_tune.watch (name, statement, budget, indexes) VALUES ('i8', 'SELECT 1', '1 s', ARRAY['orders (id) INCLUDE (id)']);
INSERT INTO bingo_tune.watch (name, statement, budget, indexes) VALUES ('i9', 'SELECT 1', '1 s', ARRAY['orders (id text_pattern_ops)']);
INSERT INTO bingo_tune.watch (name, statement, budget, indexes) VALUES ('i10', 'SELECT 1', '1 s', ARRAY['orders (id COLLATE "C")']);
INSERT INTO bingo_tune.watch (name, statement, budget, indexes) VALUES ('i11', 'SELECT 1', '1 s', ARRAY['orders (id', NULL]);
INSERT INTO bingo_tune.watch (name, statement, budget, indexes) VALUES ('i12', 'SELECT 1', '1 s', ARRAY[NULL]::text[]);
INSERT INTO bingo_tune.watch (name, statement, budget, indexes) VALUES ('i13', 'SELECT 1', '1 s', ARRAY['orders (id) NULLS']);
INSERT INTO bingo_tune.watch (name, statement, budget, indexes) VALUES ('i14', 'SELECT 1', '1 s', ARRAY['orders (id NULLS MIDDLE)']);
INSERT INTO bingo_tune.watch (name, statement, budget, indexes) VALUES ('i15', 'SELECT 1', '1 s', ARRAY['a.b.c (id)']);
INSERT INTO bingo_tune.watch (name, statement, budget, indexes) VALUES ('i16', 'SELECT 1', '1 s', ARRAY['orders ("")']);
SELECT count(*) AS user_rows FROM bingo_tune.watch WHERE NOT builtin;

-- the user rows are dumped, bingo's come from the script
SELECT t.cfg::regclass, t.cond
FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS t(cfg, cond)
WHERE e.extname = 'bingo_tune' AND t.cfg = 'bingo_tune.watch'::regclass;

-- only superusers change the catalog
CREATE ROLE bt_app LOGIN;
SET ROLE bt_app;
INSERT INTO bingo_tune.watch (name, statement, budget) VALUES ('sneaky', 'SELECT 1', '1 s');
UPDATE bingo_tune.watch SET indexes = '{}' WHERE name = 'session_list';
DELETE FROM bingo_tune.watch;
SELECT count(*) FROM bingo_tune.watch;
CALL bingo_tune.apply();
SELECT * FROM bingo_tune.advise();
RESET ROLE;
GRANT pg_read_all_stats TO bt_app;
SET ROLE bt_app;
SELECT count(*) FROM bingo_tune.watch;
SELECT count(*) FROM bingo_tune.advise();
RESET ROLE;
DROP ROLE bt_app;

DELETE FROM bingo_tune.watch WHERE NOT builtin;
