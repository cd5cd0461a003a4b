# Two commands on a fresh machine:  make demo  |  make test
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch first, on its own: a CPU wheel of 2.13.0 lies on disk here; an unpinned torch (or a
# package that pulls one) would download a multi-GB CUDA build
TORCH_PIN := torch==2.13.0

# the shared datasets mirror, when present and not chosen already
ifeq ($(origin WORDCONV_DATA), undefined)
ifneq ($(wildcard ../shared/data),)
export WORDCONV_DATA := $(abspath ../shared/data)
endif
endif

.PHONY: install browser demo test docs bench bench-family bench-peers clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(TORCH_PIN)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test,pretrained,serve,export]'
	touch $@

# Kim TextCNN (random embeddings) on MR, CV fold 0: trains, evaluates, prints the metrics
demo: install
	$(BIN)/wordconv train --data mr --model textcnn --fold 0 --output runs/demo-mr --overwrite

# Debian's Chromium for the browser test (tests/test_browser.py drives /usr/bin/chromium with Playwright;
# never `playwright install`, which downloads); skipped with a note where apt-get or root is missing
browser:
	@test -x /usr/bin/chromium || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  (apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 || \
	   (apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends chromium >/dev/null)); } || \
	  echo "note: no /usr/bin/chromium (install Debian's chromium): the browser test will be skipped"

test: install browser
	$(BIN)/python -m pytest -q

# the tutorial (docs/) and the API reference from the docstrings, offline, warnings as errors: build/site/index.html
docs: install
	$(BIN)/python -m mkdocs build --strict

bench: install
	$(BIN)/python bench/kim_table.py

# the peers (Keras 3 on torch, fastText, TF-IDF + LR), the matmul-peak fraction, memory; see BENCHMARKS.md
bench-peers: install
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[bench]'
	$(BIN)/python bench/keras_peer.py
	$(BIN)/python bench/fasttext_peer.py
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/memory.py

# Kim's table with pretrained vectors, DPCNN, CNN+attention (long: resumable, see BENCHMARKS.md)
bench-family: install
	$(BIN)/python bench/cnn_family.py

clean:
	rm -rf runs .pytest_cache
