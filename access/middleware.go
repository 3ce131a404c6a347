package access

import (
	"context"
	"log/slog"
	"net/http"
)

// problemBody is the RFC 9457 body of every refusal: it names no address, class or reason, so
// a client learns nothing about the policy.
const problemBody = `{"type":"about:blank","title":"Forbidden","status":403,"detail":"access denied"}` + "\n"

// Middleware admits requests the guard allows and answers the others 403 Forbidden with an RFC
// 9457 application/problem+json body that names no internal detail. Each decision is logged at
// debug level through logger (nil discards), with the client address, the class and the reason.
func Middleware(g *Guard, logger *slog.Logger, next http.Handler) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := g.Check(r)
		if logger.Enabled(r.Context(), slog.LevelDebug) {
			logDecision(r.Context(), logger, g, r, d)
		}
		if !d.Allowed {
			Deny(w)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Deny writes the 403 problem response.
func Deny(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write([]byte(problemBody))
}

func logDecision(ctx context.Context, logger *slog.Logger, g *Guard, r *http.Request, d Decision) {
	attrs := []slog.Attr{
		slog.String("service", g.service),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Bool("allowed", d.Allowed),
		slog.String("access", string(d.Access)),
		slog.String("peer", d.Client.Peer.String()),
	}
	if d.Client.Addr.IsValid() {
		attrs = append(attrs, slog.String("client", d.Client.Addr.String()))
	}
	if !d.Allowed {
		attrs = append(attrs, slog.String("reason", d.Reason.String()))
	}
	logger.LogAttrs(ctx, slog.LevelDebug, "access decision", attrs...)
}
