package runner

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"time"

	"github.com/bindguard/bindguard/access"
)

// Limits of the front server Guard runs on the service's socket. There is no read or write
// timeout on a whole request: bodies and responses stream, and WebSockets stay open. But a
// client that takes no byte of what bindguard writes to it for SendTimeout (nginx's
// send_timeout) loses its connection, so one that stops reading cannot hold the guard and
// the service's worker behind it for ever (Linux: rawio_linux.go).
const (
	ReadHeaderTimeout = 10 * time.Second
	IdleTimeout       = 120 * time.Second
	SendTimeout       = 60 * time.Second
	MaxHeaderBytes    = 64 << 10
)

type clientKey struct{}

// Handler admits requests g allows and reverse-proxies them to the HTTP server on the Unix
// socket upstream; it answers the others 403 with access's problem+json body. Toward the
// upstream, X-Forwarded-For and X-Real-IP hold the client g resolved (without a zone), and
// every forwarding header the client sent (X-Forwarded-*, Forwarded, X-Real-IP, and the
// client-address headers of CDNs: True-Client-IP, CF-Connecting-IP...) is dropped, with every
// header whose name holds "_" (a WSGI or CGI server would read X_Forwarded_For as
// X-Forwarded-For). A request target that is not a path (an opaque URI) is a 400. The Host
// header is kept; bodies stream both ways (responses are flushed as they come); HTTP/1.1
// keep-alive and Upgrade (WebSocket) pass through. An upstream that cannot be reached is a 502.
// Decisions are logged at debug level (client addresses only there).
func Handler(g *access.Guard, upstream string, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d := net.Dialer{}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", upstream)
		},
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	badGateway := func(w http.ResponseWriter, r *http.Request, err error) {
		logger.Warn("upstream unreachable", "path", r.URL.Path, "err", err)
		w.Header().Set("Content-Type", "application/problem+json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte(`{"type":"about:blank","title":"Bad Gateway","status":502,"detail":"the service is not answering"}` + "\n"))
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// Rewrite has removed X-Forwarded-For, -Host and -Proto already; the other
			// claims about the client go too (as on the forwarder's path).
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = "upstream"
			pr.Out.Host = pr.In.Host
			h := pr.Out.Header
			for k := range h {
				if claimed(k) {
					delete(h, k)
				}
			}
			if c, ok := pr.In.Context().Value(clientKey{}).(string); ok {
				h.Set("X-Forwarded-For", c)
				h.Set("X-Real-Ip", c)
			}
		},
		Transport: tr,
		// 0: responses of unknown length (chunked, text/event-stream) are flushed on every
		// write, which is what streams; a response of known length goes out in 4 KiB writes
		// (-1 would flush headers and every small body write as separate segments).
		FlushInterval: 0,
		ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		ErrorHandler:  badGateway,
	}
	fw := newForwarder(upstream)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dec := g.Check(r)
		if logger.Enabled(r.Context(), slog.LevelDebug) {
			logger.LogAttrs(r.Context(), slog.LevelDebug, "access decision",
				slog.String("service", g.Service()), slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.Bool("allowed", dec.Allowed), slog.String("why", dec.Explain()))
		}
		if !dec.Allowed {
			access.Deny(w)
			return
		}
		if !originPath(r) {
			// "GET x:admin" parses as an opaque URI with no path: the rule checked was the
			// root's, and an upstream could take "admin" as a path of its own.
			http.Error(w, "bad request: the request target must be a path", http.StatusBadRequest)
			return
		}
		client := dec.Client.Addr.WithZone("").String()
		if lean(r) {
			fw.serve(w, r, client, badGateway)
			return
		}
		rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientKey{}, client)))
	})
}

// originPath reports whether r's target is a path the access check saw as the upstream will:
// origin form ("/..."), absolute form with such a path or none, or "*" for OPTIONS.
func originPath(r *http.Request) bool {
	u := r.URL
	if u.Opaque != "" {
		return false
	}
	p := u.Path
	return p == "" || p[0] == '/' || p == "*" && r.Method == http.MethodOptions
}

// Server is the front server of Guard for h, with its limits.
func Server(h http.Handler, logger *slog.Logger) *http.Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}
