# bindguard — `make test` is the one command that checks everything (README, .ci/run).
# It installs what the tests need when it is missing: Debian packages through apt-get when run
# as root, Go tools from go.mod's tool directives (staticcheck) or a pinned `go install` (gosec,
# kept out of go.mod because it pulls in grpc).

GO          ?= go
GOSEC_VER   := v2.30.0
BIN         := $(CURDIR)/.bin
# Debian packages the test suite needs: gcc for the race detector (cgo), iproute2 (ip, ss) for
# the namespace tests, prometheus for promtool, nginx for nginx -t and the end-to-end test,
# systemd for systemd-analyze verify, redis-server and zabbix-agent2 for the monitor's sinks,
# lxc, lxc-templates (the debian template), debootstrap and rsync (the template copies its cache
# with it) for the real-LXC tests (internal/lxctest).
# gunicorn, python3-flask, python3-uvicorn and python3-fastapi for bindguard run's real servers.
# chromium for the dashboard's browser test (chromedp drives it headless; make screenshot).
# distro-info: the LXC debian template needs debian-distro-info to name bookworm's security suite.
DEB_PACKAGES := gcc iproute2 prometheus nginx systemd redis-server zabbix-agent2 lxc lxc-templates debootstrap distro-info rsync gunicorn python3-flask python3-uvicorn python3-fastapi nftables nmap chromium
FUZZTIME    ?= 30s

.PHONY: generate generate-check generate-deps bench-live bench-audit-pidns test deps lint vet cross staticcheck gosec fmt-check tidy-check unit fuzz bench bench-audit bench-access bench-serve build package bench-containers screenshot

test: deps lint generate-check unit

build:
	$(GO) build -o $(BIN)/bindguard ./cmd/bindguard

# docs/dashboard.png, the README's screenshot of serve's page: the dashboard's browser test
# (headless chromium against a monitor of a test network namespace; root) writes it.
screenshot:
	BINDGUARD_DASHBOARD_SCREENSHOT=$(CURDIR)/docs/dashboard.png $(GO) test -count=1 -run '^TestDashboardBrowser$$' ./internal/monitor/

# The Debian package, in .bin: the binary, man pages and shell completions generated from the
# command tree, the systemd unit (not enabled or started), /etc/bindguard with an example
# policy and /var/lib/bindguard. nfpm is installed into .bin at a pinned version
# (scripts/package.sh). packaging/package_test.go installs and purges it as root.
package:
	@GO=$(GO) scripts/package.sh $(BIN)

deps:
	@scripts/install-deps.sh $(DEB_PACKAGES)
	@test -x $(BIN)/gosec || GOBIN=$(BIN) $(GO) install github.com/securego/gosec/v2/cmd/gosec@$(GOSEC_VER)

lint: fmt-check tidy-check vet cross staticcheck gosec

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

tidy-check:
	$(GO) mod tidy -diff

vet:
	$(GO) vet ./...

# The pure packages and every command build off Linux (commands that need Linux say so at run
# time): a build and vet for darwin keeps Linux-only code in _linux.go files.
cross:
	GOOS=darwin $(GO) build ./...
	GOOS=darwin $(GO) vet ./...

staticcheck:
	$(GO) tool staticcheck ./...

gosec:
	$(BIN)/gosec -quiet -exclude-dir=.bin -exclude-dir=testdata ./...

unit:
	$(GO) test -race -count=1 -timeout 25m ./...

# Run every fuzz target for FUZZTIME each (new crashers land in the package's testdata/fuzz).
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$t"; $(GO) test $$pkg -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME); \
		done; \
	done

bench:
	$(GO) test ./policy -run '^$$' -bench . -benchmem -count 5
	$(GO) test ./access -run '^$$' -bench . -benchmem -count 5

# access.Middleware's throughput cost under wrk on loopback (installs wrk as root).
bench-access:
	bench/access-middleware.sh 5 10s 32

# bindguard serve's CPU and memory at a 10 s interval on 10,000 listeners, against ss in a loop (root).
bench-serve:
	bench/serve-load.sh 10000 500 1500 50 10 120

# audit --netns all over 12 real LXC containers against ss -tulnp inside each in turn (root).
bench-containers:
	bench/audit-containers.sh 12 9

# The audit against ss, netstat and lsof on a namespace with 10,000 listeners (root).
bench-audit:
	bench/audit-vs-peers.sh 10000 500 1500 50 7

# The BPF programs (internal/kernel/bpf/*.c) compiled by bpf2go (go.mod's tool directive) with
# Debian's clang into the committed objects. generate-check rebuilds them and fails when the
# committed files differ, so the objects always match their sources.
BPF_DEB_PACKAGES := clang llvm libbpf-dev linux-libc-dev

generate-deps:
	@scripts/install-deps.sh $(BPF_DEB_PACKAGES)

generate: generate-deps
	$(GO) generate ./internal/kernel/...

generate-check: generate
	@git diff --exit-code --stat -- internal/kernel || { echo "generate-check: the committed BPF objects differ from their sources; run make generate and commit"; exit 1; }
	@out=$$(git ls-files --others --exclude-standard -- internal/kernel); \
	if [ -n "$$out" ]; then echo "generate-check: make generate wrote untracked files:"; echo "$$out"; exit 1; fi

# The kernel event source's latency: listen() returning to the event in Go, 1,000 listeners x 5 (root).
bench-live:
	bench/live-latency.sh 1000 5

# The audit against ss with 1,000 UDP sockets too, on the host and inside a child pid namespace (root).
bench-audit-pidns:
	bench/audit-vs-peers.sh 10000 500 1500 50 7 1000 both
