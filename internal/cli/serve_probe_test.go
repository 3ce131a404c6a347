package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/prometheus/common/model"

	"github.com/bindguard/bindguard/internal/netnstest"
)

// probeServePolicy declares a public web service and a restricted zabbix agent on the server
// (10.81.1.1), and that serve may probe that one host.
const probeServePolicy = `version: 1
services:
  - {name: web, port: 8080, address: "::", access: public}
  - {name: zabbix, port: 10050, address: 0.0.0.0, access: restricted, allow: [10.81.1.9]}
probe:
  - target: 10.81.1.1
`

// TestServeProbe: serve answers /probe for the policy's probe: targets and --probe.target,
// probing from the namespace --probe.from names (serve's own has no route to the server),
// refuses every other host (403, nothing probed), follows a SIGHUP reload of the policy's
// targets, and a real Prometheus configured by the shipped probe-scrape.yml scrapes it: the
// restricted port reached from outside its allow list is a contradiction.
func TestServeProbe(t *testing.T) {
	promBin := netnstest.RequireTool(t, "prometheus", "prometheus")
	server := netnstest.New(t, "pbsrv")
	outside := netnstest.New(t, "pbout") // the vantage --probe.from names
	mon := netnstest.New(t, "pbmon")     // serve and Prometheus, with no route to the server
	netnstest.Connect(t, server, outside, []netip.Prefix{netip.MustParsePrefix("10.81.1.1/24")}, []netip.Prefix{netip.MustParsePrefix("10.81.1.2/24")})
	server.Listen(t, netnstest.MustSpec(t, "tcp:[::]:8080"), netnstest.MustSpec(t, "tcp4:0.0.0.0:10050"))

	dir := t.TempDir()
	pol := filepath.Join(dir, "bindguard.yaml")
	if err := os.WriteFile(pol, []byte(probeServePolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, mon, "--policy", pol, "--data", filepath.Join(dir, "data"), "--interval", "1s",
		"--probe.target", "10.81.1.1=host:udp:53", "--probe.from", filepath.Base(outside.Path), "--probe.netns-dir", filepath.Dir(outside.Path))
	c := nsClient(mon)
	base := "http://127.0.0.1:9847"
	waitFor(t, "serve answers", func() (bool, string) {
		code, body, err := httpGet(c, base+"/health")
		return err == nil && code == 200, fmt.Sprint(code, err, body, d.logs.String())
	})

	code, body, err := httpGet(c, base+"/probe?target=10.81.1.1")
	if err != nil || code != 200 {
		t.Fatalf("/probe of the declared target: %d %v\n%s", code, err, body)
	}
	for _, want := range []string{
		`bindguard_probe_success{scope="host",target="10.81.1.1"} 1`,
		`bindguard_probe_port_contradiction{address="10.81.1.1",port="10050",protocol="tcp",scope="host",service="zabbix",target="10.81.1.1"} 1`,
		`bindguard_probe_port_state{address="10.81.1.1",port="8080",protocol="tcp",scope="host",service="web",state="open",target="10.81.1.1"} 1`,
		// --probe.target's udp:53 is probed too: nothing listens, the kernel refuses.
		`bindguard_probe_undeclared_ports{scope="host",state="closed",target="10.81.1.1"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/probe lacks %s\n%s", want, body)
		}
	}
	for _, q := range []string{"target=10.81.1.3", "target=10.81.1.0/24", "target=example.org", "target=10.81.1.1&scope=nope"} {
		if code, body, _ := httpGet(c, base+"/probe?"+q); code != 403 && code != 400 {
			t.Errorf("/probe?%s: %d, want it refused\n%s", q, code, body)
		}
	}
	if strings.Contains(d.logs.String(), "10.81.1.3") && !strings.Contains(d.logs.String(), "refused an undeclared target") {
		t.Errorf("an undeclared target was probed:\n%s", d.logs.String())
	}

	// A real Prometheus scrapes /probe the multi-target way, with the shipped relabelling.
	shipped, err := os.ReadFile("../../deploy/prometheus/probe-scrape.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer("web1.example.org", "10.81.1.1", "monitor.example.org:9847", "127.0.0.1:9847",
		"scrape_interval: 1m", "scrape_interval: 1s", "scrape_timeout: 30s", "scrape_timeout: 1s").Replace(string(shipped))
	conf := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	prom := exec.Command("nsenter", "--net="+mon.Path, promBin, "--config.file="+conf, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"), // #nosec G204 G702 -- prometheus on our own files
		"--web.listen-address=127.0.0.1:9090")
	var plog syncWriter
	plog.w = new(bytes.Buffer)
	prom.Stdout, prom.Stderr = &plog, &plog
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prom.Process.Signal(syscall.SIGTERM); _ = prom.Wait() })
	query := `bindguard_probe_port_contradiction{job="bindguard-probe",instance="10.81.1.1",service="zabbix",port="10050"}`
	waitFor(t, "Prometheus sees the contradiction through serve's /probe", func() (bool, string) {
		v, err := promValue(c, query)
		return err == nil && v == 1, fmt.Sprint(v, err, plog.String())
	})
	if v, err := promValue(c, `bindguard_probe_port_violation{instance="10.81.1.1",service="web"}`); err != nil || v != 0 {
		t.Errorf("web violation %v %v, want 0", v, err)
	}

	// The policy no longer declares the host in probe: and --probe.target still does: the
	// reloaded policy's targets count at once, the flag's stay.
	if err := os.WriteFile(pol, []byte(strings.Split(probeServePolicy, "probe:")[0]+"probe:\n  - target: 10.81.1.2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reloaded policy's target is answered", func() (bool, string) {
		code, body, err := httpGet(c, base+"/probe?target=10.81.1.2")
		return err == nil && code == 200, fmt.Sprint(code, err, body)
	})
	if code, body, err := httpGet(c, base+"/probe?target=10.81.1.1"); err != nil || code != 200 || !strings.Contains(body, `bindguard_probe_undeclared_ports{scope="host",state="closed",target="10.81.1.1"} 1`) {
		t.Errorf("--probe.target's host after the reload: %d %v\n%s", code, err, body)
	}
}

// promValue asks the Prometheus in the client's namespace for an instant query's one value.
func promValue(c *http.Client, q string) (float64, error) {
	code, body, err := httpGet(c, "http://127.0.0.1:9090/api/v1/query?query="+url.QueryEscape(q))
	if err != nil || code != 200 {
		return 0, fmt.Errorf("query %s: %d %v %s", q, code, err, body)
	}
	var resp struct {
		Data struct {
			Result model.Vector `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		return 0, err
	}
	if len(resp.Data.Result) != 1 {
		return 0, fmt.Errorf("query %s: %d series", q, len(resp.Data.Result))
	}
	return float64(resp.Data.Result[0].Value), nil
}

// TestServeProbeFlags: a bad --probe.target or --probe.from stops serve with a usage error
// naming the flag, before it listens.
func TestServeProbeFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--probe.target", "10.0.0.0/24"}, `--probe.target "10.0.0.0/24": probe: target "10.0.0.0/24" is not one host`},
		{[]string{"--probe.target", "10.0.0.1=nope"}, `--probe.target "10.0.0.1=nope": the policy has no scope "nope"`},
		{[]string{"--probe.target", "10.0.0.1=host:99999"}, `"99999" is not a port`},
		{[]string{"--probe.from", "no-such-ns-here", "--probe.netns-dir", t.TempDir()}, "--probe.from: stat"},
	} {
		args := append([]string{"serve", "--data", t.TempDir(), "--watch", "poll"}, tt.args...)
		_, errs, code := run(t, "", args...)
		if code != 2 || !strings.Contains(errs, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tt.args, code, errs, tt.want)
		}
	}
}
