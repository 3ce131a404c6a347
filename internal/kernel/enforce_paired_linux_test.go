package kernel

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"
)

// TestEnforcePairedBind is a measurement, not a check of behaviour, and runs only when asked
// (BINDGUARD_PAIRED=1, as bench/enforce-bind.sh does): it decides what enforcement adds to
// a bind() on a machine whose wall clock drifts by more than the effect between separate
// rounds. In one process, on one CPU, it runs many rounds; a round runs, for each case, one
// block of binds per arm, the arms in a random order:
//
//	none     no program attached to the cgroup (nor, when the report says so, anywhere: the
//	         kernel's static key for the hook is then off, as on a machine without bindguard)
//	trivial  "return 1" programs on cgroup/bind4 and cgroup/post_bind4 of the cgroup (through
//	         bpf_link): the kernel's fixed cost of having the two hooks at all
//	ours     the enforcement programs and maps (enforceTestPolicy, loaded as ApplyEnforcement
//	         loads them) on the four hooks of the cgroup, bpf_link, as ApplyEnforcement
//	         attaches them
//	sibling  the same programs attached to an empty sibling cgroup only: the static key is on
//	         but the bench's cgroup has no program (what enforcing another cgroup costs)
//
// An arm's programs are attached before its block and detached after it (the links
// closed), outside the timed part. A block makes BLOCK binds of TCP sockets, 64 at a time:
// the sockets are made (SO_REUSEPORT unless port 0) and closed outside the timer, the 64
// binds timed together; a warm-up batch of 64 untimed binds starts each block. The denial
// records of "denied" are drained after each batch (untimed), so every denial writes its
// record as under serve. The result of every bind is checked (EPERM where the arm refuses).
//
// The report, per case and contrast (ours-none, trivial-none, ours-trivial, sibling-none),
// is the median over rounds of the per-round difference in ns per bind, its 95 % confidence
// interval from the order statistics (distribution-free: the binomial interval of the
// median) and from a percentile bootstrap, and the arms' own medians.
//
// Knobs (environment): BINDGUARD_PAIRED_ROUNDS (200), BINDGUARD_PAIRED_BLOCK (20000 binds),
// BINDGUARD_PAIRED_CPU (the last CPU), BINDGUARD_PAIRED_CASES (allowed,undeclared,port0,denied),
// BINDGUARD_PAIRED_ARMS (none,trivial,ours,sibling), BINDGUARD_PAIRED_CSV (a file for every
// block's figure), BINDGUARD_PAIRED_SEED.
func TestEnforcePairedBind(t *testing.T) {
	if os.Getenv("BINDGUARD_PAIRED") == "" {
		t.Skip("a measurement: BINDGUARD_PAIRED=1 runs it (bench/enforce-bind.sh)")
	}
	requireRoot(t)
	cfg := pairedConfig{
		rounds: envInt(t, "BINDGUARD_PAIRED_ROUNDS", 200),
		block:  envInt(t, "BINDGUARD_PAIRED_BLOCK", 20000),
		cpu:    envInt(t, "BINDGUARD_PAIRED_CPU", runtime.NumCPU()-1),
		seed:   uint64(envInt(t, "BINDGUARD_PAIRED_SEED", int(time.Now().UnixNano()&0x7fffffff))), // #nosec G115 -- positive
		cases:  envList("BINDGUARD_PAIRED_CASES", "allowed,undeclared,port0,denied"),
		arms:   envList("BINDGUARD_PAIRED_ARMS", "none,trivial,ours,sibling"),
	}
	if cfg.rounds < 10 || cfg.block < 64 {
		t.Fatalf("BINDGUARD_PAIRED_ROUNDS must be >= 10 and BINDGUARD_PAIRED_BLOCK >= 64")
	}
	if cfg.cpu < 0 || cfg.cpu >= runtime.NumCPU() {
		t.Fatalf("BINDGUARD_PAIRED_CPU=%d: not a CPU of this machine (0-%d)", cfg.cpu, runtime.NumCPU()-1)
	}
	allCases := map[string]pairedCase{
		"allowed":    {name: "allowed", desc: "127.0.0.1:6379 (declared localhost_only)", addr: [4]byte{127, 0, 0, 1}, port: 6379},
		"undeclared": {name: "undeclared", desc: "127.0.0.1:7000 (no rule, no guard)", addr: [4]byte{127, 0, 0, 1}, port: 7000},
		"port0":      {name: "port0", desc: "0.0.0.0:0 (judged in post_bind4)", port: 0},
		"denied":     {name: "denied", desc: "0.0.0.0:6379 (refused by ours, record drained)", port: 6379, deniedByOurs: true},
	}
	var cases []pairedCase
	for _, c := range cfg.cases {
		pc, ok := allCases[c]
		if !ok {
			t.Fatalf("BINDGUARD_PAIRED_CASES: unknown case %q (allowed, undeclared, port0, denied)", c)
		}
		cases = append(cases, pc)
	}
	for _, a := range cfg.arms {
		if !slices.Contains([]string{"none", "trivial", "ours", "sibling"}, a) {
			t.Fatalf("BINDGUARD_PAIRED_ARMS: unknown arm %q (none, trivial, ours, sibling)", a)
		}
	}
	if !slices.Contains(cfg.arms, "none") {
		t.Fatal("BINDGUARD_PAIRED_ARMS must hold none, the baseline")
	}

	env := newPairedEnv(t)
	before := otherBindPrograms(t, env.mount, env.ownIDs)
	loadBefore := loadavg()

	// results[case][arm][round] = ns per bind
	results := map[string]map[string][]float64{}
	for _, c := range cases {
		results[c.name] = map[string][]float64{}
	}
	var csv *os.File
	if p := os.Getenv("BINDGUARD_PAIRED_CSV"); p != "" {
		f, err := os.Create(p) // #nosec G304 -- the file asked for
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = f.Close() }()
		csv = f
		fmt.Fprintln(csv, "round,case,arm,position,ns_per_bind")
	}
	rng := rand.New(rand.NewPCG(cfg.seed, 15))
	start := time.Now()
	gc := debug.SetGCPercent(-1)
	defer debug.SetGCPercent(gc)
	inNetns(t, env.nsPath, func() {
		var old unix.CPUSet
		if err := unix.SchedGetaffinity(0, &old); err != nil {
			t.Error(err)
			return
		}
		var set unix.CPUSet
		set.Set(cfg.cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			t.Errorf("pin to CPU %d: %v", cfg.cpu, err)
			return
		}
		defer func() { _ = unix.SchedSetaffinity(0, &old) }()
		for r := 0; r < cfg.rounds; r++ {
			for _, ci := range rng.Perm(len(cases)) {
				c := cases[ci]
				for pos, ai := range rng.Perm(len(cfg.arms)) {
					arm := cfg.arms[ai]
					ns, err := env.block(c, arm, cfg.block)
					if err != nil {
						t.Errorf("round %d, %s, %s: %v", r, c.name, arm, err)
						return
					}
					results[c.name][arm] = append(results[c.name][arm], ns)
					if csv != nil {
						fmt.Fprintf(csv, "%d,%s,%s,%d,%.2f\n", r, c.name, arm, pos, ns)
					}
				}
			}
		}
	})
	if t.Failed() {
		return
	}
	elapsed := time.Since(start)
	after := otherBindPrograms(t, env.mount, env.ownIDs)

	var out strings.Builder
	fmt.Fprintf(&out, "\npaired bind() benchmark: %d rounds, %d binds per block, CPU %d, %s, seed %d\n",
		cfg.rounds, cfg.block, cfg.cpu, elapsed.Round(time.Second), cfg.seed)
	fmt.Fprintf(&out, "kernel %s, %s; load average before %s, after %s\n", kernelRelease(), cpuModel(), loadBefore, loadavg())
	fmt.Fprintf(&out, "cgroup/bind4 and post_bind4 programs attached elsewhere on the machine: %d before, %d after", before, after)
	if before == 0 && after == 0 {
		fmt.Fprintf(&out, " (so in \"none\" the static key is off)\n")
	} else {
		fmt.Fprintf(&out, " (so in \"none\" the static key was on: \"none\" is like \"sibling\")\n")
	}
	for _, c := range cases {
		fmt.Fprintf(&out, "  %-10s %s\n", c.name, c.desc)
	}
	fmt.Fprintf(&out, "\n| case | contrast | pairs | median diff ns/bind | 95%% CI (order stat.) | 95%% CI (bootstrap) | median a / b ns/bind |\n|---|---|---|---|---|---|---|\n")
	contrasts := [][2]string{{"ours", "none"}, {"trivial", "none"}, {"ours", "trivial"}, {"sibling", "none"}}
	for _, c := range cases {
		for _, ct := range contrasts {
			a, b := results[c.name][ct[0]], results[c.name][ct[1]]
			if len(a) == 0 || len(b) == 0 {
				continue
			}
			d := make([]float64, len(a))
			for i := range a {
				d[i] = a[i] - b[i]
			}
			lo, hi := medianCI(d)
			blo, bhi := bootstrapMedianCI(d, 2000, rng)
			fmt.Fprintf(&out, "| %s | %s-%s | %d | %+.1f | [%+.1f, %+.1f] | [%+.1f, %+.1f] | %.0f / %.0f |\n",
				c.name, ct[0], ct[1], len(d), median(d), lo, hi, blo, bhi, median(a), median(b))
		}
	}
	if a, b := results["allowed"]["ours"], results["allowed"]["none"]; len(a) > 0 && len(b) > 0 {
		d := make([]float64, len(a))
		for i := range a {
			d[i] = a[i] - b[i]
		}
		lo, hi := medianCI(d)
		verdict := "undecided (the interval holds 150)"
		switch {
		case hi <= 150:
			verdict = "met (the interval's upper bound is at most 150 ns)"
		case lo > 150:
			verdict = "not met (the interval's lower bound is above 150 ns)"
		}
		fmt.Fprintf(&out, "\ntarget (allowed bind, ours-none <= 150 ns): %s\n", verdict)
	}
	fmt.Print(out.String())
}

