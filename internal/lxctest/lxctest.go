// Package lxctest gives tests (and the container bench) real LXC containers: Debian bookworm
// system containers booted with systemd, each with a static address on a host-only bridge, made
// from one base container that is built once per machine and kept.
//
// The base, bindguard-base-VERSION, is built with Debian's lxc and debootstrap (`lxc-create -t
// debian`, from the mirror apt uses here) the first time any test or bench needs it, with the
// packages in Packages and every service disabled; later runs, of any test binary, find it and
// do not rebuild it (a build is serialised by a lock file, and a half-built base is rebuilt).
// New clones it copy-on-write (`lxc-copy -s -B overlay`; a full copy where overlay is refused),
// gives the clone an address on the bridge Bridge (BridgeAddr, no route out: no gateway in the
// containers, no NAT, no forwarding), starts it and waits, bounded, until systemd says it is up;
// at cleanup it stops and destroys it and, when no container of ours is left, removes the bridge.
// Containers left behind by a run that was killed are destroyed by the next one (each records
// the pid that made it).
//
// Everything needs root with lxc and debootstrap installed. Require skips a test otherwise,
// saying why, except that as root with the tools present a failure to build or start is a test
// failure, never a skip: in CI (make deps installs the packages) these tests run.
package lxctest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Version names the base's recipe; change it whenever Packages or the provisioning change, so
// that machines holding an older base build a new one.
const Version = "bookworm-1"

// BaseName is the kept base container.
const BaseName = "bindguard-base-" + Version

// Packages are installed in the base besides the template's own (iproute2 gives ss).
var Packages = []string{"redis-server", "postgresql", "memcached", "python3", "iproute2", "procps"}

// Bridge is the host-only bridge the containers' eth0 joins.
const Bridge = "bgtest0"

// BridgeAddr is the host's address on Bridge; containers get the others of its prefix.
var BridgeAddr = netip.MustParsePrefix("10.231.0.1/24")

// NamePrefix starts the name of every container New makes (and the sweep of stale ones).
const NamePrefix = "bgt-"

// CacheDir holds the lock file and the base's build log.
const CacheDir = "/var/cache/bindguard-lxctest"

// servicesOff are disabled (or masked, for the ones nothing needs) in the base, so a clone boots
// in a second or two with nothing listening; tests start what they need.
var (
	servicesDisabled = []string{"redis-server.service", "postgresql.service", "memcached.service"}
	servicesMasked   = []string{
		"ssh.service", "ssh.socket", "cron.service", "apt-daily.timer", "apt-daily-upgrade.timer",
		"e2scrub_all.timer", "e2scrub_reap.service", "fstrim.timer", "logrotate.timer", "man-db.timer",
		"systemd-timesyncd.service", "dpkg-db-backup.timer", "systemd-tmpfiles-clean.timer",
		"console-getty.service", "getty@tty1.service", "container-getty@.service",
	}
)

// Options shape a container.
type Options struct {
	// Address is its IPv4 address on Bridge; the zero value picks a free one.
	Address netip.Addr
	// BootTimeout bounds the wait for systemd to come up (default 120 s).
	BootTimeout time.Duration
	// Unprivileged makes a container whose uids and gids 0..IDMapSize-1 are IDMapBase.. on the
	// host (a user namespace); /etc/subuid and /etc/subgid gain root's range while one exists.
	Unprivileged bool
}

// Container is a started container.
type Container struct {
	Name         string     // the LXC name, which bindguard reports as its container and namespace label
	Address      netip.Addr // eth0's address on Bridge
	Unprivileged bool       // in a user namespace mapping 0 to IDMapBase
	pid          int
}

