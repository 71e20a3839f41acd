/*
 * agg_state_legacy.c: the serial and deserial functions of the aggregates
 * of mlpipe 0.3.0 and earlier, whose STYPE was `internal`. The 0.4.0
 * aggregates have STYPE mlpipe.agg_state and need neither; these symbols
 * stay so that the released install scripts still load (CREATE EXTENSION
 * mlpipe VERSION '0.3.0', then ALTER EXTENSION UPDATE), and so that a
 * database still at 0.3.0 with this library keeps its parallel plans until
 * it is updated. The transition, combine and final functions are the
 * 0.4.0 ones: they accept the expanded object an `internal` state now
 * holds. One pair serves every family: the flat form names its family.
 */
#include "agg_state.h"

/*
 * Serial (internal -> bytea): the flat mlpipe.agg_state of the state, the
 * bytes a parallel worker sends to the leader.
 */
static Datum
legacy_serial(FunctionCallInfo fcinfo)
{
	ExpandedObjectHeader *eoh = DatumGetEOHP(PG_GETARG_DATUM(0));
	Size		len = EOH_get_flat_size(eoh);
	void	   *out = palloc(len);

	agg_context(fcinfo, "mlpipe aggregate serial");
	EOH_flatten_into(eoh, out, len);
	PG_RETURN_POINTER(out);
}

/* Deserial (bytea, internal -> internal): the state read back, checked whole. */
static Datum
legacy_deserial(FunctionCallInfo fcinfo)
{
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	AggStateObj *obj;

	agg_context(fcinfo, "mlpipe aggregate deserial");
	obj = agg_state_read(VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b), NULL, CurrentMemoryContext);
	AGG_STATE_RETURN(obj);
}

#define LEGACY_PAIR(serial, deserial) \
PG_FUNCTION_INFO_V1(serial); \
Datum serial(PG_FUNCTION_ARGS) { return legacy_serial(fcinfo); } \
PG_FUNCTION_INFO_V1(deserial); \
Datum deserial(PG_FUNCTION_ARGS) { return legacy_deserial(fcinfo); }

LEGACY_PAIR(mlpipe_features_serial, mlpipe_features_deserial)
LEGACY_PAIR(mlpipe_label_serial, mlpipe_label_deserial)
LEGACY_PAIR(mlpipe_log_loss_serial, mlpipe_log_loss_deserial)
LEGACY_PAIR(mlpipe_roc_auc_serial, mlpipe_roc_auc_deserial)
LEGACY_PAIR(mlpipe_reg_serial, mlpipe_reg_deserial)
LEGACY_PAIR(mlpipe_points_serial, mlpipe_points_deserial)
