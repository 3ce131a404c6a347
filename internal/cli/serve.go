package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
	"github.com/spf13/cobra"

	"github.com/bindguard/bindguard/access"
	"github.com/bindguard/bindguard/internal/gen/systemd"
	"github.com/bindguard/bindguard/internal/kernel"
	"github.com/bindguard/bindguard/internal/monitor"
	"github.com/bindguard/bindguard/internal/probe"
	"github.com/bindguard/bindguard/listen"
	"github.com/bindguard/bindguard/policy"
)

// defaultDataDir is /var/lib/bindguard for root, else the user's state directory.
func defaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/bindguard"
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "bindguard")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "bindguard")
	}
	return "bindguard-data"
}

func newServeCmd(s Streams) *cobra.Command {
	var (
		policyPath, listenAddr, dataDir, webConfig, redisURL string
		interval, retention, grace                           time.Duration
		insecure, debug                                      bool
		maxConns                                             int
		obs                                                  observeFlags
		watch                                                formatFlag
		watchCgroup                                          string
		probeTargets                                         []string
		probeFrom, probeNetnsDir                             string
	)
	watch.value = string(monitor.WatchAuto)
	for _, w := range monitor.WatchModes() {
		watch.allowed = append(watch.allowed, string(w))
	}
	var enforce serveEnforce
	cmd := &cobra.Command{
		Use:   "serve [--policy FILE] [--netns all] [--watch auto|kernel|poll] [--interval 10s] [--grace 15s] [--web.listen-address ADDR] [--data DIR]",
		Short: "Audit continuously, keep a drift history, serve metrics and the latest report",
		Long: `Run the monitor: audit on start and every --interval, turn every change into a
drift event (a socket appeared, changed status or address, a violation was
resolved, a valid socket disappeared; the policy was reloaded), keep the events
in an embedded store under --data before anything else sees them, and serve
over HTTP.

--watch kernel follows the kernel's socket events (BPF: root, or CAP_BPF,
CAP_PERFMON and CAP_NET_ADMIN) and judges each listener the moment it opens or
closes; full audits then reconcile every --interval (default 60s in kernel
mode, 10s when polling). --watch auto (the default) is kernel where it loads,
else poll; /health and bindguard_watch_mode / bindguard_watch_fallback say
which runs and why it fell back. --grace (default 15s) holds back the
disappearance of a declared service's socket, so a restart raises nothing;
appearances are judged at once.

Endpoints:

  /               the dashboard: per namespace the binding matrix, the score
                  over time and the drift timeline (HTML, refreshes itself)
  /metrics        Prometheus metrics (score, findings, per-service compliance,
                  audit duration, errors, last success, the last reload's
                  outcome, build info, Go and process metrics)
  /health         200 while the last audit succeeded and is fresh, else 503;
                  a refused policy reload is reported in the body (still 200)
  /api/v1/audit   the latest report (as audit --format json)
  /api/v2/events  drift events (bindguard.events.v2: time, judged_at,
                  stored_at, netns), ?since=1h or an RFC 3339 time (default 24h)
  /api/v1/events  the same as bindguard.events.v1
  /api/v1/zabbix  the seed's Zabbix figures, for 'bindguard zabbix get'
  /probe          ?target=HOST[&scope=NAME]: probe a target the policy's probe:
                  section or --probe.target declares (any other is refused)
                  and answer bindguard_probe_* series (docs/probe.md)

With --redis (or the policy's monitor.redis) it also writes the seed's
zabbix:port_bindings hash after every audit and each event to the
bindguard:events stream, retrying from the store while Redis is down.

The listener is opened through bindguard's own listen package, on loopback by
default, or where the policy's service named "bindguard" says; bindguard's
access list is checked first, by the client's address: a refused client gets
403 and its connection closed, before any password check, rate limit or web
configuration read. TLS, basic auth, headers and a rate limit come from
--web.config.file (Prometheus exporter-toolkit format). Beyond loopback it
refuses to start without TLS or an allow list unless --insecure-listen.
Connections are bounded (--web.max-connections, and below the open-files
limit so audits always have descriptors; refused addresses have a budget of
their own) and every phase has a timeout.

While it runs, serve records where it listens in DATA/serve.json (0600,
removed on a clean exit), so that 'bindguard events' with no flags asks it.

--enforce applies the policy's enforcement as 'enforce apply --all' does (or
only --enforce.cgroup, --enforce.unit or --enforce.container) at start and
after every reload, in place, and records every bind its programs refuse as a
denied event (pid, process, unit, container, address, port, rule, errno) in
the store, the metrics (bindguard_enforce_*) and the Redis stream. Enforcement
stays attached when serve exits (enforce remove detaches it).

SIGHUP reloads the policy (an invalid one is refused and logged, reported by
/health and bindguard_config_last_reload_successful; the old one stays);
SIGTERM stops cleanly. Logs are JSON on standard error.`,
		Example: `  # Against ./bindguard.yaml (or the built-in catalogue), on 127.0.0.1:9847
  sudo bindguard serve --netns all

  # Every 30 s, events kept 7 days, TLS from a web config
  sudo bindguard serve -p /etc/bindguard/bindguard.yaml --interval 30s --retention 168h --web.config.file /etc/bindguard/web.yml`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			liftMemoryLimit()
			level := slog.LevelInfo
			if debug {
				level = slog.LevelDebug
			}
			logger := slog.New(slog.NewJSONHandler(s.Err, &slog.HandlerOptions{Level: level}))
			if interval < time.Second {
				return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--interval %s: at least 1s", interval)}
			}
			if grace < 0 {
				return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--grace %s: must not be negative", grace)}
			}
			// Kernel mode keeps the state current between audits: they reconcile, every minute
			// unless --interval says otherwise; a fallback to polling polls at --interval.
			reconcile := time.Duration(0)
			if !cmd.Flags().Changed("interval") {
				reconcile = defaultReconcileInterval
			}
			addr, err := listen.ParseListen(listenAddr)
			if err != nil {
				return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--web.listen-address %w", err)}
			}
			listenSet := cmd.Flags().Changed("web.listen-address") || cmd.Flags().Changed("listen")
			if maxConns < 2 {
				return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--web.max-connections %d: at least 2", maxConns)}
			}
			path, err := findPolicyPath(s, policyPath)
			if err != nil {
				return err
			}
			if webConfig != "" {
				if err := web.Validate(webConfig); err != nil {
					return fmt.Errorf("--web.config.file %s: %w", webConfig, err)
				}
			}
			store, err := monitor.OpenStore(dataDir, false)
			if errors.Is(err, monitor.ErrLocked) {
				return storeHeld(dataDir)
			}
			if err != nil {
				return err
			}
			defer func() { _ = store.Close() }()
			cfg := monitor.Config{
				PolicyPath: path, Interval: interval, ReconcileInterval: reconcile, Retention: retention, Logger: logger,
				Observer: monitor.HostObserver(obs.options()), Grace: grace, Watch: monitor.WatchMode(watch.value),
			}
			if cfg.Enforce, err = enforce.config(cmd); err != nil {
				return &usageError{cmd: cmd.CommandPath(), err: err}
			}
			if cfg.Watch != monitor.WatchPoll {
				cfg.OpenEvents = monitor.KernelEvents(kernel.WatchOptions{Cgroup: watchCgroup, Logger: logger})
				cfg.Resolver = &monitor.HostResolver{Options: obs.options(), CgroupPath: monitor.CgroupPaths()}
			}
			m, err := monitor.New(cfg, store)
			if err != nil {
				return err
			}
			if pm := m.Policy().Monitor; redisURL == "" && pm != nil {
				redisURL = pm.Redis
			}
			if redisURL != "" {
				monitor.SetRedisLogger(logger)
				rs, err := monitor.NewRedisSink(redisURL)
				if err != nil {
					return &usageError{cmd: cmd.CommandPath(), err: err}
				}
				defer func() { _ = rs.Close() }()
				m.AddSink(rs)
			}
			svcPol, err := selfPolicy(m.Policy(), addr, listenSet)
			if err != nil {
				return err
			}
			self, _ := svcPol.Lookup(systemd.SelfService)
			g, err := access.NewGuard(svcPol, systemd.SelfService)
			if err != nil {
				return err
			}
			admitted, refused, nofile := connBudget(maxConns)
			probeH, err := serveProbe(m.Policy, probeTargets, probeFrom, probeNetnsDir, logger)
			if err != nil {
				return &usageError{cmd: cmd.CommandPath(), err: err}
			}
			reloads := monitor.NewReloadStatus(time.Now())
			v, rev := buildVersion()
			front, err := monitor.NewFront(monitor.FrontConfig{Guard: g, WebConfigFile: webConfig, Logger: logger,
				MaxConns: admitted, MaxRefusedConns: refused},
				m.HandlerWith(monitor.HandlerOptions{Version: v, Revision: rev, Reloads: reloads, Probe: probeH}))
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			// Enforcement after the checks of flags, policy and web configuration, so that a
			// refused start does not leave programs attached without a reader of their denials.
			if n, err := m.ApplyEnforcement(); err != nil && n == 0 {
				return fmt.Errorf("--enforce: nothing enforced: %w", err)
			}
			l, err := listen.Listen(ctx, svcPol, systemd.SelfService, listen.WithLogger(logger))
			if err != nil {
				return err
			}
			bound := netip.MustParseAddrPort(l.Addr().String())
			if !bound.Addr().IsLoopback() && !front.TLS() && !self.Access.TakesAllow() && !insecure {
				_ = l.Close()
				return fmt.Errorf("refusing to serve on %s without TLS (--web.config.file with tls_server_config) or an allow list (declare the service %q as lan or restricted in the policy); --insecure-listen to do it anyway", l.Addr(), systemd.SelfService)
			}
			server := &http.Server{
				ReadHeaderTimeout: monitor.ReadHeaderTimeout, ReadTimeout: monitor.ReadTimeout,
				WriteTimeout: monitor.WriteTimeout, IdleTimeout: monitor.IdleTimeout, MaxHeaderBytes: monitor.MaxHeaderBytes,
				ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
			}
			info := monitor.ServeInfo{PID: os.Getpid(), Listen: bound.String(), Started: time.Now().UTC()}
			front.Info(&info)
			info.URL = info.Scheme + "://" + askAddr(bound).String()
			if err := monitor.WriteServeInfo(dataDir, info); err != nil {
				_ = l.Close()
				return err
			}
			defer func() { _ = monitor.RemoveServeInfo(dataDir, info.PID) }()
			serveErr := make(chan error, 1)
			go func() { serveErr <- front.Serve(l, server) }()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			runCtx, stop := context.WithCancel(ctx)
			defer stop()
			done := make(chan error, 1)
			go func() { done <- m.Run(runCtx) }()
			logger.Info("bindguard serve started", "policy", m.Policy().Source, "listen", l.Addr().String(), "url", info.URL,
				"interval", interval.String(), "watch", watch.value, "grace", grace.String(), "data", dataDir, "max_connections", admitted, "max_refused_connections", refused, "open_files_limit", nofile)
			for {
				select {
				case <-hup:
					before := m.Policy()
					err := m.Reload(runCtx)
					// The policy in force changed: the reload succeeded (an audit error after it
					// is the audit's). With no policy file there is nothing to reload.
					reloads.Record(time.Now(), m.Policy() != before || path == "", err)
				case err := <-serveErr:
					stop()
					<-done
					if err != nil && !errors.Is(err, http.ErrServerClosed) {
						return fmt.Errorf("serve: %w", err)
					}
					return nil
				case <-ctx.Done():
					logger.Info("stopping")
					sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					_ = server.Shutdown(sctx)
					cancel()
					stop()
					<-done
					return nil
				}
			}
		},
	}
	cmd.Flags().StringVarP(&policyPath, "policy", "p", "", "policy file (default ./bindguard.yaml, then /etc/bindguard/bindguard.yaml, else the built-in catalogue)")
	defListen := fmt.Sprintf("127.0.0.1:%d", systemd.DefaultSelfPort)
	cmd.Flags().StringVar(&listenAddr, "web.listen-address", defListen, "where to serve HTTP (the policy's service \"bindguard\" decides where that may be)")
	cmd.Flags().StringVar(&listenAddr, "listen", defListen, "alias of --web.listen-address")
	cmd.Flags().IntVar(&maxConns, "web.max-connections", 64, "connections open at once (kept below half the open-files limit, less a reserve for audits); an eighth of them for refused addresses")
	cmd.Flags().DurationVar(&interval, "interval", 10*time.Second, "time between audits (default 10s when polling, 60s in kernel mode, where they reconcile)")
	cmd.Flags().Var(&watch, "watch", "where sockets are learnt: auto (kernel where it loads, else poll), kernel (BPF socket events, judged at once; polls and says why if it cannot load) or poll (audits only)")
	cmd.Flags().StringVar(&watchCgroup, "watch.cgroup", "", "cgroup2 directory the kernel mode's cgroup programs attach to (default the cgroup2 root: every socket)")
	enforce.add(cmd)
	cmd.Flags().DurationVar(&grace, "grace", 15*time.Second, "how long a declared service's socket may be gone before that is reported (a restart within it raises nothing); 0 reports at once")
	cmd.Flags().DurationVar(&retention, "retention", 30*24*time.Hour, "how long delivered events are kept")
	cmd.Flags().StringVar(&dataDir, "data", defaultDataDir(), "directory of the event store")
	cmd.Flags().StringVar(&webConfig, "web.config.file", "", "exporter-toolkit web configuration (TLS, basic auth)")
	cmd.Flags().StringVar(&redisURL, "redis", "", "also write the seed's zabbix:port_bindings hash and the bindguard:events stream to redis://HOST:PORT/DB (default: the policy's monitor.redis)")
	cmd.Flags().BoolVar(&insecure, "insecure-listen", false, "serve beyond loopback without TLS or an allow list")
	cmd.Flags().StringArrayVar(&probeTargets, "probe.target", nil, "also answer /probe for `HOST[=SCOPE[:PORTS]]` (repeatable; the policy's probe: section is always answered)")
	cmd.Flags().StringVar(&probeFrom, "probe.from", "", "run /probe's probes from this network namespace: an ip-netns `NAME` or a PATH such as /proc/PID/ns/net")
	cmd.Flags().StringVar(&probeNetnsDir, "probe.netns-dir", "/run/netns", "where named network namespaces are pinned (for --probe.from NAME)")
	cmd.Flags().BoolVar(&debug, "debug", false, "log at debug level (every access decision, every audit)")
	obs.add(cmd)
	return cmd
}

