-- bench/ab_session_list.sql: interleaved comparison of index variants for
-- session_list (see bench/EXPLAIN.md).  Run on a database filled by
-- bench/dataset.sh with no other indexes on the bingo tables:
--
--   psql -X -q -v rounds=21 -f bench/ab_session_list.sql
--
-- (as a superuser: it reads /proc/self/schedstat with pg_read_file).
--
-- All variants' indexes are built once; each round then runs the statement
-- once per variant, in turn, after dropping the other variants' indexes in a
-- subtransaction that is rolled back.  Interleaving the variants spreads
-- whatever else the machine is doing evenly over them, which separate
-- back-to-back series (bench/explain.sh) do not.
--
--   A  movies (year DESC, name, id DESC) INCLUDE (duration)   (chosen set)
--      sessions (movie_id) INCLUDE (customer_id, id, start_time)
--   B  movies (year DESC, name)                               (design brief)
--      sessions (movie_id) INCLUDE (customer_id, id, start_time)
--   C  movies (year DESC, name, id DESC) INCLUDE (duration)
--      sessions (movie_id, customer_id, id DESC) INCLUDE (start_time)
--
-- customers (id) INCLUDE (name, surname, birthday, email) is there for all.

\set ON_ERROR_STOP on
\if :{?rounds}
\else
\set rounds 9
\endif

CREATE INDEX ab_movies3 ON movies (year DESC, name, id DESC) INCLUDE (duration);
CREATE INDEX ab_movies2 ON movies (year DESC, name);
CREATE INDEX ab_sessions1 ON sessions (movie_id) INCLUDE (customer_id, id, start_time);
CREATE INDEX ab_sessions3 ON sessions (movie_id, customer_id, id DESC) INCLUDE (start_time);
CREATE INDEX ab_customers ON customers (id) INCLUDE (name, surname, birthday, email);

SET ab.rounds = :rounds;
CREATE TEMP TABLE ab_result (variant text, round int, exec_ms float8, movies_ms float8, indexes text, cpu_ms float8);

DO $$
DECLARE
	q constant text := 'EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT sessions.id, sessions.start_time, customers.id, customers.name, customers.surname, customers.birthday, customers.email, movies.id, movies.name, movies.year, movies.duration FROM sessions INNER JOIN customers ON sessions.customer_id = customers.id INNER JOIN movies ON sessions.movie_id = movies.id ORDER BY movies.year DESC, movies.name ASC, customers.id, sessions.id DESC LIMIT 100000';
	variants constant text[] := ARRAY['A', 'B', 'C'];
	drops constant text[] := ARRAY['ab_movies2, ab_sessions3', 'ab_movies3, ab_sessions3', 'ab_movies2, ab_sessions1'];
	j json;
	v int;
	r int;
	res text[] := '{}';
	c0 bigint;
	c1 bigint;
BEGIN
	FOR r IN 0 .. current_setting('ab.rounds')::int LOOP	-- round 0 warms up
		FOR v IN 1 .. 3 LOOP
			BEGIN
				EXECUTE 'DROP INDEX ' || drops[v];
				-- this backend's CPU time in ns (Linux schedstat): the machine
				-- is shared, so wall time includes waiting for a CPU
				c0 := split_part(pg_read_file('/proc/self/schedstat'), ' ', 1)::bigint;
				EXECUTE q INTO j;
				c1 := split_part(pg_read_file('/proc/self/schedstat'), ' ', 1)::bigint;
				RAISE SQLSTATE 'P0001' USING MESSAGE = 'roll back';
			EXCEPTION WHEN raise_exception THEN
				NULL;
			END;
			IF r > 0 THEN
				res := res || format('%s|%s|%s|%s|%s|%s', variants[v], r,
					j -> 0 ->> 'Execution Time',
					jsonb_path_query_first(j::jsonb,
						'strict $.** ? (@."Relation Name" == "movies")."Actual Total Time"'),
					(SELECT string_agg(DISTINCT x #>> '{}', ',')
					 FROM jsonb_path_query(j::jsonb, 'strict $.**."Index Name"') AS x),
					(c1 - c0) / 1e6);
			END IF;
		END LOOP;
	END LOOP;
	INSERT INTO ab_result
	SELECT s[1], s[2]::int, s[3]::float8, s[4]::float8, s[5], s[6]::float8
	FROM unnest(res) AS u, string_to_array(u, '|') AS s;
END
$$;

\echo 'per run (ms): execution time; backend CPU time (planning + execution); the movies scan node''s total time'
SELECT variant, string_agg(round(exec_ms)::text, ' ' ORDER BY round) AS exec_ms_by_round,
	   round(percentile_disc(0.5) WITHIN GROUP (ORDER BY exec_ms)::numeric, 1) AS median_ms,
	   round(min(exec_ms)::numeric, 1) AS min_ms,
	   round(percentile_disc(0.5) WITHIN GROUP (ORDER BY cpu_ms)::numeric, 1) AS cpu_median_ms,
	   round(min(cpu_ms)::numeric, 1) AS cpu_min_ms,
	   round(percentile_disc(0.5) WITHIN GROUP (ORDER BY movies_ms)::numeric, 2) AS movies_scan_median_ms,
	   min(indexes) AS indexes
FROM ab_result GROUP BY variant ORDER BY variant;

-- paired: per round, B and C relative to A
SELECT v.variant,
	   round(percentile_disc(0.5) WITHIN GROUP (ORDER BY v.exec_ms / a.exec_ms)::numeric, 3) AS median_ratio_to_a,
	   count(*) FILTER (WHERE v.exec_ms < a.exec_ms) AS rounds_faster_than_a,
	   round(percentile_disc(0.5) WITHIN GROUP (ORDER BY v.cpu_ms / a.cpu_ms)::numeric, 3) AS median_cpu_ratio_to_a,
	   count(*) FILTER (WHERE v.cpu_ms < a.cpu_ms) AS rounds_less_cpu_than_a,
	   count(*) AS rounds
FROM ab_result v JOIN ab_result a ON a.round = v.round AND a.variant = 'A'
WHERE v.variant <> 'A'
GROUP BY v.variant ORDER BY v.variant;

DROP INDEX ab_movies3, ab_movies2, ab_sessions1, ab_sessions3, ab_customers;
