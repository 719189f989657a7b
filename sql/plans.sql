-- After apply(), bingo's six statements use the indexes built for them.
-- (apply.sql built them on the small dataset of advise.sql.)
SET max_parallel_workers_per_gather = 0;
SET jit = off;

-- the indexes a plan uses, and whether it still scans a whole table
CREATE FUNCTION plan_indexes(stmt text, OUT indexes text[], OUT seq_scans text[])
LANGUAGE plpgsql AS $$
DECLARE
	plan jsonb;
BEGIN
	EXECUTE 'EXPLAIN (FORMAT JSON, COSTS OFF) ' || stmt INTO plan;
	SELECT array_agg(DISTINCT v #>> '{}' ORDER BY v #>> '{}')
	  INTO indexes FROM jsonb_path_query(plan, 'strict $.**."Index Name"') v;
	SELECT array_agg(DISTINCT v #>> '{}' ORDER BY v #>> '{}')
	  INTO seq_scans FROM jsonb_path_query(plan, 'strict $.** ? (@."Node Type" == "Seq Scan")."Relation Name"') v;
END $$;

SELECT w.name, p.indexes, p.seq_scans,
	   (SELECT array_agg(bingo_tune.index_name(d, w.schema)::text ORDER BY 1) FROM unnest(w.indexes) d)
	   <@ p.indexes AS uses_all_its_indexes
FROM bingo_tune.watch w,
	 LATERAL plan_indexes(replace(w.statement, '$1', '4242')) p
ORDER BY w.priority, w.name;

DROP FUNCTION plan_indexes(text);