// serveProbe builds the /probe endpoint: the policy's probe: targets (read at each request, so
// a reload takes effect) and those of --probe.target, probed from --probe.from.
func serveProbe(pol func() *policy.Policy, specs []string, from, netnsDir string, logger *slog.Logger) (http.Handler, error) {
	var targets []probe.Target
	for _, s := range specs {
		t, err := probe.ParseTargetSpec(s)
		if err != nil {
			return nil, fmt.Errorf("--probe.target %q: %w", s, err)
		}
		if t.Scope != "" && t.Scope != policy.HostScope {
			if _, ok := pol().Scope(t.Scope); !ok {
				return nil, fmt.Errorf("--probe.target %q: the policy has no scope %q", s, t.Scope)
			}
		}
		targets = append(targets, t)
	}
	if from != "" && !strings.Contains(from, "/") {
		from = filepath.Join(netnsDir, from)
	}
	if from != "" {
		if _, err := os.Stat(from); err != nil {
			return nil, fmt.Errorf("--probe.from: %w", err)
		}
	}
	return probe.NewHandler(probe.HandlerOptions{Policy: pol, Targets: targets, PolicyTargets: true, Netns: from, Logger: logger})
}

// defaultReconcileInterval is the time between full audits in kernel mode when --interval is
// not given.
const defaultReconcileInterval = time.Minute

