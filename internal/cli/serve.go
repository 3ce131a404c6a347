package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/spf13/cobra"

	"github.com/bindguard/bindguard/access"
	"github.com/bindguard/bindguard/internal/gen/systemd"
	"github.com/bindguard/bindguard/internal/monitor"
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
		interval, retention                                  time.Duration
		insecure, debug                                      bool
		obs                                                  observeFlags
	)
	cmd := &cobra.Command{
		Use:   "serve [--policy FILE] [--listen ADDR] [--interval 10s] [--data DIR]",
		Short: "Audit continuously, keep a drift history, serve metrics and the latest report",
		Long: `Run the monitor: audit on start and every --interval, turn every change into a
drift event (a socket appeared, disappeared or changed status; the policy was
reloaded), keep the events in an embedded store under --data before anything
else sees them, and serve over HTTP:

  /metrics        Prometheus metrics (score, findings, per-service compliance,
                  audit duration, errors, last success)
  /health         200 while the last audit succeeded and is fresh, else 503
  /api/v1/audit   the latest report (as audit --format json)
  /api/v1/events  drift events, ?since=1h or an RFC 3339 time (default 24h)
  /api/v1/zabbix  the seed's Zabbix figures, for 'bindguard zabbix get'

With --redis (or the policy's monitor.redis) it also writes the seed's
zabbix:port_bindings hash after every audit and each event to the
bindguard:events stream, retrying from the store while Redis is down.

The listener is opened through bindguard's own listen package, on loopback by
default, or where the policy's service named "bindguard" says; bindguard's
access middleware guards every endpoint. TLS and basic auth come from
--web.config.file (Prometheus exporter-toolkit format). Beyond loopback it
refuses to start without TLS or an allow list unless --insecure-listen.

SIGHUP reloads the policy (an invalid one is refused and logged; the old one
stays); SIGTERM stops cleanly. Logs are JSON on standard error.`,
		Example: `  # Against ./bindguard.yaml (or the built-in catalogue), on 127.0.0.1:9847
  sudo bindguard serve --netns all

  # Every 30 s, events kept 7 days, TLS from a web config
  sudo bindguard serve -p /etc/bindguard/bindguard.yaml --interval 30s --retention 168h --web.config.file /etc/bindguard/web.yml`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			level := slog.LevelInfo
			if debug {
				level = slog.LevelDebug
			}
			logger := slog.New(slog.NewJSONHandler(s.Err, &slog.HandlerOptions{Level: level}))
			if interval < time.Second {
				return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--interval %s: at least 1s", interval)}
			}
			addr, err := listen.ParseListen(listenAddr)
			if err != nil {
				return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--listen %w", err)}
			}
			path, err := findPolicyPath(s, policyPath)
			if err != nil {
				return err
			}
			tlsOn, err := webConfigTLS(webConfig)
			if err != nil {
				return err
			}
			store, err := monitor.OpenStore(dataDir, false)
			if err != nil {
				return err
			}
			defer func() { _ = store.Close() }()
			m, err := monitor.New(monitor.Config{
				PolicyPath: path, Interval: interval, Retention: retention, Logger: logger,
				Observer: monitor.HostObserver(obs.options()),
			}, store)
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
			svcPol, err := selfPolicy(m.Policy(), addr, cmd.Flags().Changed("listen"))
			if err != nil {
				return err
			}
			self, _ := svcPol.Lookup(systemd.SelfService)
			ctx := cmd.Context()
			l, err := listen.Listen(ctx, svcPol, systemd.SelfService, listen.WithLogger(logger))
			if err != nil {
				return err
			}
			bound := netip.MustParseAddrPort(l.Addr().String()).Addr()
			if !bound.IsLoopback() && !tlsOn && !self.Access.TakesAllow() && !insecure {
				_ = l.Close()
				return fmt.Errorf("refusing to serve on %s without TLS (--web.config.file with tls_server_config) or an allow list (declare the service %q as lan or restricted in the policy); --insecure-listen to do it anyway", l.Addr(), systemd.SelfService)
			}
			g, err := access.NewGuard(svcPol, systemd.SelfService)
			if err != nil {
				_ = l.Close()
				return err
			}
			server := &http.Server{
				Handler:           access.Middleware(g, logger, m.Handler()),
				ReadHeaderTimeout: 10 * time.Second,
				ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
			}
			serveErr := make(chan error, 1)
			go func() {
				serveErr <- web.Serve(l, server, &web.FlagConfig{WebConfigFile: &webConfig}, logger)
			}()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			runCtx, stop := context.WithCancel(ctx)
			defer stop()
			done := make(chan error, 1)
			go func() { done <- m.Run(runCtx) }()
			logger.Info("bindguard serve started", "policy", m.Policy().Source, "listen", l.Addr().String(), "interval", interval.String(), "data", dataDir)
			for {
				select {
				case <-hup:
					_ = m.Reload(runCtx)
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
	cmd.Flags().StringVar(&listenAddr, "listen", fmt.Sprintf("127.0.0.1:%d", systemd.DefaultSelfPort), "where to serve HTTP (the policy's service \"bindguard\" decides where that may be)")
	cmd.Flags().DurationVar(&interval, "interval", 10*time.Second, "time between audits")
	cmd.Flags().DurationVar(&retention, "retention", 30*24*time.Hour, "how long delivered events are kept")
	cmd.Flags().StringVar(&dataDir, "data", defaultDataDir(), "directory of the event store")
	cmd.Flags().StringVar(&webConfig, "web.config.file", "", "exporter-toolkit web configuration (TLS, basic auth)")
	cmd.Flags().StringVar(&redisURL, "redis", "", "also write the seed's zabbix:port_bindings hash and the bindguard:events stream to redis://HOST:PORT/DB (default: the policy's monitor.redis)")
	cmd.Flags().BoolVar(&insecure, "insecure-listen", false, "serve beyond loopback without TLS or an allow list")
	cmd.Flags().BoolVar(&debug, "debug", false, "log at debug level (every access decision, every audit)")
	obs.add(cmd)
	return cmd
}

// selfPolicy is the policy bindguard's own listener follows: the policy's service "bindguard"
// when it declares one, else one made from --listen (localhost_only on loopback, public
// beyond). Nobody proxies bindguard's API: the trusted proxies are dropped, so a local
// Prometheus is its own client.
func selfPolicy(p *policy.Policy, addr netip.AddrPort, listenSet bool) (*policy.Policy, error) {
	svc, declared := p.Lookup(systemd.SelfService)
	if declared {
		if listenSet && (svc.Port != addr.Port() || (svc.Address.IsValid() && svc.Address != addr.Addr())) {
			return nil, fmt.Errorf("--listen %s contradicts the policy's service %q (%s port %d)", addr, systemd.SelfService, svc.Address, svc.Port)
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
	if err := policy.Validate(sp); err != nil {
		return nil, fmt.Errorf("bindguard's own listener: %w", err)
	}
	return sp, nil
}

// webConfigTLS validates an exporter-toolkit web configuration and says whether it turns TLS on.
func webConfigTLS(path string) (bool, error) {
	if path == "" {
		return false, nil
	}
	if err := web.Validate(path); err != nil {
		return false, fmt.Errorf("--web.config.file %s: %w", path, err)
	}
	b, err := os.ReadFile(path) // #nosec G304 -- the operator's configuration file
	if err != nil {
		return false, fmt.Errorf("--web.config.file: %w", err)
	}
	var c struct {
		TLS struct {
			Cert     string `yaml:"cert"`
			CertFile string `yaml:"cert_file"`
		} `yaml:"tls_server_config"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		return false, fmt.Errorf("--web.config.file %s: %w", path, err)
	}
	return c.TLS.Cert != "" || c.TLS.CertFile != "", nil
}