// Missing says why LXC containers cannot be made here ("" when they can: root, lxc-create,
// lxc-copy, lxc-attach and debootstrap present).
func Missing() string {
	if os.Geteuid() != 0 {
		return "needs root to create LXC containers (run as root, as .ci/run does)"
	}
	for _, p := range []struct{ bin, pkg string }{
		{"lxc-create", "lxc"}, {"lxc-copy", "lxc"}, {"lxc-attach", "lxc"}, {"lxc-start", "lxc"},
		{"debootstrap", "debootstrap"}, {"rsync", "rsync"}, {"ip", "iproute2"},
	} {
		if _, err := exec.LookPath(p.bin); err != nil {
			return fmt.Sprintf("%s not found (Debian package %s; make deps installs it as root)", p.bin, p.pkg)
		}
	}
	if _, err := os.Stat("/usr/share/lxc/templates/lxc-debian"); err != nil {
		return "the LXC debian template is missing (Debian package lxc-templates; make deps installs it as root)"
	}
	if _, err := os.Stat("/usr/share/keyrings/debian-archive-keyring.gpg"); err != nil {
		return "the Debian archive keyring is missing (Debian package debian-archive-keyring): debootstrap could not check signatures"
	}
	return ""
}

// lxcPath is where LXC keeps containers.
func lxcPath() string {
	out, err := exec.Command("lxc-config", "lxc.lxcpath").Output()
	if p := strings.TrimSpace(string(out)); err == nil && p != "" {
		return p
	}
	return "/var/lib/lxc"
}

