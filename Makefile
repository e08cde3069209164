# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run run-time test deps lint typecheck pytest clean bench bench-events bench-granian bench-ws \
	fuzz soak bench-check bench-check-record bench-scaling bench-instructions

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

## make run: install, then run the runnerly system (gateway on http://127.0.0.1:8000, users 8001,
## runs 8002, stats 8003, nats-server 4222)
run: $(STAMP)
	$(BIN)/shoal up examples/runnerly

## make run-time: the smallest example, the time service, on http://127.0.0.1:8000
run-time: $(STAMP)
	$(BIN)/shoal run examples.time_service:app --host 127.0.0.1 --port 8000

## make test: install everything the tests need, then ruff, mypy and the whole pytest suite
test: $(STAMP) lint typecheck pytest

## make deps: system packages the tests need (PostgreSQL's and Redis's servers, via apt-get when missing)
deps:
	sh scripts/postgres.sh
	sh scripts/redis.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests examples bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) deps
	$(BIN)/pytest

# The docs-page test drives Debian's chromium with Playwright (never `playwright install`).
pytest: /usr/bin/chromium
/usr/bin/chromium:
	DEBIAN_FRONTEND=noninteractive apt-get install -y chromium \
	  || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

## make bench: shoal against its peers with wrk; writes docs/benchmarks.md (BENCH_ARGS=--quick for a smoke)
bench:
	$(PYTHON) -m bench $(BENCH_ARGS)

## make bench-check: a few minutes; run it before you merge a change on the request path. shoal, bare
## granian and the fastest framework peer on json and params, interleaved rounds; fails if one of
## shoal's ratios falls more than 5 % under bench/baseline.json (BENCH_CHECK_ARGS=--rounds 7 ...)
bench-check:
	$(PYTHON) -m bench.check $(BENCH_CHECK_ARGS)

## make bench-check-record: measure the same and write bench/baseline.json (commit it)
bench-check-record:
	$(PYTHON) -m bench.check --record $(BENCH_CHECK_ARGS)

## make bench-scaling: json req/s by workers (1, 2, 4, 8, 16 as the cores allow): shoal, aiohttp
## (SO_REUSEPORT), Starlette on granian, bare granian; table and chart in .bench/scaling/
bench-scaling:
	$(PYTHON) -m bench.scaling $(BENCH_SCALING_ARGS)

## make bench-instructions: instructions per request by thread of one worker, under valgrind's
## callgrind (noise-free; BENCH_INSTRUCTIONS_ARGS="--workloads json --peers shoal,shoal-ops-off")
bench-instructions:
	$(PYTHON) -m bench.instructions $(BENCH_INSTRUCTIONS_ARGS)

## make bench-events: shoal vs FastStream consumers on one NATS server, and the outbox's cost;
## writes the Events section of docs/benchmarks.md
bench-events:
	$(PYTHON) -m bench.events

## make bench-granian: granian's side of a response (header lists, str bodies) and its event loop
bench-granian:
	$(PYTHON) -m bench.granian_costs

## make bench-ws: WebSocket echo round trips per second, shoal against aiohttp and Starlette
## (bench/websockets.py; BENCH_WS_ARGS="--seconds 2 --rounds 1" for a smoke)
bench-ws:
	$(PYTHON) -m bench.websockets $(BENCH_WS_ARGS)

## make fuzz: atheris, coverage-guided, on both adapters (FUZZ_SECONDS=600; corpus in .fuzz/)
FUZZ_SECONDS ?= 600
fuzz: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[fuzz]'
	mkdir -p .fuzz/corpus
	cd .fuzz && PYTHONPATH=$(CURDIR) ../$(BIN)/python -m tests.hardening.atheris_harness corpus \
	  -dict=$(CURDIR)/tests/hardening/fuzz.dict -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1

## make soak: bounded wrk load with slowloris, slow-body and slow-reader clients mixed in (SOAK_SECONDS=60)
SOAK_SECONDS ?= 60
soak: $(STAMP)
	$(BIN)/python -m tests.hardening.soak --seconds $(SOAK_SECONDS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
