package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/bindguard/bindguard/access"
	"github.com/bindguard/bindguard/listen"
	"github.com/bindguard/bindguard/policy"
)

// service is one of the seed's services: its role name, its name in the seed's policy, and
// how it serves.
type service struct {
	role, policyName string
	tls              bool
}

var services = []service{
	{"frontend", "frontend_service", true},
	{"core", "intelligent_core_service", false},
	{"broker", "broker_gateway_service", false},
	{"event-bus", "event_bus_service", false},
	{"monitoring", "monitoring_service", false},
}

// handler builds the routes of a service, adding its per-route access rules to g.
func (st *stack) handler(role string, g *access.Guard) (http.Handler, error) {
	switch role {
	case "frontend":
		return st.frontend(g)
	case "core":
		return st.core(g)
	case "broker":
		return st.broker(g)
	case "event-bus":
		return st.eventBus(g)
	case "monitoring":
		return st.monitoring(g)
	}
	return nil, fmt.Errorf("unknown service %q", role)
}

func serviceNames() []string {
	var out []string
	for _, s := range services {
		out = append(out, s.role)
	}
	return out
}

type stack struct {
	pol     *policy.Policy
	dataDir string
	logger  *slog.Logger
	// local calls the other services over loopback, naming itself as the client (the seed's
	// policy trusts loopback peers as proxies, so a loopback peer must say who the client is).
	local *http.Client

	mu      sync.Mutex
	events  []event
	trusted *http.Client // local, trusting the frontend's certificate
}

type event struct {
	Time  time.Time       `json:"time"`
	Topic string          `json:"topic"`
	Data  json.RawMessage `json:"data"`
}

func newStack(policyPath, dataDir string, logger *slog.Logger) (*stack, error) {
	pol, err := policy.Load(policyPath)
	if err != nil {
		return nil, err
	}
	for _, s := range services {
		if _, ok := pol.Lookup(s.policyName); !ok {
			return nil, fmt.Errorf("%s declares no service %s (for %s): use the seed's service-bindings.yaml", policyPath, s.policyName, s.role)
		}
	}
	st := &stack{pol: pol, dataDir: dataDir, logger: logger}
	st.local = &http.Client{
		Timeout:   5 * time.Second,
		Transport: selfNamed{base: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}},
	}
	return st, nil
}

// selfNamed adds "X-Forwarded-For: 127.0.0.1" to requests between the services: a local
// process naming itself as the client.
type selfNamed struct{ base http.RoundTripper }

func (s selfNamed) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", "127.0.0.1")
	return s.base.RoundTrip(r)
}

// url returns the base URL of a service from the policy.
func (st *stack) url(role string) string {
	for _, s := range services {
		if s.role == role {
			svc, _ := st.pol.Lookup(s.policyName)
			scheme := "http"
			if s.tls {
				scheme = "https"
			}
			return scheme + "://" + net.JoinHostPort(svc.Address.String(), fmt.Sprint(svc.Port))
		}
	}
	return ""
}

// run starts the chosen services (all when roles is empty), calls ready once every listener is
// open, and serves until ctx ends.
func (st *stack) run(ctx context.Context, roles []string, ready func()) error {
	var chosen []service
	for _, s := range services {
		if len(roles) == 0 || slices.Contains(roles, s.role) {
			chosen = append(chosen, s)
		}
	}
	for _, r := range roles {
		if !slices.Contains(serviceNames(), r) {
			return fmt.Errorf("unknown service %q (have %v)", r, serviceNames())
		}
	}
	var servers []*http.Server
	errc := make(chan error, len(chosen))
	closeAll := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, srv := range servers {
			_ = srv.Shutdown(sctx)
		}
	}
	for _, s := range chosen {
		g, err := access.NewGuard(st.pol, s.policyName)
		if err != nil {
			closeAll()
			return err
		}
		h, err := st.handler(s.role, g)
		if err != nil {
			closeAll()
			return err
		}
		l, err := listen.Listen(ctx, st.pol, s.policyName, listen.WithLogger(st.logger))
		if err != nil {
			closeAll()
			return err
		}
		srv := &http.Server{
			Handler:           access.Middleware(g, st.logger, h),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(st.logger.Handler(), slog.LevelWarn),
		}
		if s.tls {
			cert, err := loadOrCreateCert(st.dataDir)
			if err != nil {
				_ = l.Close()
				closeAll()
				return err
			}
			srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
			l = tls.NewListener(l, srv.TLSConfig)
		}
		servers = append(servers, srv)
		go func() {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s: %w", s.role, err)
			}
		}()
	}
	ready()
	select {
	case <-ctx.Done():
		closeAll()
		return nil
	case err := <-errc:
		closeAll()
		return err
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func health(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]string{"status": "healthy", "service": name})
	}
}