type pairedConfig struct {
	rounds, block, cpu int
	seed               uint64
	cases, arms        []string
}

type pairedCase struct {
	name, desc   string
	addr         [4]byte
	port         int
	deniedByOurs bool
}

// pairedEnv: the bench's cgroup (holding this process) and an empty sibling, a network
// namespace, the enforcement objects and the trivial programs, all removed at cleanup.
type pairedEnv struct {
	mount, nsPath      string
	cg, sibling        *os.File
	objs               *enforceObjects
	trivBind, trivPost *ebpf.Program
	denials            *ringbuf.Reader
	rec                ringbuf.Record
	ownIDs             map[ebpf.ProgramID]bool
	fds                []int
}

func newPairedEnv(t *testing.T) *pairedEnv {
	env := &pairedEnv{ownIDs: map[ebpf.ProgramID]bool{}}
	mount, err := FindCgroup2()
	if err != nil {
		t.Fatal(err)
	}
	env.mount = mount
	cgPath, _ := testCgroup(t)
	sib := filepath.Join(mount, randomName("bindguard-paired-sibling"))
	if err := os.Mkdir(sib, 0o755); err != nil { // #nosec G301 -- a cgroup directory
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(sib) })
	for _, x := range []struct {
		path string
		dst  **os.File
	}{{cgPath, &env.cg}, {sib, &env.sibling}} {
		f, err := os.Open(x.path) // #nosec G304 -- our own cgroups
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = f.Close() })
		*x.dst = f
	}
	env.nsPath, _ = testNetns(t)
	if err := ensureBPFFS("/sys/fs/bpf"); err != nil {
		t.Skip("no BPF file system:", err)
	}
	pins := filepath.Join("/sys/fs/bpf", randomName("bindguard-paired"))
	if err := os.MkdirAll(pins, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(pins) })
	objs, err := loadEnforceObjectsPinned(pins)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = objs.Close() })
	env.objs = objs
	if err := writeRules(&objs.enforceMaps, compileTest(t, enforceTestPolicy, EnforceDeny, nil)); err != nil {
		t.Fatal(err)
	}
	ret1 := asm.Instructions{asm.Mov.Imm(asm.R0, 1), asm.Return()}
	env.trivBind, err = ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.CGroupSockAddr, AttachType: ebpf.AttachCGroupInet4Bind, Instructions: ret1, License: "GPL"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.trivBind.Close() })
	env.trivPost, err = ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.CGroupSock, AttachType: ebpf.AttachCGroupInet4PostBind, Instructions: ret1, License: "GPL"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.trivPost.Close() })
	for _, p := range []*ebpf.Program{env.trivBind, env.trivPost, objs.BindguardEnforceBind4, objs.BindguardEnforceBind6, objs.BindguardEnforcePostBind4, objs.BindguardEnforcePostBind6} {
		info, err := p.Info()
		if err != nil {
			t.Fatal(err)
		}
		if id, ok := info.ID(); ok {
			env.ownIDs[id] = true
		}
	}
	env.denials, err = ringbuf.NewReader(objs.Denials)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.denials.Close() })
	env.fds = make([]int, 0, 64)
	return env
}

