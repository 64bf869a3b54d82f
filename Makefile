# matgrad developer tasks. Needs only python3 (with venv and pip) and make.

VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: all install demo test bench clean distclean

all: test

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(STAMP)
	$(VENV)/bin/matgrad derive "||A*s - x||^2 + gamma*||A||^2" --wrt s --explain
	$(VENV)/bin/matgrad derive "sum(sqrt(V*(s.^2) + eps))" --wrt s --explain
	$(VENV)/bin/matgrad derive "||W'*W*x - x||^2" --wrt W --explain
	$(VENV)/bin/matgrad network "||W'*W*x - x||^2" --wrt W

test: $(STAMP)
	$(VENV)/bin/python -m pytest

$(BENCH_STAMP): $(STAMP)
	$(VENV)/bin/python -m pip install --quiet -e '.[bench]'
	touch $@

bench: $(BENCH_STAMP)
	$(VENV)/bin/python bench/run.py

# Build outputs and caches; the virtual environment stays (see distclean).
clean:
	rm -rf build dist *.egg-info .pytest_cache .hypothesis $(STAMP) $(BENCH_STAMP)
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
