# The README's two commands. `make run` and `make test` install missing Debian packages (as root),
# configure and build Release with every core, then run the main job or the whole test suite.
BUILD_DIR ?= build
JOBS      ?= $(shell nproc)
# Seconds the GGUF reader fuzzer runs at the end of `make test` (0 skips it); see fuzz/run.sh.
FUZZ_SECONDS ?= 60
CMAKE_ARGS ?=

.PHONY: all deps configure build run test fuzz clean

all: build

deps:
	@bash scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

# The main job: generate a story with the default model (see README).
run: build
	@$(BUILD_DIR)/rocforge run -n 200

test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 900
	@if [ "$(FUZZ_SECONDS)" != 0 ]; then $(MAKE) --no-print-directory fuzz; fi

# libFuzzer + ASan/UBSan on the GGUF reader, in its own clang build dir; fails on any finding.
fuzz: deps
	@FUZZ_BUILD_DIR=$(BUILD_DIR)-fuzz FUZZ_JOBS=$(JOBS) bash fuzz/run.sh $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD_DIR) $(BUILD_DIR)-fuzz
