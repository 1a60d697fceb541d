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
ifdef SANITIZE
VARIANT := san-$(subst $(comma),_,$(SANITIZE))
CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
BIN     := bin/kvgate-$(VARIANT)
else
VARIANT := release
BIN     := bin/kvgate
endif
BUILD := build/$(VARIANT)

STORE_SRC   := $(wildcard store/*.c)
GATEWAY_SRC := $(filter-out gateway/main.c,$(wildcard gateway/*.c))
LIB_OBJ     := $(patsubst %.c,$(BUILD)/%.o,$(STORE_SRC) $(GATEWAY_SRC))
MAIN_OBJ    := $(BUILD)/gateway/main.o

UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

.PHONY: all deps run test unit e2e diff crash bench clean sanitize
all: $(BIN)

$(BIN): $(LIB_OBJ) $(MAIN_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

deps:
	@bash tests/deps.sh

run: deps all
	@mkdir -p data
	./bin/kvgate --listen 127.0.0.1:2379 --data-dir ./data

# Every test; see tests/run_all.sh for the list.
test: deps
	@$(MAKE) --no-print-directory all
	@bash tests/run_all.sh

sanitize:
	@$(MAKE) --no-print-directory SANITIZE=address,undefined all unit

bench: deps all
	@bash tests/bench/run.sh

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)
