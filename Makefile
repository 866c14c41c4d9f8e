# Top-level targets: `make deb` (the Debian packages) leads the README's
# install section, `make run` (demo) and `make test` (everything) its
# checkout part; the rest are their parts.
ROOT      := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
BUILD     := $(ROOT)/build
MODULE    := $(BUILD)/ngx_http_discovery_module.so
PYTHON    := /usr/bin/python3

CXX       ?= g++
CORE_SRCS := $(wildcard $(ROOT)/src/core/*.cpp)
CORE_HDRS := $(wildcard $(ROOT)/src/core/*.hpp) $(ROOT)/src/discovery_core.h
CORE_OBJS := $(patsubst $(ROOT)/src/core/%.cpp,$(BUILD)/core/%.o,$(CORE_SRCS))
# the core sees no nginx header and no header of ours but its own: only
# bridge.cpp, which implements the bridge, also sees src/discovery_core.h
CORE_FLAGS := -std=c++17 -O2 -g -fPIC -fvisibility=hidden -fno-semantic-interposition -Wall -Wextra -Werror -I$(ROOT)/src/core
UNIT_SRCS := $(wildcard $(ROOT)/t/unit/*_test.cpp)
UNIT_HDRS := $(wildcard $(ROOT)/t/unit/*.hpp)
# The sanitized build, one for the unit tests and the fuzzers: the core is
# compiled once, with ASan, UBSan and libFuzzer's coverage, and linked into
# both (clang++, which libFuzzer needs, compiled it in two thirds of g++'s
# time).  -g1: the line tables the sanitizers' reports need (-g built a
# fifth slower)
SAN_CXX   ?= $(shell command -v clang++ >/dev/null 2>&1 && echo clang++ || echo clang++-14)
SAN_FLAGS := -std=c++17 -O1 -g1 -Wall -Wextra -Werror -I$(ROOT)/src/core -I$(ROOT)/src \
             -fno-omit-frame-pointer -fsanitize=address,undefined \
             -fno-sanitize-recover=undefined -fsanitize=fuzzer-no-link
# the tests' own code: no coverage for the fuzzers, and not optimized
# (gtest's macros compile in a third of -O1's time; the core they test is
# the sanitized core above)
TEST_FLAGS := $(filter-out -O1 -fsanitize=fuzzer-no-link,$(SAN_FLAGS)) -O0
SAN_CORE  := $(patsubst $(ROOT)/src/core/%.cpp,$(BUILD)/san/core/%.o,$(CORE_SRCS))
UNIT_OBJS := $(patsubst $(ROOT)/t/unit/%.cpp,$(BUILD)/san/test/%.o,$(UNIT_SRCS))

.PHONY: all module installed-module deps core san-core ui deb deb-check unit t pytest e2e fleet fuzz fuzz-smoke bench soak valgrind test run clean

all: module

deps:
	@$(ROOT)/build.sh deps

# builds only: `make deps` installs what it needs
module:
	@$(ROOT)/build.sh module

# what the targets that run nginx need: the packages, then the module
installed-module: deps
	@$(MAKE) -s module

core: $(BUILD)/libdiscovery_core.a

$(BUILD)/libdiscovery_core.a: $(CORE_OBJS)
	@rm -f $@
	ar rcs $@ $^

# the dashboard's page as a C array, which the module's config includes
ui: $(BUILD)/ui/ngx_http_discovery_ui_page.h

$(BUILD)/ui/ngx_http_discovery_ui_page.h: $(ROOT)/src/ui/dashboard.html $(ROOT)/src/ui/embed.sh
	@mkdir -p $(dir $@)
	$(ROOT)/src/ui/embed.sh $< $@

$(BUILD)/core/%.o: $(ROOT)/src/core/%.cpp $(CORE_HDRS) $(ROOT)/Makefile
	@mkdir -p $(dir $@)
	$(CXX) $(CORE_FLAGS) $(CPPFLAGS) $(CXXFLAGS) $(if $(filter bridge.cpp,$(notdir $<)),-I$(ROOT)/src) -c $< -o $@

# build/*.deb, the Debian packages (debian/), with dpkg-buildpackage; lintian
# checks them.  Installs what it needs, as `make deps` does
deb:
	@$(ROOT)/build.sh deb

# installs build/*.deb, checks the module and the helper as installed, then
# removes them (t/deb-check.sh)
deb-check:
	@$(ROOT)/t/deb-check.sh

# one object per source, so that `make -j` compiles them side by side: the
# sanitized build of everything in one g++ took minutes on a busy machine
$(BUILD)/san/core/%.o: $(ROOT)/src/core/%.cpp $(CORE_HDRS) $(ROOT)/Makefile
	@mkdir -p $(dir $@)
	$(SAN_CXX) $(SAN_FLAGS) -c $< -o $@

$(BUILD)/san/test/%.o: $(ROOT)/t/unit/%.cpp $(CORE_HDRS) $(UNIT_HDRS) $(ROOT)/Makefile
	@mkdir -p $(dir $@)
	$(SAN_CXX) $(TEST_FLAGS) -c $< -o $@

$(BUILD)/unit_tests: $(SAN_CORE) $(UNIT_OBJS)
	$(SAN_CXX) $(SAN_FLAGS) $^ -o $@ -lgtest -lgtest_main -lpthread -lyajl

# the sanitized core alone, which fuzz/run.sh links its targets with
san-core: $(SAN_CORE)

unit:
	@$(MAKE) -s -j$(shell nproc) $(BUILD)/unit_tests
	$(BUILD)/unit_tests

# Test::Nginx suites: the real Test::Nginx::Socket when installed, else the
# compatible harness in t/harness
# two test files at a time: they mostly wait (on polls, timeouts, reloads),
# and make test must stay well within CI's 15 minutes
t: installed-module
	@PROVE_JOBS=$${PROVE_JOBS:-2} $(ROOT)/t/run-prove.sh

pytest:
	cd $(ROOT) && PYTHONPATH=$(ROOT)/python $(PYTHON) -m pytest -q python/tests

# real FastAPI services behind the real module
e2e: installed-module
	cd $(ROOT) && PYTHONPATH=$(ROOT)/python $(PYTHON) -m pytest -q t/e2e

# many gateways, one registry: 3 etcd members, 3 gateways, self-registering
# services (t/e2e/test_fleet.py, part of make e2e), with its measures shown
fleet: installed-module
	cd $(ROOT) && PYTHONPATH=$(ROOT)/python $(PYTHON) -m pytest -q -s t/e2e/test_fleet.py

# libFuzzer targets of the core; FUZZ_SECONDS per target (default 60)
fuzz:
	@$(ROOT)/fuzz/run.sh

# a short fuzz run, part of make test
fuzz-smoke:
	@FUZZ_SECONDS=$${FUZZ_SECONDS:-5} $(ROOT)/fuzz/run.sh

bench: installed-module
	@$(ROOT)/bench/run.sh

soak: installed-module
	@$(ROOT)/soak/run.sh

valgrind: installed-module
	@$(ROOT)/t/run-valgrind.sh

test: installed-module
	@$(MAKE) -s unit
	@$(MAKE) -s fuzz-smoke
	@$(MAKE) -s t
	@$(MAKE) -s e2e
	@$(MAKE) -s pytest

run: installed-module
	@$(ROOT)/examples/run-demo.sh

clean:
	rm -rf $(BUILD) $(ROOT)/t/servroot*
