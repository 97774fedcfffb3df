# The only commands a newcomer needs: make run, make test.
MODULES := events adapters services tools examples/consumer
BIN     := bin/hikeshi
GO      ?= go

.PHONY: build run test test-short bench bench-scale bench-sustained fuzz lint tidy clean cluster chaos

build:
	$(GO) build -o $(BIN) ./services/cmd/hikeshi

run: build
	./$(BIN) serve

test:
	@set -e; for m in $(MODULES); do echo "== $$m"; (cd $$m && $(GO) test -race -count=1 ./...); done
	@echo "== events module stands alone"; cd events && GOWORK=off $(GO) test -count=1 ./...

# The fast tier, for the edit-test loop: no -race, and the crash, lease,
# storm and other slow end-to-end tests skip themselves (testing.Short).
test-short:
	@set -e; for m in $(MODULES); do echo "== $$m"; (cd $$m && $(GO) test -short -count=1 ./...); done

# The Alertmanager baseline of the signals scenario needs Debian's
# prometheus-alertmanager; without it that baseline is skipped with a note.
bench:
	$(GO) run ./tools/cmd/hikeshi-bench $(BENCHFLAGS)
	cd services && $(GO) test -run '^$$' -bench Slack -benchtime 1x ./slackbot/
	cd services && $(GO) test -run '^$$' -bench Console -benchtime 1x ./console/

# The scale scenario builds its store (1M events over 20,000 incidents) once,
# in $TMPDIR/hikeshi-bench-scale, and measures the hub on it beside a fresh
# hub. Smaller: SCALEFLAGS='-scale-events 50000 -scale-incidents 2000'.
bench-scale:
	$(GO) run ./tools/cmd/hikeshi-bench -runs 1 -scenarios scale $(SCALEFLAGS)

# Distinct alerts at the highest rate for a minute, to the hub and to
# Alertmanager, from wrk (tools/cmd/hikeshi-bench/wrk/alerts.lua) and from
# the bench's own client. Needs wrk and prometheus-alertmanager.
bench-sustained:
	$(GO) run ./tools/cmd/hikeshi-bench -runs 1 -scenarios sustained $(SUSTAINEDFLAGS)

# Every fuzz target in every module, FUZZTIME each (go test fuzzes one
# target at a time).
FUZZTIME ?= 20s
fuzz:
	@set -e; for m in $(MODULES); do (cd $$m && for d in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
		for f in $$(grep -h '^func Fuzz' $$d/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
			echo "== $$m/$$d $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) ./$$d || exit 1; \
		done; done) || exit 1; done

# Three nats-server nodes (JetStream, routes on loopback, R3) and two hubs
# on them; Ctrl-C stops everything. See deploy/cluster/run.sh.
cluster:
	GO=$(GO) deploy/cluster/run.sh

# Fault tests with real processes: nats-server nodes and hubs killed,
# restarted and partitioned under load (the partition needs root and
# ip netns). Behind a build tag: they build their own binaries, without -race.
# CHAOSFLAGS passes go test flags, e.g. CHAOSFLAGS='-run TestRollingRestart'.
chaos:
	cd tools && $(GO) vet -tags chaos ./chaos/ && $(GO) test -tags chaos -count=1 -timeout 15m -v $(CHAOSFLAGS) ./chaos/

lint:
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) vet ./...); done
	@test -z "$$(gofmt -l $(MODULES))" || { gofmt -l $(MODULES); exit 1; }

clean:
	rm -rf bin
