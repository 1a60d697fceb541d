# kvgate — plain Makefile.
#   make                       build bin/kvgate
#   make SANITIZE=address,undefined   sanitizer build in build/san-*/ (binary bin/kvgate-san)
#   make deps                  install missing Debian/npm packages
#   make run                   deps + build + serve on 127.0.0.1:2379, data in ./data
#   make test                  deps + build + every test
#   make bench                 side-by-side benchmarks with etcd (long)

CC      ?= cc
PKGS    := libmicrohttpd jansson rocksdb
OPT     ?= -O2 -g
CFLAGS  := $(OPT) -std=gnu11 -Wall -Wextra -Werror -Wno-missing-field-initializers \
           -MMD -MP -pthread -D_GNU_SOURCE -Istore -Igateway \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(EXTRA_CFLAGS)
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lmicrohttpd -ljansson -lrocksdb) -pthread -lm
LDFLAGS := $(EXTRA_LDFLAGS)

comma := ,
BUILDROOT ?= build
# The binary lands in bin/ for the default BUILDROOT, else inside BUILDROOT
# (so several people can build side by side).
BINDIR  := $(if $(filter build,$(BUILDROOT)),bin,$(BUILDROOT)/bin)
ifdef SANITIZE
VARIANT := san-$(subst $(comma),_,$(SANITIZE))
CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
BIN     := $(BINDIR)/kvgate-$(VARIANT)
else
VARIANT := release
BIN     := $(BINDIR)/kvgate
endif
BUILD := $(BUILDROOT)/$(VARIANT)

STORE_SRC   := $(wildcard store/*.c)
GATEWAY_SRC := $(filter-out gateway/main.c,$(wildcard gateway/*.c))
STORE_OBJ   := $(patsubst %.c,$(BUILD)/%.o,$(STORE_SRC))
GATEWAY_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(GATEWAY_SRC))
# Files served by gateway/static_http.c, embedded at build time: web/ (one
# directory down too) and openapi.yaml -> $(BUILD)/gen/assets.c.  The list is
# kept in assets.list (rewritten only when it changes) so that adding or
# removing a file regenerates the table too.
ASSET_SRC   := $(sort $(shell find web -maxdepth 2 -type f \( -name '*.js' -o -name '*.css' \
                 -o -name '*.html' -o -name '*.svg' \) ! -path '*/node_modules/*' 2>/dev/null)) openapi.yaml
ASSET_OBJ   := $(BUILD)/gen/assets.o
LIB_OBJ     := $(STORE_OBJ) $(GATEWAY_OBJ) $(ASSET_OBJ)
MAIN_OBJ    := $(BUILD)/gateway/main.o

# Unit tests: tests/unit/store_*.c link the store layer only;
# tests/unit/gateway_*.c link store + gateway.  Each prints "N passed, N failed".
STORE_UNIT   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/store_*.c))
GATEWAY_UNIT := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/gateway_*.c))
UNIT_BIN     := $(STORE_UNIT) $(GATEWAY_UNIT)
# The concurrency tests run under ThreadSanitizer by tests/run_all.sh:
#   make SANITIZE=thread BUILDROOT=build/tsan tsan-unit
TSAN_UNIT    := $(addprefix $(BUILD)/tests/,store_watch_concurrent store_commit store_lease)


.PHONY: FORCE all unit-bin store-unit tsan-unit deps run test unit e2e diff crash bench clean sanitize
all: $(BIN)

$(BIN): $(LIB_OBJ) $(MAIN_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/gen/assets.list: FORCE
	@mkdir -p $(dir $@)
	@echo '$(ASSET_SRC)' | cmp -s - $@ 2>/dev/null || echo '$(ASSET_SRC)' >$@

$(BUILD)/gen/assets.c: gateway/gen_assets.sh $(ASSET_SRC) $(BUILD)/gen/assets.list
	sh gateway/gen_assets.sh $@ $(ASSET_SRC)

$(ASSET_OBJ): $(BUILD)/gen/assets.c
	$(CC) $(CFLAGS) -c -o $@ $<

$(STORE_UNIT): $(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(STORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(GATEWAY_UNIT): $(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

store-unit: $(STORE_UNIT)
	@rc=0; for t in $(STORE_UNIT); do echo "== $$t"; $$t || rc=1; done; exit $$rc

unit-bin: $(UNIT_BIN)

tsan-unit: $(TSAN_UNIT)

unit: $(UNIT_BIN)
	@rc=0; for t in $(UNIT_BIN); do echo "== $$t"; $$t || rc=1; done; exit $$rc

deps:
	@bash tests/deps.sh

run: deps all
	@mkdir -p data
	./bin/kvgate --listen 127.0.0.1:2379 --data-dir ./data

# Every test; see tests/run_all.sh for the list.
test: deps
	@$(MAKE) --no-print-directory -j$$(nproc) all
	@bash tests/run_all.sh

sanitize:
	@$(MAKE) --no-print-directory SANITIZE=address,undefined all unit

# libFuzzer targets (tests/fuzz/fuzz_*.c), built with clang into
# $(BUILDROOT)/fuzz/ from the pure gateway pieces they exercise (JSON
# decoders, base64, SSE, watch parameters: no RocksDB, no sockets).
#   make fuzz                  build them
#   make fuzz-run              run each with a fixed seed for FUZZ_RUNS inputs,
#                              at most FUZZ_TIME seconds (reproducible: CI runs this)
#   make fuzz-explore          run each for FUZZ_TIME seconds with a random seed
FUZZ_CC      ?= clang
FUZZ_DIR     := $(BUILDROOT)/fuzz
FUZZ_TIME    ?= 15
FUZZ_CFLAGS  := -O1 -g -std=gnu11 -Wall -Wextra -Werror -Wno-missing-field-initializers \
                -MMD -MP -pthread -D_GNU_SOURCE -Istore -Igateway -fno-omit-frame-pointer \
                $(shell pkg-config --cflags jansson 2>/dev/null)
FUZZ_LIB_OBJ := $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,gateway/etcd_json.c gateway/gojson.c \
                gateway/b64.c gateway/buf.c gateway/watch_json.c gateway/watch_params.c \
                gateway/sse.c store/kv_types.c)
FUZZ_BIN     := $(patsubst tests/fuzz/%.c,$(FUZZ_DIR)/%,$(wildcard tests/fuzz/fuzz_*.c))

.PHONY: fuzz fuzz-run fuzz-explore
fuzz: $(FUZZ_BIN)

fuzz-run: fuzz
	@bash tests/fuzz/run.sh $(FUZZ_TIME) $(FUZZ_BIN)

fuzz-explore: fuzz
	@FUZZ_SEED=0 FUZZ_RUNS=-1 bash tests/fuzz/run.sh $(FUZZ_TIME) $(FUZZ_BIN)

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined -c -o $@ $<

$(FUZZ_DIR)/%: $(FUZZ_DIR)/obj/tests/fuzz/%.o $(FUZZ_LIB_OBJ)
	$(FUZZ_CC) -fsanitize=fuzzer,address,undefined -o $@ $^ \
	    $(shell pkg-config --libs jansson 2>/dev/null || echo -ljansson) -lm

bench: deps all
	@bash tests/bench/run.sh

clean:
	rm -rf build bin

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
-include $(shell find $(FUZZ_DIR) -name '*.d' 2>/dev/null)
