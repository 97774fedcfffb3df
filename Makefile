# The only commands a newcomer needs: make run, make test.
MODULES := events adapters services tools
BIN     := bin/hikeshi
GO      ?= go

.PHONY: build run test bench fuzz lint tidy clean

build:
	$(GO) build -o $(BIN) ./services/cmd/hikeshi

run: build
	./$(BIN) serve

test:
	@set -e; for m in $(MODULES); do echo "== $$m"; (cd $$m && $(GO) test -race -count=1 ./...); done
	@echo "== events module stands alone"; cd events && GOWORK=off $(GO) test -count=1 ./...

bench:
	$(GO) run ./tools/cmd/hikeshi-bench $(BENCHFLAGS)

fuzz:
	cd events && $(GO) test -run '^$$' -fuzz FuzzUnmarshal -fuzztime 30s .

lint:
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) vet ./...); done
	@test -z "$$(gofmt -l $(MODULES))" || { gofmt -l $(MODULES); exit 1; }

clean:
	rm -rf bin