// lock takes the machine-wide lock that serialises building the base, choosing addresses and
// adding or removing the bridge, across test binaries and the bench.
func lock() (func(), error) {
	if err := os.MkdirAll(CacheDir, 0o750); err != nil {
		return nil, fmt.Errorf("lxctest: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(CacheDir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lxctest: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil { // #nosec G115 -- a file descriptor
		_ = f.Close()
		return nil, fmt.Errorf("lxctest: lock: %w", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) // #nosec G115 -- a file descriptor
		_ = f.Close()
	}, nil
}

// Logf receives progress lines (t.Logf, log.Printf).
type Logf func(format string, args ...any)

// EnsureBase builds the base container unless a complete one of this Version is on the machine.
// It reports whether it built one.
func EnsureBase(ctx context.Context, logf Logf) (built bool, err error) {
	unlock, err := lock()
	if err != nil {
		return false, err
	}
	defer unlock()
	sweepStale(logf)
	dir := filepath.Join(lxcPath(), BaseName)
	marker := filepath.Join(dir, "bindguard-ready")
	if b, err := os.ReadFile(marker); err == nil && strings.TrimSpace(string(b)) == Version { // #nosec G304 -- our own file
		return false, nil
	}
	if _, err := os.Stat(dir); err == nil {
		logf("lxctest: %s is incomplete (an interrupted build): destroying it", BaseName)
		if out, err := exec.CommandContext(ctx, "lxc-destroy", "-f", "-n", BaseName).CombinedOutput(); err != nil { // #nosec G204 -- our own name
			return false, fmt.Errorf("lxctest: lxc-destroy %s: %w\n%s", BaseName, err, out)
		}
	}
	start := time.Now()
	logf("lxctest: building %s (debootstrap of Debian bookworm; minutes the first time)", BaseName)
	if err := build(ctx, dir); err != nil {
		return false, err
	}
	if err := os.WriteFile(marker, []byte(Version+"\n"), 0o600); err != nil {
		return false, fmt.Errorf("lxctest: %w", err)
	}
	logf("lxctest: built %s in %s", BaseName, time.Since(start).Round(time.Second))
	return true, nil
}

func build(ctx context.Context, dir string) error {
	conf := filepath.Join(CacheDir, "base.conf")
	// No network while building (the template's packages come through the host's chroot), no
	// AppArmor profile of its own (not every host has AppArmor).
	if err := os.WriteFile(conf, []byte("lxc.net.0.type = empty\nlxc.apparmor.profile = unconfined\n"), 0o600); err != nil {
		return fmt.Errorf("lxctest: %w", err)
	}
	mirror, security := aptMirrors()
	logPath := filepath.Join(CacheDir, "build.log")
	logFile, err := os.Create(logPath) // #nosec G304 -- our own cache directory
	if err != nil {
		return fmt.Errorf("lxctest: %w", err)
	}
	defer func() { _ = logFile.Close() }()
	cmd := exec.CommandContext(ctx, "lxc-create", "-n", BaseName, "-t", "debian", "-f", conf, "--", // #nosec G204 -- fixed arguments
		"-r", "bookworm", "--packages="+strings.Join(Packages, ","))
	cmd.Env = append(os.Environ(), "MIRROR="+mirror, "SECURITY_MIRROR="+security, "DEBIAN_FRONTEND=noninteractive",
		"KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("lxctest: lxc-create %s (mirror %s): %w; log in %s:\n%s", BaseName, mirror, err, logPath, tail(logPath, 30))
	}
	// The template falls back to unverified packages when it finds no keyring: refuse that base.
	if strings.Contains(tail(logPath, 1<<20), "No GPG check") {
		return fmt.Errorf("lxctest: lxc-create %s ran debootstrap without checking signatures (no Debian archive keyring; Debian package debian-archive-keyring); log in %s", BaseName, logPath)
	}
	rootfs := filepath.Join(dir, "rootfs")
	for _, p := range Packages {
		if out, err := exec.CommandContext(ctx, "chroot", rootfs, "dpkg-query", "-W", p).CombinedOutput(); err != nil { // #nosec G204 -- our own rootfs
			return fmt.Errorf("lxctest: package %s missing in the base after lxc-create (log %s): %w\n%s", p, logPath, err, out)
		}
	}
	// Static addressing only: LXC sets eth0's address from the container's config, and a DHCP
	// client would wait for a server that does not exist.
	if err := os.WriteFile(filepath.Join(rootfs, "etc/network/interfaces"), []byte("auto lo\niface lo inet loopback\n"), 0o644); err != nil { // #nosec G306 -- a world-readable config in the container
		return fmt.Errorf("lxctest: %w", err)
	}
	systemctl := func(verb string, units []string) error {
		args := append([]string{rootfs, "systemctl", verb}, units...)
		if out, err := exec.CommandContext(ctx, "chroot", args...).CombinedOutput(); err != nil { // #nosec G204 -- our own rootfs
			return fmt.Errorf("lxctest: systemctl %s in the base: %w\n%s", verb, err, out)
		}
		return nil
	}
	if err := systemctl("disable", servicesDisabled); err != nil {
		return err
	}
	return systemctl("mask", servicesMasked)
}

// aptMirrors returns the Debian mirror and security mirror apt is configured with here (the
// machine may reach no other), or Debian's defaults.
func aptMirrors() (mirror, security string) {
	mirror, security = "http://deb.debian.org/debian", "http://deb.debian.org/debian-security"
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	files = append(files, "/etc/apt/sources.list")
	more, _ := filepath.Glob("/etc/apt/sources.list.d/*.list")
	files = append(files, more...)
	re := regexp.MustCompile(`(https?://\S+)`)
	var m, s string
	for _, f := range files {
		b, err := os.ReadFile(f) // #nosec G304 -- apt's configuration
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			line = strings.TrimSpace(line)
			if strings.HasPrefix(line, "#") {
				continue
			}
			u := re.FindString(line)
			if u == "" || !(strings.HasPrefix(line, "URIs:") || strings.HasPrefix(line, "deb ")) {
				continue
			}
			u = strings.TrimSuffix(u, "/")
			switch {
			case strings.HasSuffix(u, "/debian-security") && s == "":
				s = u
			case strings.HasSuffix(u, "/debian") && m == "":
				m = u
			}
		}
	}
	if m != "" {
		mirror = m
	}
	if s != "" {
		security = s
	}
	return mirror, security
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path) // #nosec G304 -- our own log
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Create clones the base (which must exist: EnsureBase) into a container named
// NamePrefix+name+"-"+random, gives it an address on Bridge and starts it, waiting until it is
// up. On error nothing is left behind.
func Create(ctx context.Context, name string, opts Options) (c *Container, err error) {
	r := make([]byte, 3)
	_, _ = rand.Read(r)
	full := NamePrefix + name + "-" + hex.EncodeToString(r)
	unlock, err := lock()
	if err != nil {
		return nil, err
	}
	locked := true
	defer func() {
		if locked {
			unlock()
		}
	}()
	if err := ensureBridge(); err != nil {
		return nil, err
	}
	addr := opts.Address
	if !addr.IsValid() {
		if addr, err = freeAddress(); err != nil {
			return nil, err
		}
	}
	c = &Container{Name: full, Address: addr, Unprivileged: opts.Unprivileged}
	defer func() {
		if err != nil {
			if locked {
				unlock()
				locked = false
			}
			_ = c.Destroy()
		}
	}()
	base := BaseName
	if opts.Unprivileged {
		if err := ensureUnprivBase(ctx, func(string, ...any) {}); err != nil {
			return nil, err
		}
		if err := addSubids(); err != nil {
			return nil, err
		}
		base = UnprivBaseName
	}
	// Copy-on-write where the kernel has overlayfs; else a full copy.
	out, cerr := exec.CommandContext(ctx, "lxc-copy", "-n", base, "-N", full, "-s", "-B", "overlay").CombinedOutput() // #nosec G204 -- our own names
	if cerr != nil {
		out2, cerr2 := exec.CommandContext(ctx, "lxc-copy", "-n", base, "-N", full).CombinedOutput() // #nosec G204 -- our own names
		if cerr2 != nil {
			return nil, fmt.Errorf("lxctest: lxc-copy %s: %w\n%s\nand as a full copy: %w\n%s", full, cerr, out, cerr2, out2)
		}
	}
	dir := filepath.Join(lxcPath(), full)
	if err := os.WriteFile(filepath.Join(dir, "bindguard-owner"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("lxctest: %w", err)
	}
	if err := setNetwork(filepath.Join(dir, "config"), addr, r); err != nil {
		return nil, err
	}
	unlock()
	locked = false
	if out, err := exec.CommandContext(ctx, "lxc-start", "-n", full).CombinedOutput(); err != nil { // #nosec G204 -- our own name
		log, _ := exec.Command("lxc-start", "-n", full, "-F", "-l", "DEBUG", "-o", "/dev/stdout", "--", "/bin/true").CombinedOutput() // #nosec G204 -- our own name
		return nil, fmt.Errorf("lxctest: lxc-start %s: %w\n%s\n%s", full, err, out, log)
	}
	if err := c.waitUp(ctx, cmpDuration(opts.BootTimeout, 120*time.Second)); err != nil {
		return nil, err
	}
	return c, nil
}

func cmpDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// setNetwork replaces the clone's network section with a veth on Bridge holding addr.
func setNetwork(config string, addr netip.Addr, r []byte) error {
	b, err := os.ReadFile(config) // #nosec G304 -- the container's config
	if err != nil {
		return fmt.Errorf("lxctest: %w", err)
	}
	var keep []string
	for line := range strings.SplitSeq(strings.TrimRight(string(b), "\n"), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "lxc.net.") {
			keep = append(keep, line)
		}
	}
	keep = append(keep,
		"# bindguard lxctest: host-only bridge, static address, no gateway",
		"lxc.net.0.type = veth",
		"lxc.net.0.link = "+Bridge,
		"lxc.net.0.flags = up",
		"lxc.net.0.name = eth0",
		fmt.Sprintf("lxc.net.0.hwaddr = 02:bd:%02x:%02x:%02x:%02x", r[0], r[1], r[2], addr.As4()[3]),
		fmt.Sprintf("lxc.net.0.ipv4.address = %s/%d", addr, BridgeAddr.Bits()),
	)
	if err := os.WriteFile(config, []byte(strings.Join(keep, "\n")+"\n"), 0o600); err != nil {
		return fmt.Errorf("lxctest: %w", err)
	}
	return nil
}

