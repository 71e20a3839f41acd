# mlpipe: PGXS build. `make` builds the extension, `make install` installs it
# into the PostgreSQL found by pg_config; `make demo` and `make test` are the
# two README commands (scripts/ does the set-up).

EXTENSION = mlpipe
MODULE_big = mlpipe
CORE_SRCS = $(sort $(wildcard src/core/*.c))
PG_SRCS = $(sort $(wildcard src/pg/*.c))
OBJS = $(CORE_SRCS:.c=.o) $(PG_SRCS:.c=.o)
# sql/src/*.sql (one file per subsystem, applied in name order) is the one
# place every object is defined; `make` concatenates it into the full
# install script of the current version. Released scripts (the 0.1.0 base
# and the upgrade steps, including the one to the current version) are
# committed as they are and kept for ALTER EXTENSION UPDATE.
MLPIPE_VERSION = 0.4.0
MLPIPE_FULL_SQL = sql/mlpipe--$(MLPIPE_VERSION).sql
DATA = $(filter-out $(MLPIPE_FULL_SQL),$(sort $(wildcard sql/mlpipe--*.sql)))
DATA_built = $(MLPIPE_FULL_SQL)
DOCS =

PG_CPPFLAGS = -Isrc/core -Isrc/pg
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare \
	-Wno-missing-field-initializers -Wno-cast-function-type
# Calls between the library's own files bind inside it at link time, not
# through the PLT (the per-row scoring and decoding paths cross files), and
# the compiler may call or inline a function of the same file directly:
# nothing outside mlpipe is meant to replace its functions.
PG_CFLAGS += -fno-semantic-interposition
SHLIB_LINK = -lcjson -lpthread -lm -Wl,-Bsymbolic-functions

# pg_regress reads test/sql/*.sql and compares with test/expected/*.out;
# results go to build/regress.
REGRESS = $(sort $(basename $(notdir $(wildcard test/sql/*.sql))))
REGRESS_OPTS = --inputdir=test --outputdir=build/regress \
	--load-extension=mlpipe

EXTRA_CLEAN = build

# No JIT bitcode: the module is small and the build stays fast.
override with_llvm = no
# Rebuild objects when a header they include changes.
override autodepend = yes

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The engine is hot numeric code: optimise it harder than the glue.
src/core/%.o: override CFLAGS += -O3
# vecmath.c reproduces libm's rounding: only its explicit fma intrinsics fuse.
src/core/vecmath.o: override CFLAGS += -ffp-contract=off

$(MLPIPE_FULL_SQL): $(sort $(wildcard sql/src/*.sql))
	cat $^ > $@

# pg_regress creates its output directory but not the parents.
installcheck: | build/regress
build/regress:
	mkdir -p $@

.PHONY: demo test core-tests fuzz
demo:
	bash scripts/demo.sh
test:
	bash test/run.sh
core-tests:
	bash test/core/run.sh
fuzz:
	bash test/fuzz/run.sh
