package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bindguard/bindguard/internal/audit"
	"github.com/bindguard/bindguard/internal/report"
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

// Snapshot replaces the hash in one transaction and gives it the seed's 300 s TTL, so stale
// figures vanish when the monitor stops.
func (r *RedisSink) Snapshot(ctx context.Context, rep *audit.Report) error {
	_, err := r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, RedisHashKey)
		fields := map[string]any{}
		for k, v := range report.SeedFields(rep) {
			fields[k] = v
		}
		p.HSet(ctx, RedisHashKey, fields)
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
			if d := e.Denial; d != nil {
				values["rule"], values["errno"], values["mode"], values["scope"], values["container"] = d.Rule, d.Errno, d.Mode, d.Scope, d.Container
				if e.Process != nil {
					values["unit"] = e.Process.Unit
				}
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