// selfPolicy is the policy bindguard's own listener follows: the policy's service "bindguard"
// when it declares one, else one made from --listen (localhost_only on loopback, public
// beyond). Nobody proxies bindguard's API: the trusted proxies are dropped, so a local
// Prometheus is its own client.
func selfPolicy(p *policy.Policy, addr netip.AddrPort, listenSet bool) (*policy.Policy, error) {
	svc, declared := p.Lookup(systemd.SelfService)
	if declared {
		if listenSet && (svc.Port != addr.Port() || (svc.Address.IsValid() && svc.Address != addr.Addr())) {
			return nil, fmt.Errorf("--web.listen-address %s contradicts the policy's service %q (%s port %d)", addr, systemd.SelfService, svc.Address, svc.Port)
		}
		if !svc.Address.IsValid() {
			svc.Address = addr.Addr()
		}
	} else {
		svc = policy.Service{Name: systemd.SelfService, Protocol: policy.TCP, Port: addr.Port(), Address: addr.Addr(), Access: policy.Public}
		if addr.Addr().IsLoopback() {
			svc.Access, svc.HostCheck = policy.LocalhostOnly, true
		}
	}
	sp := &policy.Policy{Source: p.Source, Format: policy.FormatNative, Version: 1, ClientIPHeader: policy.HeaderXForwardedFor,
		Networks: p.Networks, Services: []policy.Service{svc}}
	policy.Defaults(sp)
	if err := policy.Validate(sp); err != nil {
		return nil, fmt.Errorf("bindguard's own listener: %w", err)
	}
	return sp, nil
}

