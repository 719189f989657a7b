-- derive(): the index set bingo_tune works out for a SELECT, ranked by the
-- planner with HypoPG's hypothetical indexes.  Runs on advise.sql's small
-- dataset before apply.sql builds anything (only advise.sql's invalid
-- leftover exists).
CREATE EXTENSION hypopg;
SET max_parallel_workers_per_gather = 0;
-- statistics from every row, so that costs do not depend on ANALYZE's
-- random sample
SET default_statistics_target = 10000;
ANALYZE movies, customers, sessions;
RESET default_statistics_target;

-- derive() without the figures that vary with the machine: the width of
-- an INCLUDE list comes from the statistics, and costs are only compared
CREATE FUNCTION derived(stmt text, OUT definition text, OUT serves text, OUT why text,
						OUT state text, OUT ranked_by text, OUT cheaper boolean)
RETURNS SETOF record LANGUAGE sql AS $$
	SELECT definition, serves,
		   regexp_replace(why, ' \(INCLUDE: \d+ bytes on average\)', ''),
		   state, ranked_by, cost_after < cost_before
	FROM bingo_tune.derive(stmt)
$$;
-- a definition with its INCLUDE columns in a fixed order: two
-- definitions that differ only there are the same index
CREATE FUNCTION norm(def text) RETURNS text LANGUAGE sql AS $$
	SELECT CASE WHEN c LIKE '% INCLUDE (%' THEN
			split_part(c, ' INCLUDE (', 1) || ' INCLUDE (' ||
			(SELECT string_agg(x, ', ' ORDER BY x)
			 FROM unnest(string_to_array(rtrim(split_part(c, ' INCLUDE (', 2), ')'), ', ')) x) || ')'
		   ELSE c END
	FROM bingo_tune.index_parse(def) c
$$;

\x on
-- bingo's six statements, derived
SELECT w.name, d.* FROM bingo_tune.watch w, LATERAL derived(w.statement) d
WHERE w.builtin ORDER BY w.priority, w.name;
\x off

-- ... against the hand-picked sets of the catalog
SELECT w.name,
	   ARRAY(SELECT norm(definition) FROM bingo_tune.derive(w.statement, w.schema)
			 EXCEPT SELECT norm(x) FROM unnest(w.indexes) x ORDER BY 1) AS only_derived,
	   ARRAY(SELECT norm(x) FROM unnest(w.indexes) x
			 EXCEPT SELECT norm(definition) FROM bingo_tune.derive(w.statement, w.schema)
			 ORDER BY 1) AS only_hand_picked
FROM bingo_tune.watch w WHERE w.builtin ORDER BY w.priority, w.name;

-- every derived set lowers the statement's cost a lot
SELECT w.name, bool_and(d.cost_drop_pct >= 10) AS drop_at_least_10_pct
FROM bingo_tune.watch w, LATERAL bingo_tune.derive(w.statement) d
WHERE w.builtin GROUP BY w.name ORDER BY w.name;

\x on
-- statements bingo_tune has never seen: a customer's sessions newest first
SELECT * FROM derived('SELECT sessions.id, sessions.start_time, movies.name, movies.year FROM sessions JOIN movies ON movies.id = sessions.movie_id WHERE sessions.customer_id = $1 ORDER BY sessions.start_time DESC LIMIT 20');
-- movies of a year by name
SELECT * FROM derived('SELECT id, name, duration FROM movies WHERE year = $1 ORDER BY name');
-- customers by surname ordered by birthday
SELECT * FROM derived('SELECT id, name, surname, birthday FROM customers WHERE surname = $1 ORDER BY birthday');
-- a range
SELECT * FROM derived('SELECT id, customer_id FROM sessions WHERE start_time >= $1 AND start_time < $2');
-- IN and a range on another column: equality first, the range last
SELECT * FROM derived('SELECT * FROM customers WHERE surname IN ($1, $2) AND birthday > $3');
-- mixed directions and NULLS
SELECT * FROM derived('SELECT name FROM movies ORDER BY year NULLS FIRST, name DESC LIMIT 10');
-- value op column, constants, aliases, and a condition no index serves
SELECT * FROM derived('SELECT c.email, s.start_time FROM customers c JOIN sessions s ON s.customer_id = c.id WHERE 7 = s.movie_id AND c.birthday > DATE ''2000-01-01'' AND lower(c.email) <> ''x''');
\x off

