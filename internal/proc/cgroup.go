package proc

import (
	"bufio"
	"bytes"
	"cmp"
	"os/user"
	"regexp"
	"strconv"
	"strings"
)

// containerPatterns find a container id in one cgroup path component, most specific first.
var containerPatterns = []*regexp.Regexp{
	// systemd-driver scopes: docker-<id>.scope, libpod-<id>.scope, cri-containerd-<id>.scope, crio-<id>.scope
	regexp.MustCompile(`^(?:docker|libpod|cri-containerd|crio|containerd)-([0-9a-f]{64})\.scope$`),
	// cgroupfs driver: /docker/<id>, /kubepods/.../<id>, /libpod_parent/libpod-<id>
	regexp.MustCompile(`^(?:libpod-)?([0-9a-f]{64})$`),
}

// lxcPattern finds an LXC container name in /lxc.payload.NAME/... and /lxc.monitor.NAME (LXC 4+);
// older LXC uses /lxc/NAME/....
var lxcPattern = regexp.MustCompile(`^lxc\.(?:payload|monitor)\.(.+)$`)

// ParseCgroup reads a /proc/PID/cgroup file and returns the innermost systemd unit (a
// component ending in .service or .scope) and a container id or name, each empty when absent.
// It prefers the unified (cgroup v2, "0::") line and falls back to the name=systemd line.
func ParseCgroup(b []byte) (unit, container string) {
	var path, systemd, other string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), maxSmallFile)
	for sc.Scan() {
		line := sc.Text()
		id, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		ctrl, p, ok := strings.Cut(rest, ":")
		if !ok {
			continue
		}
		switch {
		case id == "0" && ctrl == "":
			path = p
		case ctrl == "name=systemd":
			systemd = p
		case other == "" && strings.Contains(ctrl, "pids"):
			other = p
		}
	}
	if path == "" || path == "/" {
		path = cmp.Or(systemd, other, path)
	}
	parts := strings.Split(path, "/")
	for i, c := range parts {
		if container == "" {
			if m := lxcPattern.FindStringSubmatch(c); m != nil {
				container = sanitize(m[1])
			} else if c == "lxc" && i+1 < len(parts) && parts[i+1] != "" {
				container = sanitize(parts[i+1])
			}
		}
		for _, re := range containerPatterns {
			if m := re.FindStringSubmatch(c); m != nil {
				container = m[1][:12]
			}
		}
	}
	for i := len(parts) - 1; i >= 0; i-- {
		c := parts[i]
		if strings.HasSuffix(c, ".service") || strings.HasSuffix(c, ".scope") {
			unit = sanitize(c)
			break
		}
	}
	return unit, container
}

// newUserCache returns a uid-to-name lookup over the system's user database, caching answers.
// It is used from one goroutine.
func newUserCache() func(int) string {
	cache := map[int]string{}
	return func(uid int) string {
		if n, ok := cache[uid]; ok {
			return n
		}
		n := strconv.Itoa(uid)
		if u, err := user.LookupId(n); err == nil && u.Username != "" {
			n = sanitize(u.Username)
		}
		cache[uid] = n
		return n
	}
}