// auditReserve is how many file descriptors are kept for audits, the store and the runtime,
// whatever the connections do.
const auditReserve = 64

// connBudget is how many connections serve keeps open at once, for admitted and for refused
// addresses: at most limit, and at most half of what the open-files limit leaves after the
// audits' reserve (Go raises the soft limit to the hard one at start). It also returns the
// limit.
func connBudget(limit int) (admitted, refused int, nofile uint64) {
	total := limit
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil {
		nofile = rl.Cur
		if avail := (int64(rl.Cur) - auditReserve) / 2; avail < int64(total) { // #nosec G115 -- rlimits fit in int64
			total = int(avail)
		}
	}
	total = max(total, 2)
	refused = max(1, total/8)
	return total - refused, refused, nofile
}

// askAddr is where a local client reaches a listener: a wildcard on loopback.
func askAddr(a netip.AddrPort) netip.AddrPort {
	switch {
	case a.Addr() == netip.IPv4Unspecified():
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), a.Port())
	case a.Addr() == netip.IPv6Unspecified():
		return netip.AddrPortFrom(netip.IPv6Loopback(), a.Port())
	}
	return a
}

// storeHeld explains that another process holds the store, naming the serve that does when it
// recorded itself.
func storeHeld(dataDir string) error {
	if info, err := monitor.ReadServeInfo(dataDir); err == nil {
		return fmt.Errorf("another bindguard serve (pid %d, at %s) holds the store in %s: stop it first, or give this one its own --data", info.PID, info.URL, dataDir)
	}
	return fmt.Errorf("another process holds the store in %s (a bindguard serve, or bindguard events reading it): stop it first, or give this one its own --data", dataDir)
}

// buildVersion is the module version ("devel" for a development build) and the VCS revision
// the build recorded, for bindguard_build_info.
func buildVersion() (version, revision string) {
	version = "devel"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	return version, revision
}

// liftMemoryLimit removes main's soft memory limit for serve, unless GOMEMLIMIT sets one. That
// limit suits a one-shot audit; serve keeps its observation, live set and state for its whole
// life, and at 10,000 listeners its live heap sits near the limit, so the collector ran without
// pause: 8.1 CPU-seconds per idle minute in kernel mode against 1.1 s without the limit
// (bench/serve-load.sh's host state, docs/monitor.md). GOGC then paces the heap.
func liftMemoryLimit() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(math.MaxInt64)
	}
}
