# enrichd - one GNU Makefile, pkg-config for dependencies, no configure step.
#
#   make                      build everything into build/
#   make test                 unit + integration suites (ends with "N passed, N failed, N skipped")
#   make SAN=address,undefined test
#                             the same, built with sanitizers into build-san/
#   make SAN=thread test-unit ThreadSanitizer build in build-tsan/ (CI runs the
#                             unit tests there)
#   make lint                 banned functions and other greps
#   make fuzz                 build the libFuzzer targets (clang) into build-fuzz/
#   make bench                the benchmark harness (bench/run.sh)
#   make install PREFIX=/usr/local DESTDIR=
#   make install-service      install, plus /etc/enrichd, systemd units, nginx site
#                             (into DESTDIR; user and group: service-setup.sh)
#   make deb                  a Debian package (dpkg-deb) in $(BUILD)/deb/
#   make clean

PREFIX    ?= /usr/local
DESTDIR   ?=
CC        ?= cc
SAN       ?=
PKGS      := libcurl jansson libconfig sqlite3 libpq libcrypto libpsl
# Only the benchmark's do-nothing baseline links libfcgi; enrichd speaks
# FastCGI itself (lib/fcgi.c).
BENCH_PKGS := fcgi libnghttp2 libssl

ifeq ($(SAN),)
BUILD     ?= build
else ifeq ($(SAN),thread)
BUILD     ?= build-tsan
else
BUILD     ?= build-san
endif
# One spelling of the build directory: objects made with BUILD given as an
# absolute path and as a relative one must share their dependency files.
override BUILD := $(patsubst $(CURDIR)/%,%,$(BUILD))

WARN      := -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
             -Wmissing-prototypes -Wformat=2 -Wvla
HARDEN    := -fstack-protector-strong -fPIE
ifeq ($(SAN),)
HARDEN    += -D_FORTIFY_SOURCE=2
endif
# Warnings are errors in CI and whenever WERROR=1.
ifneq ($(CI),)
WERROR    ?= 1
endif
ifeq ($(WERROR),1)
WARN      += -Werror
endif

# Some .pc files name the multiarch system include directory; as a -I it would
# be searched before the compiler's own headers and break <limits.h>.
PKG_CFLAGS := $(filter-out -I/usr/include -I/usr/include/%-linux-gnu,\
                $(shell pkg-config --cflags $(PKGS) $(BENCH_PKGS) 2>/dev/null))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
BENCH_LIBS := $(shell pkg-config --libs $(BENCH_PKGS) 2>/dev/null)

CFLAGS    ?= -O2 -g
CPPFLAGS  += -D_GNU_SOURCE -iquote . -DENRICHD_VERSION='"$(VERSION)"'
ALL_CFLAGS = $(WARN) $(HARDEN) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP
LDFLAGS   += -pie -Wl,-z,relro,-z,now
LDLIBS    += $(PKG_LIBS) -lpthread -lm

ifneq ($(SAN),)
ALL_CFLAGS += -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS    += -fsanitize=$(SAN)
endif

VERSION   := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

LIB_SRCS  := $(sort $(wildcard lib/*.c lib/providers/*.c))
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/%.o)
LIB_A     := $(BUILD)/libenrichd.a

CGI_SRCS  := $(sort $(wildcard cgi/*.c))
CGI_OBJS  := $(CGI_SRCS:%.c=$(BUILD)/%.o)

# A tool is either one file tools/NAME.c or a directory tools/NAME/ whose .c
# files make one program NAME.
TOOLS_1   := $(patsubst tools/%.c,%,$(wildcard tools/*.c))
TOOLS_N   := $(patsubst tools/%/,%,$(sort $(dir $(wildcard tools/*/*.c))))
TOOLS     := $(TOOLS_1) $(TOOLS_N)
TOOL_BINS := $(TOOLS:%=$(BUILD)/%)
TOOL_SRCS := $(wildcard tools/*.c tools/*/*.c)
TOOL_OBJS := $(TOOL_SRCS:%.c=$(BUILD)/%.o)

