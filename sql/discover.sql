-- Discovery: the watcher derives sets for slow statements the catalog does
-- not watch, with bingo_tune.discover = advise or auto (t/019_discover.pl;
-- the watchers are off here).  Here: the settings, and accept(), which
-- turns a discovered statement into a catalog row whose set is derived.
SHOW bingo_tune.discover;
SHOW bingo_tune.discover_min_time;
-- set in postgresql.conf (or ALTER SYSTEM) and reloaded, not per session
SET bingo_tune.discover = auto;

-- a row as the watcher writes it
INSERT INTO bingo_tune.discovered (queryid, statement, schema, role, mean_ms, calls, indexes, basis)
VALUES (4242, 'SELECT id, name, duration FROM movies WHERE year = $1 ORDER BY name', 'public',
		current_user, 1500, 10, '{"public.movies (year, name) INCLUDE (id, duration)"}', 'test');
SELECT name, statement, budget, percentile, indexes IS NULL AS derived, schema, description
FROM bingo_tune.accept(4242, 'movies_of_year', '200 ms', 90);
SELECT queryid, accepted_as FROM bingo_tune.discovered;
-- the new row's set is derived from the live tables; advise() gives its
-- size, estimated, and measured once it exists (the estimate within a
-- factor of 2 of it)
SELECT statements, definition, state, est_size_bytes > 0 AS estimated, size_bytes
FROM bingo_tune.advise() WHERE 'movies_of_year' = ANY (statements);
CREATE INDEX movies_of_year_ix ON movies (year, name) INCLUDE (id, duration);
SELECT statements, state, size_bytes = pg_relation_size('movies_of_year_ix') AS measured,
	   est_size_bytes BETWEEN size_bytes / 2 AND size_bytes * 2 AS estimate_close
FROM bingo_tune.advise() WHERE 'movies_of_year' = ANY (statements);
DROP INDEX movies_of_year_ix;

-- what accept() refuses
SELECT * FROM bingo_tune.accept(1, 'nothing', '1 s');
SELECT * FROM bingo_tune.accept(4242, 'Not A Name', '1 s');
SELECT * FROM bingo_tune.accept(4242, 'movies_of_year', '1 s');
SELECT * FROM bingo_tune.accept(4242, 'no_budget', '0 s');
-- only superusers (and those they grant it to) change the catalog
CREATE ROLE regress_discover_user;
SET ROLE regress_discover_user;
SELECT * FROM bingo_tune.accept(4242, 'other_name', '1 s');
SELECT count(*) FROM bingo_tune.discovered;
RESET ROLE;
DROP ROLE regress_discover_user;

DELETE FROM bingo_tune.watch WHERE name = 'movies_of_year';
DELETE FROM bingo_tune.discovered;