-- nothing to gain: a table of 3 rows
CREATE TABLE tiny (id int, v text);
INSERT INTO tiny VALUES (1, 'a'), (2, 'b'), (3, 'c');
ANALYZE tiny;
SELECT * FROM bingo_tune.derive('SELECT * FROM tiny WHERE id = 2');
-- nothing an index could serve
SELECT * FROM bingo_tune.derive('SELECT count(*) FROM movies');

-- covering stops at bingo_tune.max_include_width
SET bingo_tune.max_include_width = 20;
SELECT definition, regexp_replace(why, '\d+ bytes', 'N bytes') AS why
FROM bingo_tune.derive('SELECT id, name, surname, birthday, email FROM customers WHERE id = $1');
RESET bingo_tune.max_include_width;

-- only superusers and members of the tables' owner role may derive; the
-- statement is planned as that owner, so what the planner evaluates runs
-- with the owner's rights (a security-restricted operation)
CREATE ROLE regress_derive_app;
CREATE ROLE regress_derive_other;
CREATE TABLE app_t (id int, v text);
ALTER TABLE app_t OWNER TO regress_derive_app;
INSERT INTO app_t SELECT g, 'v' || g FROM generate_series(1, 5000) g;
ANALYZE app_t;
CREATE FUNCTION app_f(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	RAISE NOTICE 'app_f runs as %', current_user;
	RETURN $1;
END $$;
ALTER FUNCTION app_f(int) OWNER TO regress_derive_app;
SELECT definition, ranked_by FROM bingo_tune.derive('SELECT v FROM app_t WHERE id = app_f(3)');
GRANT EXECUTE ON FUNCTION bingo_tune.derive(text, name) TO regress_derive_app, regress_derive_other;
SET ROLE regress_derive_other;
SELECT definition FROM bingo_tune.derive('SELECT v FROM app_t WHERE id = $1');
SET ROLE regress_derive_app;
SELECT definition FROM bingo_tune.derive('SELECT v FROM app_t WHERE id = $1');
RESET ROLE;
-- what the set costs: before it is built, its estimated size and one more
-- index for each INSERT into app_t
SELECT definition, state, est_size_bytes > 8192 AS estimated, size_bytes,
	   insert_indexes_now, insert_indexes_after
FROM bingo_tune.derive('SELECT v FROM app_t WHERE id = $1');
-- the indexes that exist are set aside: once built, the same set comes
-- back, present, and the cost is still counted from no index; its size is
-- measured now (the estimate is within a factor of 2 of it)
CREATE INDEX app_t_id ON app_t (id) INCLUDE (v);
SELECT definition, state, cost_drop_pct > 50 AS drops,
	   size_bytes = pg_relation_size('app_t_id') AS size_measured,
	   est_size_bytes BETWEEN size_bytes / 2 AND size_bytes * 2 AS estimate_close,
	   insert_indexes_now, insert_indexes_after
FROM bingo_tune.derive('SELECT v FROM app_t WHERE id = $1');
DROP INDEX app_t_id;
-- the indexes an INSERT maintains already count too
CREATE INDEX app_t_v ON app_t (v);
SELECT definition, state, insert_indexes_now, insert_indexes_after
FROM bingo_tune.derive('SELECT v FROM app_t WHERE id = $1');
DROP INDEX app_t_v;
-- an error while a set is costed leaves no hypothetical index behind, and
-- gives the caller back their role and search_path
CREATE FUNCTION app_boom(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	IF (SELECT count(*) FROM hypopg()) > 0 THEN
		RAISE EXCEPTION 'app_boom: planned with % hypothetical index(es)', (SELECT count(*) FROM hypopg());
	END IF;
	RETURN $1;
END $$;
ALTER FUNCTION app_boom(int) OWNER TO regress_derive_app;
SELECT definition FROM bingo_tune.derive('SELECT v FROM app_t WHERE id = app_boom(1)');
SELECT count(*) AS hypothetical_left, current_user = session_user AS own_role,
	   current_setting('search_path') AS search_path
FROM hypopg();
-- a table of another owner in the same statement
SELECT definition FROM bingo_tune.derive('SELECT v FROM app_t JOIN movies ON movies.id = app_t.id');
-- the search path is the schema's and pg_temp's, not the caller's
CREATE SCHEMA derive_elsewhere;
CREATE TABLE derive_elsewhere.only_here (id int);
SET search_path = derive_elsewhere, public;
SELECT definition FROM bingo_tune.derive('SELECT * FROM only_here WHERE id = 1');
SELECT definition FROM bingo_tune.derive('SELECT * FROM only_here WHERE id = 1', 'derive_elsewhere');
RESET search_path;

-- a catalog row may leave its indexes NULL: its set is then derived from
-- the live tables whenever the catalog is read (advise, apply, the
-- watcher, report, check)
INSERT INTO bingo_tune.watch (name, statement, budget, indexes, params) VALUES
('customer_sessions', 'SELECT sessions.id, sessions.start_time, movies.name, movies.year FROM sessions JOIN movies ON movies.id = sessions.movie_id WHERE sessions.customer_id = $1 ORDER BY sessions.start_time DESC LIMIT 20', '50 ms', NULL, '{42}'),
('not_there_yet', 'SELECT * FROM not_there WHERE id = $1', '50 ms', NULL, '{1}');
SELECT statements, definition, state FROM bingo_tune.advise()
WHERE statements && ARRAY['customer_sessions', 'not_there_yet'] ORDER BY definition;
SELECT name, indexes FROM bingo_tune.report()
WHERE name IN ('customer_sessions', 'not_there_yet') ORDER BY name;
DELETE FROM bingo_tune.watch WHERE name IN ('customer_sessions', 'not_there_yet');

-- what derive() refuses
SELECT * FROM bingo_tune.derive('DELETE FROM tiny WHERE id = 1');
SELECT * FROM bingo_tune.derive('SELECT * FROM tiny LEFT JOIN movies ON movies.id = tiny.id');
SELECT * FROM bingo_tune.derive('SELECT id FROM tiny UNION SELECT id FROM movies');
CREATE VIEW tiny_v AS SELECT * FROM tiny;
SELECT * FROM bingo_tune.derive('SELECT * FROM tiny_v WHERE id = 1');
SELECT * FROM bingo_tune.derive('SELECT 1');

-- without HypoPG the rules alone choose, and derive() says so
DROP EXTENSION hypopg;
SELECT w.name, d.definition, d.ranked_by, d.cost_after
FROM bingo_tune.watch w, LATERAL bingo_tune.derive(w.statement) d
WHERE w.name IN ('session_list', 'customer_by_id') ORDER BY w.name, d.definition;

DROP VIEW tiny_v;
DROP TABLE tiny, app_t, derive_elsewhere.only_here;
DROP SCHEMA derive_elsewhere;
DROP FUNCTION app_f(int), app_boom(int), derived(text), norm(text);
REVOKE EXECUTE ON FUNCTION bingo_tune.derive(text, name) FROM regress_derive_app, regress_derive_other;
DROP ROLE regress_derive_app, regress_derive_other;
-- back to sampled statistics, as advise.sql left them
ANALYZE movies, customers, sessions;