// attach attaches an arm's programs; the returned links detach them when closed.
func (env *pairedEnv) attach(arm string) ([]link.Link, error) {
	type hook struct {
		cg     *os.File
		prog   *ebpf.Program
		attach ebpf.AttachType
	}
	var hooks []hook
	switch arm {
	case "none":
		return nil, nil
	case "trivial":
		hooks = []hook{{env.cg, env.trivBind, ebpf.AttachCGroupInet4Bind}, {env.cg, env.trivPost, ebpf.AttachCGroupInet4PostBind}}
	case "ours", "sibling":
		cg := env.cg
		if arm == "sibling" {
			cg = env.sibling
		}
		for _, h := range enforceHooks {
			hooks = append(hooks, hook{cg, h.prog(env.objs), h.attach})
		}
	}
	var ls []link.Link
	for _, h := range hooks {
		l, err := link.AttachRawLink(link.RawLinkOptions{Target: int(h.cg.Fd()), Program: h.prog, Attach: h.attach}) // #nosec G115 -- an fd
		if err != nil {
			closeLinks(ls)
			return nil, fmt.Errorf("attach %s: %w", h.attach, err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}

func closeLinks(ls []link.Link) {
	for _, l := range ls {
		_ = l.Close()
	}
}

// block runs one arm's block of n binds of case c and returns the timed ns per bind.
func (env *pairedEnv) block(c pairedCase, arm string, n int) (float64, error) {
	if arm == "none" || arm == "sibling" {
		// The bench's cgroup must have no program, its ancestors' included.
		for _, at := range []ebpf.AttachType{ebpf.AttachCGroupInet4Bind, ebpf.AttachCGroupInet4PostBind} {
			q, err := link.QueryPrograms(link.QueryOptions{Target: int(env.cg.Fd()), Attach: at, QueryFlags: unix.BPF_F_QUERY_EFFECTIVE}) // #nosec G115 -- an fd
			if err != nil {
				return 0, fmt.Errorf("query %s: %w", at, err)
			}
			if len(q.Programs) > 0 {
				return 0, fmt.Errorf("arm %s: the bench's cgroup has %d effective %s programs (someone else's?)", arm, len(q.Programs), at)
			}
		}
	}
	ls, err := env.attach(arm)
	if err != nil {
		return 0, err
	}
	defer closeLinks(ls)
	var wantErr error
	if c.deniedByOurs && arm == "ours" {
		wantErr = unix.EPERM
	}
	sa := &unix.SockaddrInet4{Addr: c.addr, Port: c.port}
	var total time.Duration
	for done := -64; done < n; { // the first batch is the untimed warm-up
		k := min(64, n-max(done, 0))
		d, err := env.batch(sa, k, wantErr, c.deniedByOurs && arm == "ours")
		if err != nil {
			return 0, err
		}
		if done >= 0 {
			total += d
		}
		done += k
	}
	return float64(total.Nanoseconds()) / float64(n), nil
}

// batch makes k sockets, times their binds to sa (each must end with wantErr), closes them;
// drain reads the denial records the binds wrote.
func (env *pairedEnv) batch(sa *unix.SockaddrInet4, k int, wantErr error, drain bool) (time.Duration, error) {
	fds := env.fds[:0]
	defer func() {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
	}()
	for range k {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return 0, err
		}
		fds = append(fds, fd)
		if sa.Port != 0 {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
				return 0, err
			}
		}
	}
	var bad error
	wrong := false
	t0 := time.Now()
	for _, fd := range fds {
		if err := unix.Bind(fd, sa); err != wantErr && !errors.Is(err, wantErr) {
			bad, wrong = err, true
		}
	}
	d := time.Since(t0)
	if wrong {
		return 0, fmt.Errorf("bind %v:%d: %v, want %v", sa.Addr, sa.Port, bad, wantErr)
	}
	if drain {
		got := 0
		for env.denials.AvailableBytes() > 0 {
			if err := env.denials.ReadInto(&env.rec); err != nil {
				return 0, fmt.Errorf("read denials: %w", err)
			}
			got++
		}
		if got != k {
			return 0, fmt.Errorf("%d denial records for %d denied binds", got, k)
		}
	}
	return d, nil
}

// otherBindPrograms counts the cgroup/bind4 and post_bind4 programs attached to any cgroup
// of the machine that are not the bench's own: while there are any, the kernel's static key
// of the hook is on for every bind.
func otherBindPrograms(t *testing.T, mount string, own map[ebpf.ProgramID]bool) int {
	n := 0
	_ = filepath.WalkDir(mount, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		f, err := os.Open(path) // #nosec G304 -- a cgroup directory
		if err != nil {
			return nil
		}
		defer func() { _ = f.Close() }()
		for _, at := range []ebpf.AttachType{ebpf.AttachCGroupInet4Bind, ebpf.AttachCGroupInet4PostBind} {
			q, err := link.QueryPrograms(link.QueryOptions{Target: int(f.Fd()), Attach: at}) // #nosec G115 -- an fd
			if err != nil {
				continue
			}
			for _, p := range q.Programs {
				if !own[p.ID] {
					n++
					t.Logf("other %s program %d on %s", at, p.ID, path)
				}
			}
		}
		return nil
	})
	return n
}

