package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bindguard/bindguard/internal/audit"
)

// Redis keys, as the seed's Zabbix integration reads them.
const (
	RedisHashKey   = "zabbix:port_bindings"
	RedisHashTTL   = 300 * time.Second
	RedisStreamKey = "bindguard:events"
	// RedisStreamMaxLen caps the stream (approximately, as XADD MAXLEN ~ does).
	RedisStreamMaxLen = 10000
)

// redisClient is the part of go-redis the sink uses.
type redisClient interface {
	TxPipelined(ctx context.Context, fn func(redis.Pipeliner) error) ([]redis.Cmder, error)
	Pipelined(ctx context.Context, fn func(redis.Pipeliner) error) ([]redis.Cmder, error)
	Close() error
}

// RedisSink writes the seed's hash after every audit and every drift event to a stream.
type RedisSink struct {
	client redisClient
	addr   string
}

// NewRedisSink connects lazily to a redis://HOST:PORT/DB URL.
func NewRedisSink(url string) (*RedisSink, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("--redis %q: %w (want redis://HOST:PORT/DB)", url, err)
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = 2*time.Second, 2*time.Second, 2*time.Second
	opt.MaxRetries = -1 // the monitor retries with its own backoff, from the store
	opt.DialerRetries = 1
	return &RedisSink{client: redis.NewClient(opt), addr: opt.Addr}, nil
}

// SetRedisLogger sends go-redis's own messages (pool dial failures) to logger at debug level,
// instead of plain lines on standard error. go-redis keeps its logger in package state: the
// daemon calls this once at start.
func SetRedisLogger(logger *slog.Logger) {
	redis.SetLogger(redisLogger{logger})
}

type redisLogger struct{ l *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.l.DebugContext(ctx, "redis client", "message", fmt.Sprintf(format, v...))
}

// Name implements Sink.
func (r *RedisSink) Name() string { return "redis" }

// Close closes the connection pool.
func (r *RedisSink) Close() error { return r.client.Close() }

// SeedServiceName is a service's name as the seed writes it in keys: "-" becomes "_".
func SeedServiceName(name string) string { return strings.ReplaceAll(name, "-", "_") }

// ServiceField is the seed's hash field for a service: service_binding_correct_<name>.
func ServiceField(name string) string { return "service_binding_correct_" + SeedServiceName(name) }

// SeedFields are the seed's zabbix:port_bindings fields for a report: counts by status, the
// score, and service_binding_correct_<service> (1 when the declared service is compliant;
// "-" in names becomes "_", as the seed writes them).
func SeedFields(rep *audit.Report) map[string]any {
	f := map[string]any{
		"port_bindings_valid":         rep.Summary.Count(audit.Valid),
		"port_bindings_invalid":       rep.Summary.Count(audit.Invalid),
		"port_bindings_missing":       rep.Summary.Count(audit.Missing),
		"port_bindings_unexpected":    rep.Summary.Count(audit.Unexpected),
		"port_binding_security_score": rep.Score,
	}
	for _, s := range rep.Services {
		v := 0
		if s.Compliant {
			v = 1
		}
		f[ServiceField(s.Name)] = v
	}
	return f
}

// Snapshot replaces the hash in one transaction and gives it the seed's 300 s TTL, so stale
// figures vanish when the monitor stops.
func (r *RedisSink) Snapshot(ctx context.Context, rep *audit.Report) error {
	_, err := r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, RedisHashKey)
		p.HSet(ctx, RedisHashKey, SeedFields(rep))
		p.Expire(ctx, RedisHashKey, RedisHashTTL)
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis %s: %w", r.addr, err)
	}
	return nil
}

// Deliver appends events to the stream, each with its stable id: after a failure part of a
// batch may be sent twice, never lost; readers drop repeated ids.
func (r *RedisSink) Deliver(ctx context.Context, events []Event) error {
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, e := range events {
			js, err := json.Marshal(e)
			if err != nil {
				return err
			}
			values := map[string]any{
				"id": strconv.FormatUint(e.ID, 10), "time": e.Time.UTC().Format(time.RFC3339Nano), "kind": e.Kind,
				"netns": e.Netns, "protocol": e.Protocol, "address": e.Address, "port": e.Port, "service": e.Service,
				"old_status": e.OldStatus, "new_status": e.NewStatus, "severity": e.Severity, "json": string(js),
			}
			if e.Process != nil {
				values["pid"], values["process"] = e.Process.PID, e.Process.Name
			}
			p.XAdd(ctx, &redis.XAddArgs{Stream: RedisStreamKey, MaxLen: RedisStreamMaxLen, Approx: true, Values: values})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis %s: %w", r.addr, err)
	}
	return nil
}
