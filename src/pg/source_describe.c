/*
 * source_describe.c: what the SQL side needs to know about a source
 * (table, view or query) without reading it: the SELECT it stands for and
 * its columns. Training profiles, as_of filters, mlpipe.drift and
 * mlpipe.predict_table (sql/src/30-scoring.sql) build on these.
 */
#include "mlpipe.h"

#include "executor/spi.h"
#include "funcapi.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(mlpipe_source_sql);
PG_FUNCTION_INFO_V1(mlpipe_source_columns);

/*
 * mlpipe_internal._source_sql(source): the SELECT that a source (table, view or
 * query) stands for, exactly as training reads it, so the SQL side can wrap
 * it (as_of filters, checks, profiles, scoring) without re-parsing sources.
 */
Datum
mlpipe_source_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(source_query(text_to_cstring(PG_GETARG_TEXT_PP(0)))));
}

/*
 * mlpipe_internal._source_columns(source): (name, type) of each column of a source,
 * in order, found by planning and running it with LIMIT 0 as the caller.
 */
Datum
mlpipe_source_columns(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *query = source_query(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	TupleDesc	td;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute(psprintf("SELECT * FROM (%s\n) AS mlpipe_columns LIMIT 0", query), true, 0)
		!= SPI_OK_SELECT || SPI_tuptable == NULL)
		elog(ERROR, "could not describe the source");
	td = SPI_tuptable->tupdesc;
	for (i = 0; i < td->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(td, i);
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		if (a->attisdropped)
			continue;
		values[0] = CStringGetTextDatum(NameStr(a->attname));
		values[1] = ObjectIdGetDatum(a->atttypid);
		values[2] = Int32GetDatum(i + 1);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	PG_RETURN_NULL();
}
