/*
 * dates.c: dates as features (issue #14, docs/grouped-models.md). A date,
 * timestamp or timestamptz feature column becomes a fixed list of numbers,
 * its "date parts", named <column>.<part>; training (source_decode.c) and the row
 * form of predict (predict_row.c) expand a value the same way, so the
 * expansion is stored in the model by its feature names.
 */
#include "mlpipe.h"

#include "catalog/pg_type.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

/*
 * The date parts a date, timestamp or timestamptz column becomes, in this
 * order: each is extract(<part> from c), timestamptz taken in UTC so the
 * features do not depend on the session's TimeZone. A date has no hour.
 */
static const char *const date_part_names[] = {"epoch", "year", "month", "day", "dow", "hour"};

#define DATE_PARTS_DATE 5
#define DATE_PARTS_TIMESTAMP 6

/* How many date parts a column of this type becomes: 0 unless a date or timestamp. */
int
source_date_parts(Oid type)
{
	type = getBaseType(type);
	if (type == DATEOID)
		return DATE_PARTS_DATE;
	if (type == TIMESTAMPOID || type == TIMESTAMPTZOID)
		return DATE_PARTS_TIMESTAMP;
	return 0;
}

/* The name of date part i (see date_part_names). */
const char *
source_date_part_name(int i)
{
	Assert(i >= 0 && i < DATE_PARTS_TIMESTAMP);
	return date_part_names[i];
}

/*
 * The date parts of a date (is_date) or timestamp/timestamptz datum into
 * out, in date_part_names order; false (out untouched) for +/-infinity.
 * A timestamptz is broken down in UTC, whatever the session TimeZone.
 */
bool
source_date_values(bool is_date, Datum d, double *out)
{
	int			y,
				m,
				day;
	int			hour = 0;
	double		epoch;
	int			julian;

	if (is_date)
	{
		DateADT		v = DatumGetDateADT(d);

		if (DATE_NOT_FINITE(v))
			return false;
		julian = v + POSTGRES_EPOCH_JDATE;
		j2date(julian, &y, &m, &day);
		epoch = ((double) v + (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE)) * SECS_PER_DAY;
	}
	else
	{
		Timestamp	ts = DatumGetTimestamp(d);
		struct pg_tm tm;
		fsec_t		fsec;

		if (TIMESTAMP_NOT_FINITE(ts) || timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
			return false;
		y = tm.tm_year;
		m = tm.tm_mon;
		day = tm.tm_mday;
		hour = tm.tm_hour;
		julian = date2j(y, m, day);
		epoch = (double) ts / USECS_PER_SEC +
			(double) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
	}
	out[0] = epoch;
	out[1] = y;
	out[2] = m;
	out[3] = day;
	out[4] = j2day(julian);
	if (!is_date)
		out[5] = hour;
	return true;
}
