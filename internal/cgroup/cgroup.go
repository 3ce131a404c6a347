// Package cgroup reads /proc/PID/cgroup files: the systemd unit and the container (Docker,
// Podman, containerd, CRI-O id, or LXC name) a process runs in. It has no dependencies beyond
// the standard library, so the public listen package can use it.
package cgroup

import (
	"bufio"
	"bytes"
	"cmp"
	"regexp"
	"strings"
	"sync"

	"github.com/bindguard/bindguard/internal/text"
)

// MaxFile bounds the cgroup file (and other small /proc files) read.
const MaxFile = 64 << 10

// containerPatterns find a container id in one cgroup path component, most specific first.
var containerPatterns = []*regexp.Regexp{
	// systemd-driver scopes: docker-<id>.scope, libpod-<id>.scope, cri-containerd-<id>.scope, crio-<id>.scope
	regexp.MustCompile(`^(?:docker|libpod|cri-containerd|crio|containerd)-([0-9a-f]{64})\.scope$`),
	// cgroupfs driver: /docker/<id>, /kubepods/.../<id>, /libpod_parent/libpod-<id>
	regexp.MustCompile(`^(?:libpod-)?([0-9a-f]{64})$`),
}

// lxcPattern finds an LXC container name in /lxc.payload.NAME/... and /lxc.monitor.NAME (LXC 4+);
// older LXC uses /lxc/NAME/....
var lxcPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^lxc\.(?:payload|monitor)\.(.+)$`) })

// Parse reads a /proc/PID/cgroup file and returns the innermost systemd unit (a
// component ending in .service or .scope) and a container id or name, each empty when absent.
// It prefers the unified (cgroup v2, "0::") line and falls back to the name=systemd line.
func Parse(b []byte) (unit, container string) {
	var path, systemd, other string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), MaxFile)
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
			if m := lxcPattern().FindStringSubmatch(c); m != nil {
				container = Sanitize(m[1])
			} else if c == "lxc" && i+1 < len(parts) && parts[i+1] != "" {
				container = Sanitize(parts[i+1])
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
			unit = Sanitize(c)
			break
		}
	}
	return unit, container
}

// Sanitize replaces control characters, bidirectional overrides and invalid UTF-8 with "?", so
// a process cannot forge report lines or terminal escapes through its name or cgroup.
func Sanitize(s string) string {
	return text.Sanitize(s, '?')
}
