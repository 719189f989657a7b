-- advise(): what the catalog wants and what exists.

-- an empty database: prepare_db has not run yet
SELECT statements, table_name, definition, index_name, state FROM bingo_tune.advise();

-- bingo's schema as prepare_db leaves it: no keys, no indexes
CREATE TABLE movies (id integer, name text, year integer, duration integer);
CREATE TABLE customers (id integer, name text, surname text, birthday date, email text);
CREATE SEQUENCE sessions_id_seq;
CREATE TABLE sessions (id bigint DEFAULT nextval('sessions_id_seq'),
					   start_time timestamp NOT NULL,
					   customer_id integer NOT NULL, movie_id integer NOT NULL);
SELECT setseed(0.5);
INSERT INTO movies
	SELECT g, 'movie ' || (g % 2000), 1950 + (g * 7) % 76, 70 + g % 90
	FROM generate_series(1, 2900) g;
INSERT INTO customers
	SELECT g, 'name' || (g % 300), 'surname' || (g % 3000),
		   date '1950-01-01' + (g * 37) % 20000, 'customer' || g || '@example.com'
	FROM generate_series(1, 50000) g;
INSERT INTO sessions (start_time, customer_id, movie_id)
	SELECT timestamp '2020-01-01' + g * interval '37 seconds',
		   1 + (random() * 49999)::int, 1 + (random() * 2899)::int
	FROM generate_series(1, 200000) g;
VACUUM ANALYZE movies, customers, sessions;

SELECT table_name, index_name, state FROM bingo_tune.advise();

-- equivalent indexes under other names count, whatever their name
CREATE INDEX my_sessions_id ON sessions (id);
CREATE UNIQUE INDEX my_customers ON customers (id) INCLUDE (email, surname, name, birthday);
-- ... with the INCLUDE columns in another order, or more of them
CREATE INDEX my_movies ON movies (id) INCLUDE (duration, year, name);
SELECT table_name, index_name, state FROM bingo_tune.advise();
DROP INDEX my_movies;

-- not equivalent: other direction, a predicate, an expression, another
-- access method, a missing INCLUDE column, extra key columns
CREATE INDEX other_dir ON movies (year, name, id DESC) INCLUDE (duration);
CREATE INDEX other_pred ON sessions (movie_id) INCLUDE (customer_id, id, start_time) WHERE movie_id > 0;
CREATE INDEX other_expr ON customers (lower(surname), name, birthday DESC, id DESC) INCLUDE (email);
CREATE INDEX other_am ON movies USING hash (id);
CREATE INDEX other_incl ON customers (surname, name, birthday DESC, id DESC);
CREATE INDEX other_keys ON movies (id, name, year, duration);
SELECT table_name, index_name, state FROM bingo_tune.advise();
DROP INDEX other_dir, other_pred, other_expr, other_am, other_incl, other_keys, my_sessions_id, my_customers;

-- not equivalent either: the planner cannot use these for ORDER BY surname
-- under the column's collation, nor its equality quals: another collation,
-- another operator class family
CREATE INDEX other_coll ON customers (surname COLLATE "C", name, birthday DESC, id DESC) INCLUDE (email);
CREATE INDEX other_opclass ON customers (surname text_pattern_ops, name, birthday DESC, id DESC) INCLUDE (email);
SELECT index_name, state FROM bingo_tune.advise() WHERE table_name = 'public.customers' ORDER BY 1;
-- the plan: even forced onto the "C" index, it has to sort
DROP INDEX other_opclass;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM customers ORDER BY surname, name, birthday DESC, id DESC LIMIT 5;
RESET enable_seqscan;
DROP INDEX other_coll;
-- equivalent: the column's own collation and the default class, spelt out
CREATE INDEX same_coll ON customers (surname COLLATE "default", name, birthday DESC, id DESC) INCLUDE (email);
CREATE INDEX same_opclass ON movies (id int4_ops) INCLUDE (name, year, duration);
SELECT index_name, state FROM bingo_tune.advise() WHERE index_name LIKE 'same%' ORDER BY 1;
DROP INDEX same_coll, same_opclass;

-- a failed concurrent build leaves an invalid index: advise says so
-- (terse: which duplicate it meets first varies from run to run)
\set VERBOSITY terse
CREATE UNIQUE INDEX CONCURRENTLY leftover ON sessions (movie_id) INCLUDE (customer_id, id, start_time);
\set VERBOSITY default
SELECT table_name, index_name, state FROM bingo_tune.advise() WHERE state <> 'missing';

-- the queryid bingo_tune computes is the one pg_stat_statements records
SELECT pg_stat_statements_reset() IS NOT NULL AS reset;
SELECT sessions.id, sessions.start_time, customers.id, customers.name, customers.surname, customers.birthday, customers.email, movies.id, movies.name, movies.year, movies.duration FROM sessions INNER JOIN customers ON sessions.customer_id = customers.id INNER JOIN movies ON sessions.movie_id = movies.id ORDER BY movies.year DESC, movies.name ASC, customers.id, sessions.id DESC LIMIT 1;
SELECT w.name, s.calls
FROM bingo_tune.watch w
JOIN pg_stat_statements s ON s.queryid = bingo_tune.queryid(w.statement, w.schema)
WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database());
-- case, whitespace and constants do not change it
SELECT bingo_tune.queryid(statement) = bingo_tune.queryid(upper(replace(statement, ' ', E'\n  ')))
	   AS same_id_for_upper_case_and_newlines,
	   bingo_tune.queryid(statement) = bingo_tune.queryid(replace(statement, '100000', '5'))
	   AS same_id_for_other_limit
FROM bingo_tune.watch WHERE name = 'session_list';
-- a table dropped and created again gives a new id before 18; from 18 the
-- jumble hashes the table's name, not its OID, and the id stays
CREATE TABLE t_recreated (id int);
SELECT bingo_tune.queryid('SELECT id FROM t_recreated WHERE id = $1') AS first \gset
DROP TABLE t_recreated;
CREATE TABLE t_recreated (id int);
SELECT (bingo_tune.queryid('SELECT id FROM t_recreated WHERE id = $1') <> :first)
	= (current_setting('server_version_num')::int < 180000) AS new_id_before_18;
DROP TABLE t_recreated;
SELECT bingo_tune.queryid('SELECT * FROM not_there') IS NULL AS no_id_without_table;
