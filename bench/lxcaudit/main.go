// Command lxcaudit times `bindguard audit --netns all --format json` on a host running N real
// LXC containers (internal/lxctest: the same cached base and host-only bridge as the tests)
// against running `ss -tulnp` inside each of them in turn, the way an operator would without
// bindguard: `lxc-attach -n NAME -- ss -tulnp`, and `nsenter -t PID -n -m -p ss -tulnp`. Half
// the containers are careless (redis, PostgreSQL and memcached on wildcards), half careful (on
// loopback). It prints the median wall time of each over RUNS runs and the ratio (issue 13's
// target: audit at or below 0.25x the lxc-attach loop), then destroys every container it made,
// also when interrupted.
//
//	sudo go run ./bench/lxcaudit -bindguard PATH [-n 12] [-runs 9]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bindguard/bindguard/internal/lxctest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "lxcaudit:", err)
		os.Exit(2)
	}
}

func run() error {
	n := flag.Int("n", 12, "containers")
	runs := flag.Int("runs", 9, "timed runs of each command (the median is reported)")
	bin := flag.String("bindguard", "", "the bindguard binary (required)")
	flag.Parse()
	if *bin == "" {
		return errors.New("-bindguard PATH is required")
	}
	if why := lxctest.Missing(); why != "" {
		return errors.New(why)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

	start := time.Now()
	if built, err := lxctest.EnsureBase(ctx, logf); err != nil {
		return err
	} else if built {
		logf("base built in %s", time.Since(start).Round(time.Second))
	}

	var (
		mu    sync.Mutex
		cs    []*lxctest.Container
		errs  []error
		boots []time.Duration
	)
	defer func() {
		for _, c := range cs {
			if err := c.Destroy(); err != nil {
				logf("%v", err)
			}
		}
		logf("destroyed %d containers", len(cs))
	}()
	// Two at a time: the machine is shared.
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for i := range *n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			t0 := time.Now()
			layout := lxctest.Careful
			if i%2 == 0 {
				layout = lxctest.Careless
			}
			c, err := lxctest.Create(ctx, "bench"+layout.Name, lxctest.Options{})
			if err == nil {
				mu.Lock()
				cs = append(cs, c)
				boots = append(boots, time.Since(t0))
				mu.Unlock()
				err = c.Start(ctx, layout, 0)
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	slices.SortFunc(cs, func(a, b *lxctest.Container) int { return strings.Compare(a.Name, b.Name) })
	logf("%d containers cloned and booted (median %s each, services started) in %s", len(cs), median(boots).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	dir, err := os.MkdirTemp("", "lxcaudit")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	audit := func() error {
		cmd := exec.CommandContext(ctx, *bin, "audit", "--netns", "all", "--format", "json") // #nosec G204 G702 -- the binary the operator names
		cmd.Dir = dir                                                                        // no ./bindguard.yaml: the built-in catalogue
		out, err := cmd.Output()
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 1 {
			err = nil // violations found: expected, half the containers are careless
		}
		if err == nil && !strings.Contains(string(out), cs[0].Name) {
			err = fmt.Errorf("the audit does not name %s", cs[0].Name)
		}
		return err
	}
	attachLoop := func() error {
		for _, c := range cs {
			if err := exec.CommandContext(ctx, "lxc-attach", "-n", c.Name, "--", "ss", "-tulnp").Run(); err != nil { // #nosec G204 -- our own containers
				return fmt.Errorf("lxc-attach %s: %w", c.Name, err)
			}
		}
		return nil
	}
	nsenterLoop := func() error {
		for _, c := range cs {
			if err := exec.CommandContext(ctx, "nsenter", "-t", strconv.Itoa(c.InitPID()), "-n", "-m", "-p", "ss", "-tulnp").Run(); err != nil { // #nosec G204 -- our own containers
				return fmt.Errorf("nsenter %s: %w", c.Name, err)
			}
		}
		return nil
	}
	type result struct {
		name string
		med  time.Duration
	}
	var results []result
	for _, m := range []struct {
		name string
		f    func() error
	}{
		{"bindguard audit --netns all --format json", audit},
		{fmt.Sprintf("lxc-attach -n NAME -- ss -tulnp, x%d in turn", len(cs)), attachLoop},
		{fmt.Sprintf("nsenter -t PID -n -m -p ss -tulnp, x%d in turn", len(cs)), nsenterLoop},
	} {
		if err := m.f(); err != nil { // warm-up, and a check that it works
			return fmt.Errorf("%s: %w", m.name, err)
		}
		var ds []time.Duration
		for range *runs {
			t0 := time.Now()
			if err := m.f(); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			ds = append(ds, time.Since(t0))
		}
		results = append(results, result{m.name, median(ds)})
	}
	host, _ := os.Hostname()
	procs, _ := os.ReadDir("/proc")
	fmt.Printf("host %s: %d CPUs, %s/%s, %d containers (%d careless), %d /proc entries; median of %d runs\n",
		host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, len(cs), (len(cs)+1)/2, len(procs), *runs)
	fmt.Printf("%-56s %10s %12s\n", "command", "median ms", "audit / it")
	for _, r := range results {
		fmt.Printf("%-56s %10.1f %12.2f\n", r.name, float64(r.med.Microseconds())/1000, float64(results[0].med)/float64(r.med))
	}
	ratio := float64(results[0].med) / float64(results[1].med)
	verdict := "meets"
	if ratio > 0.25 {
		verdict = "misses"
	}
	fmt.Printf("audit / lxc-attach loop = %.2fx: %s issue 13's target of <= 0.25x\n", ratio, verdict)
	return nil
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
