# Makefile for bingo_tune: the extension (PGXS), the pre-deploy tool in
# tools/, and the tests.
#
#   make && sudo make install      build and install into the server
#   make test                      run every test against a private copy of
#                                  the server installation (no root needed)
#   make installcheck              run the pg_regress tests against the
#                                  installed server, on a temporary instance

MODULE_big = bingo_tune
OBJS = \
	bingo_tune.o \
	builder.o \
	catalog.o \
	indexdef.o \
	queryid.o \
	apply.o \
	watcher.o \
	stats.o \
	report.o \
	derive.o \
	discover.o \
	hooks.o

EXTENSION = bingo_tune
# The version is written once, as default_version in bingo_tune.control;
# the install script's name and the tool's version (tools/Makefile) follow.
EXTVERSION := $(shell sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" $(if $(VPATH),$(VPATH)/)bingo_tune.control)
ifeq ($(EXTVERSION),)
$(error no default_version in bingo_tune.control)
endif
DATA = bingo_tune--$(EXTVERSION).sql
PGFILEDESC = "bingo_tune - keep bingo's statements within their latency budgets"

REGRESS = catalog advise derive discover apply plans report
REGRESS_OPTS = --temp-instance=./tmp_regress --temp-config=$(srcdir)/regress.conf

# -Wextra on top of PostgreSQL's own warnings.  Its unused-parameter and
# sign-compare checks fire on PostgreSQL's headers and on every
# PG_FUNCTION_ARGS, so those two are left to the server's defaults.
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare \
	-Wno-missing-field-initializers

EXTRA_CLEAN = tmp_install tmp_regress tmp_check results regression.diffs regression.out

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The libpq tool joins the same build.
all: tools-all
install: tools-install
clean: tools-clean

.PHONY: tools-all tools-install tools-clean test test-regress test-tap

tools-all:
	@if [ -f tools/Makefile ]; then $(MAKE) -C tools PG_CONFIG=$(PG_CONFIG) all; fi
tools-install:
	@if [ -f tools/Makefile ]; then $(MAKE) -C tools PG_CONFIG=$(PG_CONFIG) install; fi
tools-clean:
	@if [ -f tools/Makefile ]; then $(MAKE) -C tools PG_CONFIG=$(PG_CONFIG) clean; fi

# "make test": install the server's binaries plus this build into
# ./tmp_install (PostgreSQL finds its files relative to its binaries), then
# run pg_regress and the TAP tests against that copy as the current user.
# Nothing outside the checkout is written, so no root is needed.  The TAP
# tests' data and logs go to ./tmp_check by absolute path on every major, as
# PGXS does it from 17 (TESTDATADIR, TESTLOGDIR; without them 17's test
# modules use relative paths, which the server, in its data directory,
# resolves elsewhere).
TMP_INSTALL = $(CURDIR)/tmp_install
TMP_BINDIR = $(TMP_INSTALL)$(bindir)

$(TMP_INSTALL)/.done: all
	rm -rf '$(TMP_INSTALL)'
	$(MKDIR_P) '$(TMP_INSTALL)$(bindir)' '$(TMP_INSTALL)$(pkglibdir)' '$(TMP_INSTALL)$(datadir)'
	cp -a '$(bindir)/.' '$(TMP_INSTALL)$(bindir)/'
	cp -a '$(pkglibdir)/.' '$(TMP_INSTALL)$(pkglibdir)/'
	cp -a '$(datadir)/.' '$(TMP_INSTALL)$(datadir)/'
	$(MAKE) install DESTDIR='$(TMP_INSTALL)' >/dev/null
	touch $@

test: test-regress test-tap

test-regress: $(TMP_INSTALL)/.done
	$(top_builddir)/src/test/regress/pg_regress --inputdir=$(srcdir) \
		--bindir='$(TMP_BINDIR)' $(REGRESS_OPTS) $(REGRESS)

test-tap: $(TMP_INSTALL)/.done
	rm -rf '$(CURDIR)'/tmp_check
	$(MKDIR_P) '$(CURDIR)'/tmp_check
	TESTDIR='$(CURDIR)' TESTDATADIR='$(CURDIR)/tmp_check' TESTLOGDIR='$(CURDIR)/tmp_check/log' \
		PATH="$(TMP_BINDIR):$$PATH" PGPORT='6$(DEF_PGPORT)' \
		PG_REGRESS='$(top_builddir)/src/test/regress/pg_regress' \
		$(PROVE) -I $(top_builddir)/src/test/perl -I $(srcdir)/t $(PROVE_FLAGS) \
		$(if $(PROVE_TESTS),$(PROVE_TESTS),t/*.pl)

# "make demo [SCALE=N] [KEEP=1]": bench/demo.sh installs what is missing
# (as root), builds, and runs the narrated demo on a throwaway server in
# ./demo_run; "make demo-clean" stops that server and removes the folder.
# "make bench [SCALE=N]" (as an ordinary user) writes bench/RESULTS.md.
.PHONY: demo demo-clean bench
demo:
	bench/demo.sh $(if $(SCALE),--scale $(SCALE)) $(if $(filter 1,$(KEEP)),--keep)
demo-clean:
	bench/demo.sh --clean
bench: $(TMP_INSTALL)/.done
	bench/run.sh $(if $(SCALE),--scale $(SCALE))