BENCH_SRCS := $(wildcard bench/*.c)
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)
BENCH_OBJS := $(BENCH_SRCS:%.c=$(BUILD)/%.o)

UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=build-fuzz/%)

BINS      := $(BUILD)/enrichd $(TOOL_BINS) $(BENCH_BINS)

# The fibers' unit tests once more with the switch other machines get
# (ucontext, lib/fiber.c), so that code is built and run here too.
FIB_PORTABLE_OBJS := $(BUILD)/portable/lib/fiber.o $(BUILD)/portable/tests/unit/test_fiber.o
FIB_PORTABLE_BIN  := $(BUILD)/tests/test_fiber_portable

.PHONY: all test test-unit test-integration lint fuzz fuzz-run bench install install-service deb clean deps

# Objects are reached through pattern rules; without this make would treat
# them as intermediate files and delete them after every build, so the next
# `make` would compile them again.
.SECONDARY:

all: $(BINS) $(UNIT_BINS) $(FIB_PORTABLE_BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@


$(BUILD)/portable/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -DFIB_PORTABLE $(ALL_CFLAGS) -c $< -o $@

$(FIB_PORTABLE_BIN): $(FIB_PORTABLE_OBJS) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(FIB_PORTABLE_OBJS) $(LIB_A) $(LDLIBS)

$(LIB_A): $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/enrichd: $(CGI_OBJS) $(LIB_A)
	$(CC) $(LDFLAGS) -o $@ $(CGI_OBJS) $(LIB_A) $(LDLIBS)

$(foreach t,$(TOOLS_1),$(eval $(BUILD)/$(t): $(BUILD)/tools/$(t).o $(LIB_A)))
$(foreach t,$(TOOLS_N),$(eval $(BUILD)/$(t): $(patsubst %.c,$(BUILD)/%.o,$(wildcard tools/$(t)/*.c)) $(LIB_A)))
$(TOOL_BINS):
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIB_A) $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/bench/%.o
	$(CC) $(LDFLAGS) -o $@ $< $(LDLIBS) $(BENCH_LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIB_A) $(LDLIBS)

test: all
	BUILD=$(BUILD) SAN=$(SAN) tests/run.sh

test-unit: all
	BUILD=$(BUILD) SAN=$(SAN) tests/run.sh unit

test-integration: all
	BUILD=$(BUILD) SAN=$(SAN) tests/run.sh integration

# Functions that have no place in this code base (curl's banned list): unbounded
# copies and formats, functions with hidden static state (not thread-safe), the
# scanf family, unchecked number parsing.
# Replacements: util_strlcpy and buf_printf/snprintf for copies and formats,
# gmtime_r (util_fmt_time_*), util_parse_i64 / util_parse_double for numbers.
BANNED := \b(strcpy|strcat|strncpy|strncat|sprintf|vsprintf|gets|atoi|atol|atoll|atof|strtok|strtok_r|tmpnam|tempnam|mktemp|gmtime|localtime|ctime|asctime|sscanf|scanf|fscanf|vscanf|vsscanf|vfscanf|alloca)[[:space:]]*\(
# Number parsing goes through util_parse_i64/util_parse_double (whole string,
# range checked); the one place that wraps strtod says lint-ok.
UNCHECKED := \bstrto(l|ll|ul|ull|imax|umax|d|f|ld)[[:space:]]*\(
LINT_SRCS := lib/*.c lib/*.h lib/providers/*.c cgi/*.c cgi/*.h tools/*.c tools/*/*.[ch] bench/*.c
lint:
	@if grep -nE '$(BANNED)' $(LINT_SRCS) 2>/dev/null; then \
		echo "lint: banned function used (see above)"; exit 1; fi
	@if grep -nE '$(UNCHECKED)' $(LINT_SRCS) 2>/dev/null | grep -v 'lint-ok'; then \
		echo "lint: use util_parse_i64 / util_parse_double instead of strto*"; exit 1; fi
	@echo "lint: ok"

# libFuzzer targets need clang; the library is built once for all of them.
FUZZ_CC    ?= clang
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer-no-link,address,undefined -D_GNU_SOURCE -iquote . \
              $(PKG_CFLAGS) -MMD -MP
FUZZ_OBJS  := $(LIB_SRCS:%.c=build-fuzz/%.o)
fuzz: $(FUZZ_BINS)

build-fuzz/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -c $< -o $@

build-fuzz/libenrichd.a: $(FUZZ_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c build-fuzz/libenrichd.a
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< build-fuzz/libenrichd.a $(PKG_LIBS) -lpthread -lm

# Run every fuzz target for FUZZ_SECONDS each, from its seed corpus.
FUZZ_SECONDS ?= 30
fuzz-run: fuzz
	tests/fuzz/run.sh $(FUZZ_SECONDS)

bench: all
	BUILD=$(BUILD) bench/run.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin \
		$(DESTDIR)$(PREFIX)/share/enrichd/nginx $(DESTDIR)$(PREFIX)/share/enrichd/data \
		$(DESTDIR)$(PREFIX)/share/enrichd/conf $(DESTDIR)$(PREFIX)/share/enrichd/console \
		$(DESTDIR)$(PREFIX)/share/enrichd/docs
	install -m 0755 $(BUILD)/enrichd $(DESTDIR)$(PREFIX)/sbin/enrichd
	for t in $(TOOLS); do install -m 0755 $(BUILD)/$$t $(DESTDIR)$(PREFIX)/bin/$$t; done
	install -m 0644 nginx/*.in $(DESTDIR)$(PREFIX)/share/enrichd/nginx/
	install -m 0755 nginx/render.sh $(DESTDIR)$(PREFIX)/share/enrichd/nginx/render.sh
	install -m 0644 conf/enrichd.conf $(DESTDIR)$(PREFIX)/share/enrichd/conf/enrichd.conf
	if [ -d data ]; then install -m 0644 data/* $(DESTDIR)$(PREFIX)/share/enrichd/data/; fi
	install -m 0644 console/* $(DESTDIR)$(PREFIX)/share/enrichd/console/
	install -m 0644 docs/openapi.json $(DESTDIR)$(PREFIX)/share/enrichd/docs/openapi.json
	install -d $(DESTDIR)$(PREFIX)/share/doc/enrichd
	install -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/enrichd/README.md

UNIT_DIR ?= /etc/systemd/system
install-service: install
	dist/install-service.sh "$(DESTDIR)" "$(PREFIX)" "$(BUILD)" "$(UNIT_DIR)"

deb: all
	dist/mkdeb.sh "$(BUILD)"

clean:
	rm -rf build build-san build-tsan build-perf build-fuzz

-include $(LIB_OBJS:.o=.d) $(FUZZ_OBJS:.o=.d) $(CGI_OBJS:.o=.d) $(TOOL_OBJS:.o=.d) \
	 $(BENCH_OBJS:.o=.d) $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%.d) \
	 $(FIB_PORTABLE_OBJS:.o=.d)
