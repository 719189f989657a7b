-- bench/schema.sql: bingo's schema as `bingo prepare_db` leaves it.
--
-- The one place this DDL lives: bench/dataset.sh runs it, and a stand-in
-- prepare_db can run it too.  On purpose there are NO primary keys and NO
-- indexes on the data tables (that is what bingo creates); only
-- schema_migrations has a primary key.  Column types other than those of
-- sessions are not published; these are the plausible ones.
--
-- Objects are created in the current search_path's first schema.

CREATE SEQUENCE sessions_id_seq;

CREATE TABLE sessions (
	id			bigint DEFAULT nextval('sessions_id_seq'),
	start_time	timestamp NOT NULL,
	customer_id	integer NOT NULL,
	movie_id	integer NOT NULL
);

ALTER SEQUENCE sessions_id_seq OWNED BY sessions.id;

CREATE TABLE customers (
	id			integer,
	name		text,
	surname		text,
	birthday	date,
	email		text
);

CREATE TABLE movies (
	id			integer,
	name		text,
	year		integer,
	duration	integer
);

-- golang-migrate's bookkeeping table.  bingo's migration version number is
-- not known, so the table is left empty here.
CREATE TABLE schema_migrations (
	version		bigint NOT NULL PRIMARY KEY,
	dirty		boolean NOT NULL
);
