-- CALL apply(): build what is missing, concurrently, and say what was done.
-- (advise.sql left bingo's tables with no index but an invalid leftover.)

-- outcome notices carry timings; the outcome itself is checked in last_apply
SET client_min_messages = warning;

-- not inside a transaction block: a clear error, no hang
BEGIN;
CALL bingo_tune.apply();
ROLLBACK;

-- not from a function either
CREATE FUNCTION apply_from_function() RETURNS void LANGUAGE plpgsql AS
$$ BEGIN CALL bingo_tune.apply(); END $$;
SELECT apply_from_function();
DROP FUNCTION apply_from_function();

CALL bingo_tune.apply('no_such_statement');

-- one statement's set
CALL bingo_tune.apply('movie_by_id');
SELECT index_name, action, duration IS NOT NULL AS timed, detail, statement FROM bingo_tune.last_apply;

-- all of them: the invalid leftover is dropped and rebuilt
CALL bingo_tune.apply();
SELECT index_name, action, duration IS NOT NULL AS timed, detail, statement FROM bingo_tune.last_apply;
SELECT count(*) AS invalid_indexes FROM pg_index WHERE NOT indisvalid;
SELECT relname FROM pg_class WHERE relname = 'leftover';
SELECT table_name, index_name, state FROM bingo_tune.advise();
SELECT indexrelid::regclass AS index, pg_get_indexdef(indexrelid)
FROM pg_index WHERE indrelid IN ('movies'::regclass, 'customers'::regclass, 'sessions'::regclass)
ORDER BY indexrelid::regclass::text;

-- a second run does nothing
CALL bingo_tune.apply();
SELECT index_name, action, duration, detail FROM bingo_tune.last_apply;

-- a table that does not exist is skipped; a column that does not exist
-- fails the build, which leaves no invalid index behind
CREATE TABLE orders (id int, customer_id int);
INSERT INTO bingo_tune.watch (name, statement, budget, indexes)
VALUES ('archive', 'SELECT 1', '1 s', ARRAY['archive.old_orders (id)']),
	   ('orders_bad', 'SELECT id FROM orders', '1 s', ARRAY['orders (customer_id, no_such_column)']);
CALL bingo_tune.apply('archive');
SELECT index_name, action, duration, detail FROM bingo_tune.last_apply;
CALL bingo_tune.apply('orders_bad');
SELECT index_name, action, duration IS NOT NULL AS timed, detail FROM bingo_tune.last_apply;
SELECT count(*) AS invalid_indexes FROM pg_index WHERE NOT indisvalid;

-- names from the catalog are identifiers, never SQL: a table and a column
-- whose names look like SQL get an index, and nothing else runs
CREATE TABLE "orders; DROP TABLE movies; --" ("id) ; DROP TABLE movies; --" int, "x""y" int);
INSERT INTO bingo_tune.watch (name, statement, budget, indexes)
VALUES ('smuggle', 'SELECT 1', '1 s',
		ARRAY['"orders; DROP TABLE movies; --" ("id) ; DROP TABLE movies; --" DESC) INCLUDE ("x""y")']);
CALL bingo_tune.apply('smuggle');
SELECT index_name, action, detail FROM bingo_tune.last_apply;
SELECT to_regclass('movies') IS NOT NULL AS movies_still_there;
SELECT pg_get_indexdef(indexrelid) FROM pg_index
WHERE indrelid = '"orders; DROP TABLE movies; --"'::regclass;

DELETE FROM bingo_tune.watch WHERE NOT builtin;
DROP TABLE orders, "orders; DROP TABLE movies; --";
RESET client_min_messages;

-- every outcome is in the events table, grouped by run
SELECT action, count(*) FROM bingo_tune.events WHERE source = 'apply' GROUP BY action ORDER BY action;
