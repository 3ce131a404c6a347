package policy

import (
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/goccy/go-yaml/ast"
)

// Monitor configures `bindguard serve` from the policy; its flags override it.
type Monitor struct {
	// Redis is a redis://HOST:PORT/DB (or rediss://) URL: the seed's hash and the event stream
	// go there. Empty: off.
	Redis string
	Pos   Position
}

// seedMonitorKey is the top-level key of the monitor section, in both formats.
const seedMonitorKey = "monitor"

var monitorKeys = []string{"redis"}

// monitor decodes the monitor section, recording in at where its values stand.
func (d *decoder) monitor(n ast.Node, path string, at *locs) *Monitor {
	o, ok := d.object(n, path, "a mapping (redis:)", monitorKeys...)
	if !ok {
		return nil
	}
	m := &Monitor{Pos: o.pos}
	at.set("monitor", loc{path: path, pos: o.pos})
	proxyDecoder{d: d, at: at}.str(o, "redis", "monitor.redis", &m.Redis)
	return m
}

// validateMonitor checks the monitor section.
func validateMonitor(ps *problems, p *Policy, at *locs) {
	m := p.Monitor
	if m == nil || at.failed("monitor.redis") || (m.Redis == "" && !at.written("monitor.redis")) {
		return
	}
	l := at.at("monitor.redis")
	for _, r := range m.Redis {
		if UnsafeRune(r) {
			ps.add(l.pos, l.path, "%s", unsafeRuneMsg(r))
			return
		}
	}
	if why := checkRedisURL(m.Redis); why != "" {
		ps.add(l.pos, l.path, "%s", why)
	}
}

var redisHostRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$`) })

// checkRedisURL says what is wrong with a Redis URL, or "".
func checkRedisURL(s string) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" || u.Opaque != "" {
		return "want redis://HOST:PORT/DB (or rediss:// for TLS)"
	}
	if h := u.Hostname(); !redisHostRE().MatchString(h) {
		if _, err := netip.ParseAddr(h); err != nil || strings.Contains(h, "%") {
			return "the host must be a host name or an IP address"
		}
	}
	if u.Port() != "" {
		if p, err := strconv.Atoi(u.Port()); err != nil || p < 1 || p > 65535 {
			return "the port must be 1-65535"
		}
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		if n, err := strconv.Atoi(db); err != nil || n < 0 || n > 15 || strconv.Itoa(n) != db {
			return "the database must be a number 0-15"
		}
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "no query or fragment: give options as flags"
	}
	return ""
}