// ensureBridge adds Bridge with BridgeAddr unless it exists (held under the lock).
func ensureBridge() error {
	if _, err := os.Stat(filepath.Join("/sys/class/net", Bridge)); err == nil {
		return nil
	}
	for _, args := range [][]string{
		{"link", "add", Bridge, "type", "bridge"},
		{"addr", "add", BridgeAddr.String(), "dev", Bridge},
		{"link", "set", Bridge, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil { // #nosec G204 -- fixed arguments
			_ = exec.Command("ip", "link", "del", Bridge).Run()
			return fmt.Errorf("lxctest: ip %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// ours lists the containers New made (by name prefix) with their config's contents.
func ours() map[string]string {
	out := map[string]string{}
	entries, _ := os.ReadDir(lxcPath())
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), NamePrefix) {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(lxcPath(), e.Name(), "config")) // #nosec G304 -- LXC's config
		out[e.Name()] = string(b)
	}
	return out
}

var addrRe = regexp.MustCompile(`(?m)^lxc\.net\.0\.ipv4\.address\s*=\s*([0-9.]+)`)

// freeAddress picks the lowest address of BridgeAddr's prefix no container of ours holds (under
// the lock).
func freeAddress() (netip.Addr, error) {
	used := map[netip.Addr]bool{BridgeAddr.Addr(): true}
	for _, conf := range ours() {
		if m := addrRe.FindStringSubmatch(conf); m != nil {
			if a, err := netip.ParseAddr(m[1]); err == nil {
				used[a] = true
			}
		}
	}
	p := BridgeAddr.Masked()
	for a := p.Addr().Next(); p.Contains(a); a = a.Next() {
		if !used[a] && p.Contains(a.Next()) { // not the broadcast address
			return a, nil
		}
	}
	return netip.Addr{}, errors.New("lxctest: no free address on " + Bridge)
}

// sweepStale destroys containers of ours whose making process is gone (a run that was killed),
// and the bridge when none is left (under the lock).
func sweepStale(logf Logf) {
	for name := range ours() {
		b, err := os.ReadFile(filepath.Join(lxcPath(), name, "bindguard-owner")) // #nosec G304 -- our own file
		if err != nil {
			continue // being made right now, before its owner file: leave it
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err == nil && pid > 0 && syscall.Kill(pid, 0) == nil && pid != os.Getpid() {
			continue
		}
		if pid == os.Getpid() {
			continue
		}
		logf("lxctest: destroying %s, left behind by pid %d", name, pid)
		_ = (&Container{Name: name}).destroy()
	}
	removeBridgeIfUnused()
	if err := restoreSubidsIfUnused(); err != nil {
		logf("%v", err)
	}
}

func removeBridgeIfUnused() {
	if len(ours()) == 0 {
		if _, err := os.Stat(filepath.Join("/sys/class/net", Bridge)); err == nil {
			_ = exec.Command("ip", "link", "del", Bridge).Run()
		}
	}
}

// waitUp waits until the container runs and systemd inside has finished booting (running or
// degraded), polling; it fails after timeout with the container's state.
func (c *Container) waitUp(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return err
		}
		out, err := exec.CommandContext(ctx, "lxc-attach", "-n", c.Name, "--", "systemctl", "is-system-running").Output() // #nosec G204 -- our own name
		last = strings.TrimSpace(string(out))
		if last == "running" || last == "degraded" {
			pid, perr := c.readPID(ctx)
			if perr != nil {
				return perr
			}
			c.pid = pid
			return nil
		}
		if err != nil && last == "" {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	info, _ := exec.Command("lxc-info", "-n", c.Name).CombinedOutput()                                                 // #nosec G204 -- our own name
	jobs, _ := exec.Command("lxc-attach", "-n", c.Name, "--", "systemctl", "list-jobs", "--no-pager").CombinedOutput() // #nosec G204 -- our own name
	return fmt.Errorf("lxctest: %s not up after %s (systemd says %q)\n%s\n%s", c.Name, timeout, last, info, jobs)
}

func (c *Container) readPID(ctx context.Context) (int, error) {
	out, err := exec.CommandContext(ctx, "lxc-info", "-n", c.Name, "-p", "-H").Output() // #nosec G204 -- our own name
	if err != nil {
		return 0, fmt.Errorf("lxctest: lxc-info %s: %w", c.Name, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("lxctest: lxc-info %s: no init pid (%q)", c.Name, out)
	}
	return pid, nil
}

// InitPID is the container's init (systemd) as the host sees it.
func (c *Container) InitPID() int { return c.pid }

// NetnsPath is a file naming the container's network namespace.
func (c *Container) NetnsPath() string { return fmt.Sprintf("/proc/%d/ns/net", c.pid) }

// Run runs a command inside the container (lxc-attach: every namespace of it, its cgroup, a
// clean environment) with stdin, returning its standard output; the error carries stderr.
func (c *Container) Run(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	full := append([]string{"-n", c.Name, "--clear-env", "--set-var", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "--"}, args...)
	cmd := exec.CommandContext(ctx, "lxc-attach", full...) // #nosec G204 -- commands the tests choose, in our own container
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("lxc-attach -n %s -- %s: %w\n%s", c.Name, strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

// Destroy stops the container and destroys it (its copy-on-write layer with it), then removes
// the bridge if no container of ours is left.
func (c *Container) Destroy() error {
	err := c.destroy()
	unlock, lerr := lock()
	if lerr != nil {
		return errors.Join(err, lerr)
	}
	defer unlock()
	removeBridgeIfUnused()
	return errors.Join(err, restoreSubidsIfUnused())
}

func (c *Container) destroy() error {
	_ = exec.Command("lxc-stop", "-n", c.Name, "-k").Run()                       // #nosec G204 -- our own name
	out, err := exec.Command("lxc-destroy", "-f", "-n", c.Name).CombinedOutput() // #nosec G204 -- our own name
	if err != nil {
		if _, serr := os.Stat(filepath.Join(lxcPath(), c.Name)); errors.Is(serr, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("lxctest: lxc-destroy %s: %w\n%s", c.Name, err, out)
	}
	return nil
}

// Socket is one line of `ss -Htulnp` inside a container.
type Socket struct {
	Proto   string         // tcp or udp
	Local   netip.AddrPort // "*" (a dual-stack wildcard) reads as [::]
	Process string         // the first owner's command name, "" when ss shows none
	PID     int            // its pid inside the container
}

var ssUser = regexp.MustCompile(`\(\("([^"]*)",pid=(\d+)`)

// ParseSS reads `ss -Htulnp` output.
func ParseSS(out string) ([]Socket, error) {
	var socks []Socket
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 {
			continue
		}
		local := f[4]
		i := strings.LastIndex(local, ":")
		if i < 0 {
			return nil, fmt.Errorf("ss: no port in %q", local)
		}
		host, port := local[:i], local[i+1:]
		host = strings.Trim(host, "[]")
		if j := strings.Index(host, "%"); j >= 0 {
			host = host[:j]
		}
		if host == "*" {
			host = "::"
		}
		a, err := netip.ParseAddr(host)
		if err != nil {
			return nil, fmt.Errorf("ss: address in %q: %w", sc.Text(), err)
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("ss: port in %q: %w", sc.Text(), err)
		}
		s := Socket{Proto: f[0], Local: netip.AddrPortFrom(a.Unmap(), uint16(p))}
		if m := ssUser.FindStringSubmatch(sc.Text()); m != nil {
			s.Process = m[1]
			s.PID, _ = strconv.Atoi(m[2])
		}
		socks = append(socks, s)
	}
	slices.SortFunc(socks, func(a, b Socket) int {
		return strings.Compare(a.Proto+" "+a.Local.String(), b.Proto+" "+b.Local.String())
	})
	return socks, sc.Err()
}

func itoa(n int) string { return strconv.Itoa(n) }
