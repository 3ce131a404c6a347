package lxctest

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Listen is a socket a layout's services open.
type Listen struct {
	Proto string // tcp or udp
	Local netip.AddrPort
}

func (l Listen) String() string { return l.Proto + " " + l.Local.String() }

// Layout is a set of services configured and started, under the container's systemd, by a shell
// script run inside it, and the sockets they then listen on.
type Layout struct {
	Name   string
	Script string
	Listen []Listen
}

// The two layouts of issue 13: the same services, carelessly and carefully bound. Redis runs as
// redis-server.service, PostgreSQL as postgresql@VERSION-main.service, memcached as
// memcached.service, and in the careless one a python3 HTTP server as bg-http.service, user
// www-data.
var (
	Careless = Layout{
		Name: "careless",
		Script: `set -e
v=$(ls /etc/postgresql)
sed -i '/^bind /d; /^protected-mode /d' /etc/redis/redis.conf
printf 'bind * -::*\nprotected-mode no\n' >> /etc/redis/redis.conf
echo "listen_addresses = '*'" >> /etc/postgresql/$v/main/postgresql.conf
sed -i 's/^-l .*/-l 0.0.0.0/' /etc/memcached.conf
systemctl start redis-server.service memcached.service postgresql@$v-main.service
systemd-run --unit=bg-http --property=User=www-data --property=WorkingDirectory=/tmp /usr/bin/python3 -m http.server --bind 0.0.0.0 8080 >/dev/null 2>&1
`,
		Listen: listens("tcp 0.0.0.0:6379", "tcp [::]:6379", "tcp 0.0.0.0:5432", "tcp [::]:5432",
			"tcp 0.0.0.0:11211", "tcp 0.0.0.0:8080"),
	}
	Careful = Layout{
		Name: "careful",
		Script: `set -e
v=$(ls /etc/postgresql)
sed -i '/^bind /d; /^protected-mode /d' /etc/redis/redis.conf
printf 'bind 127.0.0.1\n' >> /etc/redis/redis.conf
echo "listen_addresses = 'localhost'" >> /etc/postgresql/$v/main/postgresql.conf
sed -i 's/^-l .*/-l 127.0.0.1/' /etc/memcached.conf
systemctl start redis-server.service memcached.service postgresql@$v-main.service
`,
		Listen: listens("tcp 127.0.0.1:6379", "tcp 127.0.0.1:5432", "tcp [::1]:5432", "tcp 127.0.0.1:11211"),
	}
)

func listens(specs ...string) []Listen {
	out := make([]Listen, len(specs))
	for i, s := range specs {
		proto, addr, _ := strings.Cut(s, " ")
		out[i] = Listen{proto, netip.MustParseAddrPort(addr)}
	}
	return out
}

// Start runs the layout's script inside the container and waits, polling ss inside (bounded by
// timeout, 60 s when zero), until every socket of the layout listens.
func (c *Container) Start(ctx context.Context, l Layout, timeout time.Duration) error {
	if _, err := c.Run(ctx, strings.NewReader(l.Script), "sh"); err != nil {
		return fmt.Errorf("lxctest: %s layout in %s: %w", l.Name, c.Name, err)
	}
	return c.WaitListening(ctx, l.Listen, timeout)
}

// WaitListening polls ss inside the container until every socket of want listens, at most
// timeout (60 s when zero).
func (c *Container) WaitListening(ctx context.Context, want []Listen, timeout time.Duration) error {
	deadline := time.Now().Add(cmpDuration(timeout, 60*time.Second))
	for {
		out, err := c.Run(ctx, nil, "ss", "-Htuln")
		if err != nil {
			return err
		}
		socks, err := ParseSS(out)
		if err != nil {
			return err
		}
		var missing []string
		for _, w := range want {
			found := false
			for _, s := range socks {
				found = found || (s.Proto == w.Proto && s.Local == w.Local)
			}
			if !found {
				missing = append(missing, w.String())
			}
		}
		if len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lxctest: %s: still not listening on %s; ss -tuln inside:\n%s", c.Name, strings.Join(missing, ", "), out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
