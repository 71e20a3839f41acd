# mlpipe: PGXS build. `make` builds the extension, `make install` installs it
# into the PostgreSQL found by pg_config; `make demo` and `make test` are the
# two README commands (scripts/ does the set-up).

EXTENSION = mlpipe
MODULE_big = mlpipe
CORE_SRCS = $(sort $(wildcard src/core/*.c))
PG_SRCS = $(sort $(wildcard src/pg/*.c))
OBJS = $(CORE_SRCS:.c=.o) $(PG_SRCS:.c=.o)
# Released scripts are committed as they are; an upgrade script under
# development is built from its fragments in sql/<version>/ (one per
# subsystem, applied in name order).
NEXT_VERSION = 0.3.0
NEXT_UPGRADE = sql/mlpipe--0.2.0--$(NEXT_VERSION).sql
DATA = $(filter-out $(NEXT_UPGRADE),$(sort $(wildcard sql/mlpipe--*.sql)))
DATA_built = $(NEXT_UPGRADE)
DOCS =

PG_CPPFLAGS = -Isrc/core -Isrc/pg
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare \
	-Wno-missing-field-initializers -Wno-cast-function-type
SHLIB_LINK = -lcjson -lpthread -lm

# pg_regress (PostgreSQL 15) reads <inputdir>/sql and <inputdir>/expected;
# build/regress links them to the top-level test/regress and expected/.
REGRESS = $(sort $(basename $(notdir $(wildcard test/regress/*.sql))))
REGRESS_OPTS = --inputdir=build/regress --outputdir=build/regress \
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

$(NEXT_UPGRADE): $(sort $(wildcard sql/$(NEXT_VERSION)/*.sql))
	cat $^ > $@

installcheck: build/regress/sql
build/regress/sql:
	mkdir -p build/regress
	ln -sfn ../../test/regress build/regress/sql
	ln -sfn ../../expected build/regress/expected

.PHONY: demo test core-tests fuzz
demo:
	bash scripts/demo.sh
test:
	bash test/run.sh
core-tests:
	bash test/core/run.sh
fuzz:
	bash test/fuzz/run.sh
