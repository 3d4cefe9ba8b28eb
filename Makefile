# Engage: the two commands a new user needs are `make demo` and `make test`.
PRESET ?= default
BUILD_DIR := build/$(PRESET)
JOBS ?= $(shell nproc)
DEMO_CUSTOMERS ?= 100000
CTEST_ARGS ?= -L fast
PREFIX ?= /usr/local

.PHONY: deps configure build test demo install bench format format-check clean

deps:
	@scripts/install-deps

configure: deps
	@cmake --preset $(PRESET) $(CMAKE_ARGS) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

# Every fast test (unit + end-to-end on the real binary).
test: build
	@cd $(BUILD_DIR) && ctest $(CTEST_ARGS) --output-on-failure -j $(JOBS) --timeout 600

demo: build
	@DEMO_CUSTOMERS=$(DEMO_CUSTOMERS) ENGAGE=$(BUILD_DIR)/engage scripts/demo

# PREFIX/bin/engage and its libduckdb.so in PREFIX/lib/engage, found relative to the binary
# ($ORIGIN), so the prefix can be moved or copied. DESTDIR=/staging is honoured (packaging).
install: build
	@cmake --install $(BUILD_DIR) --prefix "$(PREFIX)"

bench:
	@scripts/install-deps --bench
	@$(MAKE) --no-print-directory build PRESET=release
	@bench/lake/run.sh $(BENCH_EVENTS)
	@bench/flow/run.sh
	@bench/ml/run.sh
	@bench/features/run.sh
	@bench/monitor/run.sh
	@bench/serve/run.sh

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

format-check:
	@git ls-files '*.cc' '*.h' | xargs clang-format --dry-run --Werror

clean:
	rm -rf build engage-home demo-data
