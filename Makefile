# The two set-up commands of the README are `make demo` and `make test`; both
# install what is missing first (Debian packages as root, then .venv).
PY := .venv/bin/python
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help bootstrap demo test bench p4 p4-tna proto lint clean p4runtime-shell

help:
	@echo "make demo    install what is missing, then run the main job"
	@echo "make test    install what is missing, then run the whole test suite"
	@echo "make bench   run the benchmarks and print their tables"
	@echo "make p4      recompile p4src/ into p4src/build/ with p4c"
	@echo "make p4-tna  compile p4src/tna/ into p4src/tna/build/ with bf-p4c (Tofino)"
	@echo "make proto   regenerate controller/proto/*_pb2*.py from the .proto files"
	@echo "make lint    ruff, and mypy on every package but bmv2 (built-in target) and benchmarks"
	@echo "make p4runtime-shell   p4lang's P4Runtime shell in its own venv (an old"
	@echo "             protobuf): an independent client for tests/p4runtime"

bootstrap:
	@scripts/bootstrap.sh

demo: bootstrap
	$(PY) -m experiments.demo

test: bootstrap
	$(PY) -m pytest

bench: bootstrap
	$(PY) -m benchmarks

p4: bootstrap
	@$(PY) -m bmv2.p4build

p4-tna: bootstrap
	@$(PY) -m bmv2.p4build --tna

proto: bootstrap
	@$(PY) -m controller.protogen

lint: bootstrap
	$(PY) -m ruff check .
	$(PY) -m mypy controller hostagent netlab clikit schedmodels p4src topologies experiments

# p4runtime-shell pins protobuf 3.x; the project's venv has protobuf 6 (finsy), so the
# shell gets a venv of its own, used only by tests/p4runtime/test_p4runtime_shell.py
p4runtime-shell:
	python3 -m venv .venv-p4runtime-shell
	.venv-p4runtime-shell/bin/pip install -q "p4runtime-shell>=0.0.6"

clean:
	rm -rf .venv .venv-p4runtime-shell .pytest_cache *.egg-info