func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%s=%q: not a number", name, s)
	}
	return v
}

func envList(name, def string) []string {
	s := os.Getenv(name)
	if s == "" {
		s = def
	}
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func kernelRelease() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return "?"
	}
	return unix.ByteSliceToString(u.Release[:])
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v) + fmt.Sprintf(" (%d CPUs)", runtime.NumCPU())
		}
	}
	return "?"
}

func median(x []float64) float64 {
	s := slices.Clone(x)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// medianCI is the distribution-free 95 % confidence interval of the median: the order
// statistics x(k) and x(n+1-k) with k the largest for which P(Binomial(n, 1/2) < k) <= 0.025.
func medianCI(x []float64) (float64, float64) {
	s := slices.Clone(x)
	slices.Sort(s)
	n := len(s)
	cum := 0.0
	k := 0 // P(B < k+1) = cum after adding pmf(k)
	for j := 0; j < n; j++ {
		lg, _ := math.Lgamma(float64(n + 1))
		lj, _ := math.Lgamma(float64(j + 1))
		lnj, _ := math.Lgamma(float64(n - j + 1))
		cum += math.Exp(lg - lj - lnj - float64(n)*math.Ln2)
		if cum > 0.025 {
			break
		}
		k = j + 1
	}
	if k < 1 {
		return s[0], s[n-1]
	}
	return s[k-1], s[n-k]
}

// bootstrapMedianCI is the percentile bootstrap 95 % interval of the median.
func bootstrapMedianCI(x []float64, reps int, rng *rand.Rand) (float64, float64) {
	meds := make([]float64, reps)
	s := make([]float64, len(x))
	for r := range meds {
		for i := range s {
			s[i] = x[rng.IntN(len(x))]
		}
		meds[r] = median(s)
	}
	slices.Sort(meds)
	return meds[int(0.025*float64(reps))], meds[int(0.975*float64(reps))-1]
}
