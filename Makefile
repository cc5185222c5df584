# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
DEV    := $(VENV)/.installed-dev
# pip byte-compiles what it installs on one core (about 50 s of an 80 s install here); compileall
# does the same on every core. Like pip's own step it passes over a file this Python cannot compile
# (torch ships test files for newer Pythons), hence `|| true`.
COMPILE := $(PY) -m compileall -qq -j 0 $(VENV)/lib || true

.PHONY: demo test lint install clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# The demo needs the package alone; the tests and lint add the `dev` extra.
$(STAMP): $(PY) pyproject.toml constraints-cpu.txt
	$(PIP) install --quiet --no-compile -c constraints-cpu.txt -e .
	$(COMPILE)
	touch $(STAMP)

$(DEV): $(STAMP)
	$(PIP) install --quiet --no-compile -c constraints-cpu.txt -e '.[dev]'
	$(COMPILE)
	touch $(DEV)

install: $(DEV)

demo: $(STAMP)
	$(PY) -m magic_rl.demo

test: $(DEV)
	$(PY) -m pytest -q

lint: $(DEV)
	$(VENV)/bin/ruff check magic_rl tests benchmarks
	$(VENV)/bin/ruff format --check magic_rl tests benchmarks

clean:
	rm -rf $(VENV) .magic_cache runs