// core: reached through the proxy under /api/, /internal/ for local clients only; the rest
// follows the policy's class (localhost_only).
func (st *stack) core(g *access.Guard) (http.Handler, error) {
	if err := g.Route("/api/", access.Rule{Access: policy.ProxyOnly}); err != nil {
		return nil, err
	}
	if err := g.Route("/internal/", access.Rule{Access: policy.LocalhostOnly}); err != nil {
		return nil, err
	}
	// Under the proxied /api/, an administrative API for local clients only.
	if err := g.Route("/api/admin/", access.Rule{Access: policy.LocalhostOnly}); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", health("intelligent-core-service"))
	mux.HandleFunc("GET /api/portfolio", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"portfolio": []map[string]any{
			{"symbol": "SAP", "shares": 10}, {"symbol": "SIE", "shares": 4},
		}})
	})
	mux.HandleFunc("GET /api/admin/stats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"reindexed": 0})
	})
	mux.HandleFunc("GET /internal/metrics", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"metrics": map[string]int{"requests": 1}})
	})
	return mux, nil
}

func (st *stack) broker(g *access.Guard) (http.Handler, error) {
	if err := g.Route("/api/", access.Rule{Access: policy.ProxyOnly}); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", health("broker-gateway-service"))
	mux.HandleFunc("GET /api/orders", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"orders": []any{}})
	})
	return mux, nil
}

// maxEvents bounds the event bus's memory.
const maxEvents = 1000

func (st *stack) eventBus(*access.Guard) (http.Handler, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", health("event-bus-service"))
	mux.HandleFunc("POST /events", func(w http.ResponseWriter, r *http.Request) {
		var e event
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		if err := dec.Decode(&e); err != nil || e.Topic == "" {
			http.Error(w, `{"error":"want {\"topic\": str, \"data\": any}"}`, http.StatusBadRequest)
			return
		}
		e.Time = time.Now().UTC()
		st.mu.Lock()
		st.events = append(st.events, e)
		if len(st.events) > maxEvents {
			st.events = slices.Clone(st.events[len(st.events)-maxEvents:])
		}
		st.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, _ *http.Request) {
		st.mu.Lock()
		out := slices.Clone(st.events)
		st.mu.Unlock()
		writeJSON(w, map[string]any{"events": out})
	})
	return mux, nil
}

// monitoring: the dashboard nginx publishes to the LAN under /monitoring, and /health that
// nginx's status server passes to the monitoring hosts, are reached through the proxy.
func (st *stack) monitoring(g *access.Guard) (http.Handler, error) {
	for _, p := range []string{"/monitoring", "/health"} {
		if err := g.Route(p, access.Rule{Access: policy.ProxyOnly}); err != nil {
			return nil, err
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", health("monitoring-service"))
	mux.HandleFunc("GET /monitoring", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = fmt.Fprint(w, "<!doctype html><title>Monitoring</title><h1>Monitoring</h1><p>All services report to /status.</p>\n")
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		status := map[string]string{}
		for _, role := range []string{"frontend", "core", "broker", "event-bus"} {
			status[role] = st.probe(r.Context(), st.url(role)+"/health")
		}
		writeJSON(w, map[string]any{"services": status})
	})
	return mux, nil
}

// probe asks a service's /health over loopback.
func (st *stack) probe(ctx context.Context, u string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "error"
	}
	req.Host = "localhost"
	resp, err := st.localClient().Do(req)
	if err != nil {
		return "down"
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("http %d", resp.StatusCode)
	}
	return "healthy"
}

// localClient is the local client, trusting the frontend's self-signed certificate once it
// exists (the frontend may run in another process and create it later).
func (st *stack) localClient() *http.Client {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.trusted != nil {
		return st.trusted
	}
	cert, err := loadCert(st.dataDir)
	if err != nil {
		return st.local
	}
	st.trusted = &http.Client{Timeout: st.local.Timeout, Transport: selfNamed{base: &http.Transport{
		TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: certPool(cert), ServerName: "localhost"},
	}}}
	return st.trusted
}

// frontend: a page, /health, and /api/proxy/* forwarded to core's /api/*.
func (st *stack) frontend(*access.Guard) (http.Handler, error) {
	core, err := url.Parse(st.url("core"))
	if err != nil {
		return nil, err
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(core)
			pr.Out.URL.Path = "/api/" + pr.In.PathValue("rest")
			pr.Out.URL.RawPath = ""
			// Append the peer to what the front proxy said, as nginx's
			// $proxy_add_x_forwarded_for does: core walks the list from the right.
			pr.SetXForwarded()
			pr.Out.Host = "localhost"
		},
		ErrorLog: slog.NewLogLogger(st.logger.Handler(), slog.LevelWarn),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", health("frontend-service"))
	mux.Handle("/api/proxy/{rest...}", proxy)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = fmt.Fprint(w, page)
	})
	return mux, nil
}

const page = `<!doctype html>
<html lang="de"><head><meta charset="utf-8"><title>Aktienanalyse</title></head>
<body><h1>Aktienanalyse</h1><p>Portfolio: <a href="/api/portfolio">/api/portfolio</a></p></body></html>
`
