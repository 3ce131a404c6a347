package monitor

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"

	"github.com/bindguard/bindguard/access"
)

// FrontConfig says how serve's HTTP front admits clients.
type FrontConfig struct {
	// Guard is the allow list of bindguard's own listener; it decides first, by the client's
	// address (no proxy is trusted in front of bindguard).
	Guard *access.Guard
	// WebConfigFile is an exporter-toolkit web configuration (TLS, basic auth, headers, rate
	// limit); "" for none.
	WebConfigFile string
	// MaxConns bounds the connections open at once from admitted addresses; MaxRefusedConns
	// those from addresses the allow list refuses, apart, so that refused clients never take
	// an admitted client's place. Beyond its budget a connection is closed at accept.
	MaxConns, MaxRefusedConns int
	// Logger receives refusals (the reason at info, the client address at debug only) and
	// errors; nil discards.
	Logger *slog.Logger
}

// Timeouts of serve's HTTP server: every phase of a connection is bounded.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 60 * time.Second
	IdleTimeout       = 60 * time.Second
	MaxHeaderBytes    = 16 << 10
)

// Front is serve's HTTP stack: per connection, the connection budgets; per request, the allow
// list first, then the web configuration (re-read, as exporter-toolkit does), the rate limit,
// the configured headers and basic auth, then the handler. A refused client costs no bcrypt,
// draws nothing from the rate limit, and its connection is closed after the 403.
type Front struct {
	cfg     FrontConfig
	next    http.Handler
	log     *slog.Logger
	limiter *rate.Limiter // nil: no rate limit
	tls     bool
	http2   bool
	// From the web configuration at start, for ServeInfo.
	certFile, certPEM string
	basicAuth         bool

	logRefusals *rate.Limiter // info lines about refusals: at most 1/s, bursts of 10

	bcryptMu sync.Mutex // one bcrypt at a time: it is CPU-bound
	cacheMu  sync.Mutex
	cache    map[[32]byte]bool // (user, hash, password) digests checked, bounded
	bcrypts  atomic.Int64      // bcrypt comparisons run, for tests and debugging

	admitted, refused chan struct{} // connection slots
}

// NewFront validates the web configuration and returns the front of next.
func NewFront(cfg FrontConfig, next http.Handler) (*Front, error) {
	if cfg.Guard == nil {
		return nil, errors.New("monitor: the front needs the listener's guard")
	}
	if cfg.MaxConns < 1 || cfg.MaxRefusedConns < 1 {
		return nil, fmt.Errorf("monitor: connection budgets %d and %d: want at least 1 each", cfg.MaxConns, cfg.MaxRefusedConns)
	}
	f := &Front{cfg: cfg, next: next, log: cfg.Logger, cache: map[[32]byte]bool{},
		logRefusals: rate.NewLimiter(1, 10),
		admitted:    make(chan struct{}, cfg.MaxConns), refused: make(chan struct{}, cfg.MaxRefusedConns)}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if cfg.WebConfigFile != "" {
		if err := web.Validate(cfg.WebConfigFile); err != nil {
			return nil, fmt.Errorf("--web.config.file %s: %w", cfg.WebConfigFile, err)
		}
		c, err := readWebConfig(cfg.WebConfigFile)
		if err != nil {
			return nil, err
		}
		if c.RateLimiterConfig.Interval > 0 {
			f.limiter = rate.NewLimiter(rate.Every(c.RateLimiterConfig.Interval), c.RateLimiterConfig.Burst)
		}
		f.tls = c.TLSConfig.TLSCertPath != "" || c.TLSConfig.TLSCert != ""
		f.http2 = c.HTTPConfig.HTTP2
		f.certPEM, f.basicAuth = c.TLSConfig.TLSCert, len(c.Users) > 0
		if c.TLSConfig.TLSCertPath != "" {
			if f.certFile, err = filepath.Abs(c.TLSConfig.TLSCertPath); err != nil {
				return nil, err
			}
		}
	}
	return f, nil
}

// TLS says whether the web configuration turns TLS on.
func (f *Front) TLS() bool { return f.tls }

// Info fills in what info records of the front: the scheme, the certificate and whether
// basic auth is wanted.
func (f *Front) Info(info *ServeInfo) {
	info.Scheme = "http"
	if f.tls {
		info.Scheme = "https"
	}
	info.CertFile, info.CertPEM, info.BasicAuth = f.certFile, f.certPEM, f.basicAuth
}

// BcryptCalls is how many bcrypt comparisons the front has run.
func (f *Front) BcryptCalls() int64 { return f.bcrypts.Load() }

// readWebConfig reads an exporter-toolkit web configuration as the toolkit does (strict
// YAML, its defaults, paths relative to the file's directory).
func readWebConfig(path string) (*web.Config, error) {
	b, err := os.ReadFile(path) // #nosec G304 -- the operator's configuration file
	if err != nil {
		return nil, fmt.Errorf("--web.config.file: %w", err)
	}
	c := &web.Config{
		TLSConfig:  web.TLSConfig{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13},
		HTTPConfig: web.HTTPConfig{HTTP2: true},
	}
	if err := yaml.UnmarshalStrict(b, c); err != nil {
		return nil, fmt.Errorf("--web.config.file %s: %w", path, err)
	}
	c.TLSConfig.SetDirectory(filepath.Dir(path))
	return c, nil
}

// admits says whether the allow list admits a peer by its address alone (the Host check,
// for a loopback listener, is left to the request).
func (f *Front) admits(remote string) bool {
	return f.cfg.Guard.Decide(access.Request{RemoteAddr: remote, Host: "localhost"}).Allowed
}

