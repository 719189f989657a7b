/* bingo_tune--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION bingo_tune CASCADE" to load this file. \quit

--
-- Parsing helpers (C).  They check catalog input and name the indexes; they
-- read nothing but their arguments.
--

-- Canonical form of an index definition such as
-- 'movies (year DESC, name) INCLUDE (duration)'; raises an error with a hint
-- when the text is not a plain column list.
CREATE FUNCTION index_parse(definition text, default_schema name DEFAULT 'public')
RETURNS text
AS 'MODULE_PATHNAME', 'bt_index_parse'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

-- The deterministic name bingo_tune gives the index it builds for a definition.
CREATE FUNCTION index_name(definition text, default_schema name DEFAULT 'public')
RETURNS name
AS 'MODULE_PATHNAME', 'bt_index_name'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

-- Raises an error unless the text is exactly one SELECT, INSERT, UPDATE or
-- DELETE statement.
CREATE FUNCTION statement_check(statement text)
RETURNS void
AS 'MODULE_PATHNAME', 'bt_statement_check'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

-- The queryid pg_stat_statements gives a statement in this database, with
-- its unqualified names looked up in schema; NULL (and a notice) while its
-- tables do not exist.
CREATE FUNCTION queryid(statement text, schema name DEFAULT 'public')
RETURNS bigint
AS 'MODULE_PATHNAME', 'bt_queryid'
LANGUAGE C STRICT STABLE;

--
-- The watch catalog: one row per watched statement.
--
CREATE TABLE watch (
	name		text PRIMARY KEY,
	statement	text NOT NULL,
	budget		interval NOT NULL,
	percentile	double precision NOT NULL DEFAULT 100,
	indexes		text[] DEFAULT '{}',
	schema		name NOT NULL DEFAULT 'public',
	params		text[] NOT NULL DEFAULT '{}',
	priority	integer NOT NULL DEFAULT 100,
	builtin		boolean NOT NULL DEFAULT false,
	description	text
);

COMMENT ON TABLE watch IS 'statements bingo_tune watches, their latency budgets and the indexes that serve them';
COMMENT ON COLUMN watch.statement IS 'statement text as the application sends it, $n where it passes values';
COMMENT ON COLUMN watch.budget IS 'latency budget of one run';
COMMENT ON COLUMN watch.percentile IS 'percentile of runs the budget applies to (100 = every run)';
COMMENT ON COLUMN watch.indexes IS 'index definitions: [schema.]table (col [ASC|DESC] [NULLS FIRST|LAST], ...) [INCLUDE (col, ...)]; NULL: derived from the live tables (derive()) whenever the catalog is read';
COMMENT ON COLUMN watch.schema IS 'schema of the statement''s tables and of unqualified index tables';
COMMENT ON COLUMN watch.params IS 'sample values for $1, $2, ... used when the statement is run on demand';
COMMENT ON COLUMN watch.priority IS 'lower builds first';

CREATE FUNCTION watch_validate()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	def text;
BEGIN
	IF NEW.name IS NULL OR NEW.name !~ '^[a-z][a-z0-9_]{0,62}$' THEN
		RAISE EXCEPTION 'invalid watched statement name "%"', NEW.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use lower-case letters, digits and underscores, starting with a letter.';
	END IF;
	IF NEW.statement IS NULL OR btrim(NEW.statement) = '' THEN
		RAISE EXCEPTION 'watched statement "%" has no statement text', NEW.name
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give the statement as the application sends it, with $1, $2, ... for its parameters.';
	END IF;
	PERFORM bingo_tune.statement_check(NEW.statement);
	IF NEW.budget <= interval '0' THEN
		RAISE EXCEPTION 'budget of watched statement "%" must be positive, not %', NEW.name, NEW.budget
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Give the budget as an interval, for example ''400 ms'' or ''20 s''.';
	END IF;
	IF NEW.percentile IS NULL OR NOT (NEW.percentile >= 1 AND NEW.percentile <= 100) THEN
		RAISE EXCEPTION 'percentile of watched statement "%" must be between 1 and 100, not %', NEW.name, NEW.percentile
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use 90 for "90 % of runs within budget", 100 for "every run".';
	END IF;
	IF array_position(NEW.indexes, NULL) IS NOT NULL THEN
		RAISE EXCEPTION 'indexes of watched statement "%" contain a null', NEW.name
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	FOREACH def IN ARRAY coalesce(NEW.indexes, '{}') LOOP
		PERFORM bingo_tune.index_parse(def, NEW.schema);
	END LOOP;
	RETURN NEW;
END;
$$;

CREATE TRIGGER watch_validate BEFORE INSERT OR UPDATE ON watch
	FOR EACH ROW EXECUTE FUNCTION watch_validate();

--
-- bingo's statements (see the README for why these indexes).
--
INSERT INTO watch (name, statement, budget, percentile, indexes, params, priority, builtin, description) VALUES
('session_list',
 'SELECT sessions.id, sessions.start_time, customers.id, customers.name, customers.surname, customers.birthday, customers.email, movies.id, movies.name, movies.year, movies.duration FROM sessions INNER JOIN customers ON sessions.customer_id = customers.id INNER JOIN movies ON sessions.movie_id = movies.id ORDER BY movies.year DESC, movies.name ASC, customers.id, sessions.id DESC LIMIT 100000',
 '20 s', 100,
 ARRAY['movies (year DESC, name, id DESC) INCLUDE (duration)',
	   'sessions (movie_id) INCLUDE (customer_id, id, start_time)',
	   'customers (id) INCLUDE (name, surname, birthday, email)'],
 '{}', 10, true, 'GET /api/session'),
('session_by_id',
 'SELECT sessions.id, sessions.start_time, customers.id, customers.name, customers.surname, customers.birthday, customers.email, movies.id, movies.name, movies.year, movies.duration FROM sessions INNER JOIN customers ON sessions.customer_id = customers.id INNER JOIN movies ON sessions.movie_id = movies.id WHERE sessions.id IN ($1) ORDER BY movies.year DESC, movies.name ASC, customers.id, sessions.id DESC LIMIT 100000',
 '400 ms', 90,
 ARRAY['sessions (id)',
	   'customers (id) INCLUDE (name, surname, birthday, email)',
	   'movies (id) INCLUDE (name, year, duration)'],
 '{1}', 20, true, 'GET and DELETE /api/session/{id}'),
('customer_by_id',
 'SELECT customers.id, customers.name, customers.surname, customers.birthday, customers.email FROM customers WHERE customers.id IN ($1) ORDER BY customers.surname ASC, customers.name ASC, customers.birthday DESC, customers.id DESC LIMIT 100000',
 '400 ms', 90,
 ARRAY['customers (id) INCLUDE (name, surname, birthday, email)'],
 '{1}', 20, true, 'GET /api/customer/{id}'),
('movie_by_id',
 'SELECT movies.id, movies.name, movies.year, movies.duration FROM movies WHERE movies.id IN ($1) ORDER BY movies.year DESC, movies.name ASC, movies.id DESC LIMIT 100000',
 '400 ms', 90,
 ARRAY['movies (id) INCLUDE (name, year, duration)'],
 '{1}', 20, true, 'GET /api/movie/{id}'),
('customer_list',
 'SELECT customers.id, customers.name, customers.surname, customers.birthday, customers.email FROM customers ORDER BY customers.surname ASC, customers.name ASC, customers.birthday DESC, customers.id DESC LIMIT 100000',
 '20 s', 100,
 ARRAY['customers (surname, name, birthday DESC, id DESC) INCLUDE (email)'],
 '{}', 30, true, 'GET /api/customer'),
('movie_list',
 'SELECT movies.id, movies.name, movies.year, movies.duration FROM movies ORDER BY movies.year DESC, movies.name ASC, movies.id DESC LIMIT 100000',
 '20 s', 100,
 ARRAY['movies (year DESC, name, id DESC) INCLUDE (duration)'],
 '{}', 30, true, 'GET /api/movie');

-- Rows operators add survive pg_dump; bingo's own rows come from this script.
SELECT pg_catalog.pg_extension_config_dump('watch', 'WHERE NOT builtin');

--
-- What happened: one row per decision or build outcome.
--
CREATE TABLE events (
	id			bigserial PRIMARY KEY,
	at			timestamptz NOT NULL DEFAULT now(),
	database	name NOT NULL DEFAULT current_database(),
	statement	text,
	action		text NOT NULL,
	index_name	text,
	duration	interval,
	detail		text,
	source		text NOT NULL,
	run			bigint,
	queryid		bigint
);
COMMENT ON TABLE events IS 'decisions and index builds of bingo_tune, newest last';
CREATE INDEX ON events (at);
CREATE SEQUENCE apply_run;
COMMENT ON COLUMN events.queryid IS 'for a statement seen by the watcher: the queryid it was seen under';

--
-- The watchers (background workers, one per database with the extension).
-- Their state lives in shared memory, so these work on a standby too.
--

-- This database's watcher: its pid (NULL when none runs), the mode, how
-- many passes it made and when the last one was.
CREATE FUNCTION watcher(OUT pid integer, OUT mode text, OUT passes bigint, OUT last_pass timestamptz)
RETURNS record
AS 'MODULE_PATHNAME', 'bt_watcher_info'
LANGUAGE C VOLATILE STRICT;

-- Every watched statement as a watcher pass sees it, now: its queryid here,
-- and whether it is waiting (cannot be analysed yet: detail says why), not
-- seen, seen (runs counted by bingo_tune or pg_stat_statements: detail says
-- which) or running.
CREATE FUNCTION watched(
	OUT statement text,
	OUT queryid bigint,
	OUT state text,
	OUT calls bigint,
	OUT detail text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'bt_watched'
LANGUAGE C VOLATILE STRICT;

-- Indexes the watcher recommended but did not build (advise mode, or a
-- standby), most recent last; kept in shared memory since the last start.
CREATE FUNCTION recommendations(
	OUT at timestamptz,
	OUT statements text,
	OUT index_name text,
	OUT definition text,
	OUT reason text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'bt_recommendations'
LANGUAGE C VOLATILE STRICT;

--
-- Advice and action.
--
CREATE FUNCTION advise(
	OUT statements text[],
	OUT table_name text,
	OUT definition text,
	OUT index_name text,
	OUT state text,
	OUT est_size_bytes bigint,
	OUT size_bytes bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'bt_advise'
LANGUAGE C VOLATILE STRICT;

COMMENT ON FUNCTION advise() IS 'every index the watch catalog wants, with its state (present, missing, invalid or no table) and its size, estimated and, once present, measured';

-- Builds the missing indexes with CREATE INDEX CONCURRENTLY, one at a time,
-- in a background worker, waiting for each while holding no snapshot.  Must
-- be CALLed outside a transaction block.  Outcomes are reported as notices
-- and kept in the events table (see the last_apply view).
CREATE PROCEDURE apply(statement text DEFAULT NULL)
AS 'MODULE_PATHNAME', 'bt_apply'
LANGUAGE C;

COMMENT ON PROCEDURE apply(text) IS 'build every missing index (or those of one watched statement) concurrently and wait for the outcome';

CREATE VIEW last_apply AS
	SELECT index_name, action, duration, detail, statement, at
	FROM events
	WHERE source = 'apply' AND run = (SELECT max(run) FROM events WHERE source = 'apply')
	ORDER BY id;

--
-- Privileges: the catalog steers what a superuser worker builds, so only
-- superusers (and the extension's owner) may change it.
--
GRANT USAGE ON SCHEMA bingo_tune TO PUBLIC;
REVOKE ALL ON watch, events, last_apply FROM PUBLIC;
REVOKE ALL ON SEQUENCE apply_run FROM PUBLIC;
GRANT SELECT ON watch, events, last_apply TO pg_read_all_stats;
REVOKE ALL ON PROCEDURE apply(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION advise() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION advise() TO pg_read_all_stats;
REVOKE ALL ON FUNCTION watcher(), watched(), recommendations() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION watcher(), watched(), recommendations() TO pg_read_all_stats;

-- ==== budget report (stats.c, report.c) ====
-- Latencies of the watched statements' top-level runs, kept in shared
-- memory since the server started or the last reset(), against their
-- budgets.  Times are in milliseconds.

-- One row per watched statement.  observed_ms is the budgeted percentile
-- over every run, failed ones counted at how long they ran; headroom_pct is
-- how far it is below the budget.  status: ok, at risk (above half the
-- budget, or any failed run), over budget, no run since build (it ran,
-- then an index serving it was built at "since"), not seen (no run since
-- "since"), not tracked (bingo_tune.max_watched is full).  statement is
-- shown to superusers and members of pg_read_all_stats only.
CREATE FUNCTION report(
	OUT name text,
	OUT queryid bigint,
	OUT calls bigint,
	OUT failed bigint,
	OUT mean_ms double precision,
	OUT p50_ms double precision,
	OUT p90_ms double precision,
	OUT p99_ms double precision,
	OUT max_ms double precision,
	OUT failed_max_ms double precision,
	OUT budget_ms double precision,
	OUT percentile double precision,
	OUT observed_ms double precision,
	OUT headroom_pct double precision,
	OUT indexes text,
	OUT status text,
	OUT since timestamptz,
	OUT statement text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'bt_report'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION report() IS 'each watched statement''s latency percentiles and failures against its budget, since the last reset';

-- Clears one watched statement's figures (and its before/after), or all of
-- this database's.
CREATE FUNCTION reset(name text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'bt_reset'
LANGUAGE C VOLATILE;

-- Runs the watched statement(s) now, in this session, `runs` times each,
-- every run in a subtransaction that is rolled back and cut off just above
-- the budget; $n take the sample values in watch.params.
-- (CHECK is a reserved word: the name is quoted here, and callers write
-- bingo_tune.check(...).)  name and runs come back as what each row is about.
CREATE FUNCTION "check"(
	INOUT name text DEFAULT NULL,
	INOUT runs integer DEFAULT 3,
	OUT times_ms double precision[],
	OUT within_budget boolean,
	OUT budget_ms double precision,
	OUT percentile double precision,
	OUT observed_ms double precision,
	OUT timeouts integer,
	OUT outcome text,
	OUT indexes text,
	OUT indexes_used text[],
	OUT plan_indexes text[])
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'bt_check'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION "check"(text, integer) IS 'run the watched statements now and say whether each is within its budget and which of its indexes the plan uses';

-- What the index builds serving each statement bought: its figures before
-- the first build (since the last reset) beside those since.
CREATE FUNCTION before_after(
	OUT name text,
	OUT built text,
	OUT built_at timestamptz,
	OUT before_calls bigint,
	OUT before_failed bigint,
	OUT before_p50_ms double precision,
	OUT before_p90_ms double precision,
	OUT before_p99_ms double precision,
	OUT before_mean_ms double precision,
	OUT before_max_ms double precision,
	OUT before_since timestamptz,
	OUT after_calls bigint,
	OUT after_failed bigint,
	OUT after_p50_ms double precision,
	OUT after_p90_ms double precision,
	OUT after_p99_ms double precision,
	OUT after_mean_ms double precision,
	OUT after_max_ms double precision,
	OUT summary text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'bt_before_after'
LANGUAGE C VOLATILE;

CREATE VIEW before_after AS SELECT * FROM before_after();

-- Track what the catalog says as soon as it changes.
CREATE FUNCTION watch_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'bt_watch_changed'
LANGUAGE C;

CREATE TRIGGER watch_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON watch
	FOR EACH STATEMENT EXECUTE FUNCTION watch_changed();

REVOKE ALL ON FUNCTION report(), reset(text), "check"(text, integer), before_after(),
	watch_changed() FROM PUBLIC;
REVOKE ALL ON before_after FROM PUBLIC;
GRANT EXECUTE ON FUNCTION report(), "check"(text, integer), before_after() TO pg_read_all_stats;
GRANT SELECT ON before_after TO pg_read_all_stats;

-- ==== pre-deploy tool state (tools/) ====
-- Written and read by the bingo_tune tool (tools/prepare.c); see
-- README.md, "The pre-deploy tool".  Kept at the end of this script as one section.

-- The prepare marker: one row per prepare-db run, written in two steps.
-- The start (node, tool pid, command, started_at) is committed before the
-- command runs; the end (finished_at, exit_status, outcome, rows) when it
-- stops.  The newest row decides what the next run does: outcome 'prepared'
-- or 'adopted' skips the command; a start without an end (a killed run) or
-- any other outcome runs it again.  Dumped with the data, since the data it
-- vouches for is dumped too.
CREATE TABLE prepared (
	run			uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
	node		text NOT NULL,
	pid			integer NOT NULL,
	db_user		name NOT NULL DEFAULT current_user,
	command		text NOT NULL,
	started_at	timestamptz NOT NULL DEFAULT clock_timestamp(),
	finished_at	timestamptz,
	exit_status	integer,
	outcome		text CHECK (outcome IN ('prepared', 'adopted', 'failed', 'interrupted', 'not filled')),
	tables		text[] NOT NULL,
	rows		jsonb,
	tool_version text NOT NULL,
	CHECK ((finished_at IS NULL) = (outcome IS NULL))
);
COMMENT ON TABLE prepared IS 'runs of bingo_tune prepare-db: the newest row decides whether later runs run the command';
COMMENT ON COLUMN prepared.node IS 'host name of the machine that ran the command';
COMMENT ON COLUMN prepared.pid IS 'process id of the bingo_tune tool on that machine';
COMMENT ON COLUMN prepared.command IS 'program name of the command (its arguments are not recorded: they may hold secrets), or (adopted)';
COMMENT ON COLUMN prepared.finished_at IS 'when the run ended; NULL: it never finished (the tool was killed or lost its connection)';
COMMENT ON COLUMN prepared.exit_status IS 'the command''s exit status, 128+N when signal N ended it; NULL when it did not run to an exit';
COMMENT ON COLUMN prepared.outcome IS 'prepared, adopted (existing data recorded by --adopt), failed, interrupted or not filled';
COMMENT ON COLUMN prepared.rows IS 'rows in each table the command had to fill, from ANALYZE after it exited (estimates above about 30,000 rows)';
SELECT pg_catalog.pg_extension_config_dump('prepared', '');

-- A database setting changed by prepare-db --fast-load (synchronous_commit
-- = off) while its command runs.  Written in the same transaction as the
-- ALTER DATABASE; deleted in the same transaction as the restore.  A row
-- left by a killed run is restored by the next run of the tool.
CREATE TABLE fast_load (
	database	name PRIMARY KEY,
	previous	text,
	set_at		timestamptz NOT NULL DEFAULT now(),
	node		text NOT NULL
);
COMMENT ON TABLE fast_load IS 'synchronous_commit settings bingo_tune prepare-db --fast-load must restore';
COMMENT ON COLUMN fast_load.previous IS 'the database''s own synchronous_commit before (NULL: it had none)';

REVOKE ALL ON prepared, fast_load FROM PUBLIC;
GRANT SELECT ON prepared, fast_load TO pg_read_all_stats;

-- ==== derive(): the index set for any SELECT ====
-- Kept at the end of this script as one section; see README.md, "Adding a
-- statement".

-- One row per index bingo_tune would build for the statement: its
-- definition in the catalog's grammar, the part of the statement it serves
-- and why, whether it exists already, how the set was chosen ('hypopg':
-- ranked by the planner with hypothetical indexes; 'rules': HypoPG is not
-- installed here), and the planner's estimated cost of the statement
-- without and with the set (the indexes that exist are set aside, so the
-- set does not depend on them).  Plans as the owner of the statement's
-- tables.  What the set costs: each index's size in bytes, estimated from
-- the table's statistics and measured once it exists, and the indexes each
-- INSERT into its table maintains now and once the set is built.
CREATE FUNCTION derive(
	statement text,
	schema name DEFAULT 'public',
	OUT definition text,
	OUT serves text,
	OUT why text,
	OUT state text,
	OUT ranked_by text,
	OUT cost_before double precision,
	OUT cost_after double precision,
	OUT cost_drop_pct double precision,
	OUT cost_without_it double precision,
	OUT est_size_bytes bigint,
	OUT size_bytes bigint,
	OUT insert_indexes_now integer,
	OUT insert_indexes_after integer)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'bt_derive'
LANGUAGE C VOLATILE STRICT;

-- Only superusers and members of the tables' owner role get a result (the
-- function checks); grant EXECUTE to the application's owner role to let it in.
REVOKE ALL ON FUNCTION derive(text, name) FROM PUBLIC;

-- ==== discovery: slow statements the catalog does not watch (discover.c) ====
-- Kept at the end of this script as one section; see README.md, "Discovery".

-- One row per statement discovery derived a set for (bingo_tune.discover =
-- advise or auto), written by this database's watcher.
CREATE TABLE discovered (
	queryid		bigint PRIMARY KEY,
	statement	text NOT NULL,
	schema		name NOT NULL,
	role		name,
	mean_ms		double precision,
	calls		bigint,
	indexes		text[] NOT NULL DEFAULT '{}',
	detail		text,
	basis		text NOT NULL,
	first_seen	timestamptz NOT NULL DEFAULT now(),
	derived_at	timestamptz NOT NULL DEFAULT now(),
	accepted_as	text
);
COMMENT ON TABLE discovered IS 'slow statements outside the watch catalog and the index sets derived for them';
COMMENT ON COLUMN discovered.queryid IS 'pg_stat_statements'' queryid of the statement';
COMMENT ON COLUMN discovered.statement IS 'its text as pg_stat_statements shows it ($n for constants)';
COMMENT ON COLUMN discovered.schema IS 'the schema its names were found in, along its role''s search_path';
COMMENT ON COLUMN discovered.role IS 'the role that ran it most';
COMMENT ON COLUMN discovered.mean_ms IS 'its mean execution time when derived';
COMMENT ON COLUMN discovered.indexes IS 'the set derived (canonical definitions); empty when none lowers its cost';
COMMENT ON COLUMN discovered.detail IS 'why no set was derived, if none was';
COMMENT ON COLUMN discovered.basis IS 'the catalog and tables the set was derived from: it is derived again when they change';
COMMENT ON COLUMN discovered.accepted_as IS 'the watch catalog row accept() made of it';

-- Accept a discovered statement into the watch catalog: one row named name
-- with its text, its schema, the budget given and indexes NULL (its set is
-- derived whenever the catalog is read).  Returns the row.
CREATE FUNCTION accept(queryid bigint, name text, budget interval,
					   percentile double precision DEFAULT 100)
RETURNS watch
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
	d bingo_tune.discovered;
	w bingo_tune.watch;
BEGIN
	SELECT * INTO d FROM bingo_tune.discovered x WHERE x.queryid = accept.queryid;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'no discovered statement has queryid %', accept.queryid
			USING ERRCODE = 'undefined_object',
				  HINT = 'See bingo_tune.discovered; discovery runs with bingo_tune.discover = advise or auto.';
	END IF;
	INSERT INTO bingo_tune.watch (name, statement, budget, percentile, indexes, schema, description)
	VALUES (accept.name, d.statement, accept.budget, accept.percentile, NULL, d.schema,
			format('accepted from discovery (queryid %s)', d.queryid))
	RETURNING * INTO w;
	UPDATE bingo_tune.discovered x SET accepted_as = accept.name WHERE x.queryid = accept.queryid;
	RETURN w;
END;
$$;

COMMENT ON FUNCTION accept(bigint, text, interval, double precision) IS 'add a discovered statement to the watch catalog, its indexes derived';

REVOKE ALL ON discovered FROM PUBLIC;
GRANT SELECT ON discovered TO pg_read_all_stats;
REVOKE ALL ON FUNCTION accept(bigint, text, interval, double precision) FROM PUBLIC;