// ServeHTTP runs the chain.
func (f *Front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d := f.cfg.Guard.Check(r)
	if !d.Allowed {
		f.refuse(r, d)
		w.Header().Set("Connection", "close")
		access.Deny(w)
		return
	}
	if f.log.Enabled(r.Context(), slog.LevelDebug) {
		f.log.DebugContext(r.Context(), "access decision", "allowed", true, "access", string(d.Access),
			"method", r.Method, "path", r.URL.Path, "client", d.Client.Peer.String())
	}
	if f.cfg.WebConfigFile == "" {
		f.next.ServeHTTP(w, r)
		return
	}
	c, err := readWebConfig(f.cfg.WebConfigFile)
	if err != nil {
		f.log.Error("unable to read the web configuration", "error", err.Error())
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	if f.limiter != nil && !f.limiter.Allow() {
		http.Error(w, http.StatusText(http.StatusTooManyRequests), http.StatusTooManyRequests)
		return
	}
	for k, v := range c.HTTPConfig.Header {
		w.Header().Set(k, v)
	}
	if len(c.Users) > 0 && !f.authorized(r, c) {
		w.Header().Set("WWW-Authenticate", "Basic")
		http.Error(w, http.StatusText(http.StatusUnauthorized), http.StatusUnauthorized)
		return
	}
	f.next.ServeHTTP(w, r)
}

// fakeHash is compared against for an unknown user, so that timing does not tell users
// apart (exporter-toolkit's: "fakepassword").
const fakeHash = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"

// maxAuthCache bounds the remembered (user, hash, password) results.
const maxAuthCache = 256

func (f *Front) authorized(r *http.Request, c *web.Config) bool {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	hash, known := c.Users[user]
	h := string(hash)
	if !known {
		h = fakeHash
	}
	// The cache keeps digests, never passwords.
	key := sha256.Sum256([]byte(user + "\x00" + h + "\x00" + pass))
	f.cacheMu.Lock()
	good, cached := f.cache[key]
	f.cacheMu.Unlock()
	if !cached {
		f.bcryptMu.Lock()
		f.bcrypts.Add(1)
		good = bcrypt.CompareHashAndPassword([]byte(h), []byte(pass)) == nil
		f.bcryptMu.Unlock()
		f.cacheMu.Lock()
		if len(f.cache) >= maxAuthCache {
			clear(f.cache)
		}
		f.cache[key] = good
		f.cacheMu.Unlock()
	}
	return known && good
}

// refuse logs a refused request: why at info (at most one line a second, in bursts of 10,
// so a flood cannot fill the disk), the client address at debug only.
func (f *Front) refuse(r *http.Request, d access.Decision) {
	ctx := r.Context()
	if f.log.Enabled(ctx, slog.LevelDebug) {
		f.log.DebugContext(ctx, "request refused", "reason", d.Reason.String(), "access", string(d.Access),
			"method", r.Method, "path", r.URL.Path, "client", d.Client.Peer.String())
		return
	}
	if f.logRefusals.Allow() {
		f.log.InfoContext(ctx, "request refused", "reason", d.Reason.String(), "access", string(d.Access), "method", r.Method, "path", r.URL.Path)
	}
}

// Serve serves srv's requests through the front on l: the connection budgets, then TLS when
// the web configuration asks for it (its certificates re-read on every handshake). srv's
// Handler is replaced by the front; its timeouts, when zero, are set to this package's.
func (f *Front) Serve(l net.Listener, srv *http.Server) error {
	srv.Handler = f
	if srv.ReadHeaderTimeout == 0 {
		srv.ReadHeaderTimeout = ReadHeaderTimeout
	}
	if srv.ReadTimeout == 0 {
		srv.ReadTimeout = ReadTimeout
	}
	if srv.WriteTimeout == 0 {
		srv.WriteTimeout = WriteTimeout
	}
	if srv.IdleTimeout == 0 {
		srv.IdleTimeout = IdleTimeout
	}
	if srv.MaxHeaderBytes == 0 {
		srv.MaxHeaderBytes = MaxHeaderBytes
	}
	l = &budgetListener{Listener: l, f: f}
	if !f.tls {
		return srv.Serve(l)
	}
	c, err := readWebConfig(f.cfg.WebConfigFile)
	if err != nil {
		return err
	}
	tc, err := web.ConfigToTLSConfig(&c.TLSConfig)
	if err != nil {
		return fmt.Errorf("--web.config.file %s: %w", f.cfg.WebConfigFile, err)
	}
	protos := []string{"http/1.1"}
	if f.http2 {
		protos = []string{"h2", "http/1.1"}
	} else {
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	tc.NextProtos = protos
	path := f.cfg.WebConfigFile
	tc.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		c, err := readWebConfig(path)
		if err != nil {
			return nil, err
		}
		n, err := web.ConfigToTLSConfig(&c.TLSConfig)
		if err != nil {
			return nil, err
		}
		n.NextProtos = protos
		return n, nil
	}
	srv.TLSConfig = tc
	return srv.ServeTLS(l, "", "")
}

// budgetListener gives each accepted connection a slot from its budget (admitted or refused
// addresses) and closes it at once when there is none; the slot is freed when it closes.
type budgetListener struct {
	net.Listener
	f *Front
}

func (l *budgetListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		slots := l.f.admitted
		if !l.f.admits(c.RemoteAddr().String()) {
			slots = l.f.refused
		}
		select {
		case slots <- struct{}{}:
			return &slotConn{Conn: c, slots: slots}, nil
		default:
			_ = c.Close()
			if l.f.log.Enabled(context.Background(), slog.LevelDebug) {
				l.f.log.Debug("connection closed at accept: no slot left in its budget", "client", c.RemoteAddr().String(), "admitted", slots == l.f.admitted)
			}
		}
	}
}

type slotConn struct {
	net.Conn
	slots chan struct{}
	once  sync.Once
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { <-c.slots })
	return err
}
