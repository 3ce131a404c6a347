package prometheus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bindguard/bindguard/internal/netnstest"
	"github.com/bindguard/bindguard/internal/probe"
	"github.com/bindguard/bindguard/policy"
)

const scrapePolicy = `version: 1
services:
  - {name: web, port: 8080, address: "::", access: public}
  - {name: zabbix, port: 10050, address: 0.0.0.0, access: restricted, allow: [10.80.1.9]}
`

// TestProbeScrape: a real Prometheus, configured by the shipped probe-scrape.yml (its target
// and serve's address replaced), scrapes /probe, which probes a server namespace from an
// outside namespace; the restricted port reached from outside shows up as a contradiction
// series with the relabelled instance.
func TestProbeScrape(t *testing.T) {
	promBin := netnstest.RequireTool(t, "prometheus", "prometheus")
	server := netnstest.New(t, "scsrv")
	outside := netnstest.New(t, "scout")
	netnstest.Connect(t, server, outside, []netip.Prefix{netip.MustParsePrefix("10.80.1.1/24")}, []netip.Prefix{netip.MustParsePrefix("10.80.1.2/24")})
	for _, s := range []string{"tcp:[::]:8080", "tcp4:0.0.0.0:10050"} {
		sp, err := netnstest.ParseSpec(s)
		if err != nil {
			t.Fatal(err)
		}
		server.Listen(t, sp)
	}
	pol, err := policy.Parse("p.yaml", []byte(scrapePolicy))
	if err != nil {
		t.Fatal(err)
	}
	h, err := probe.NewHandler(probe.HandlerOptions{
		Policy: func() *policy.Policy { return pol }, Targets: []probe.Target{{Host: "10.80.1.1"}},
		Netns: outside.Path, Timeout: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /probe", h)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	shipped, err := os.ReadFile("probe-scrape.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer("web1.example.org", "10.80.1.1", "monitor.example.org:9847", strings.TrimPrefix(srv.URL, "http://"),
		"scrape_interval: 1m", "scrape_interval: 1s", "scrape_timeout: 30s", "scrape_timeout: 1s").Replace(string(shipped))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	cmd := exec.Command(promBin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:"+port) // #nosec G204 -- the Debian binary on our own config
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	query := `bindguard_probe_port_contradiction{job="bindguard-probe",instance="10.80.1.1",service="zabbix",port="10050"}`
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for {
		v, err := queryValue(ctx, port, query)
		if err == nil && v == "1" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("Prometheus never saw %s (last: %q, %v)\n%s", query, v, err, logs.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
	if v, err := queryValue(ctx, port, `bindguard_probe_port_violation{instance="10.80.1.1",service="web"}`); err != nil || v != "0" {
		t.Errorf("web violation %q %v, want 0", v, err)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

// queryValue asks Prometheus's API for an instant query's one value.
func queryValue(ctx context.Context, port, q string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+port+"/api/v1/query?query="+url.QueryEscape(q), nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	var r struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return "", err
	}
	if len(r.Data.Result) != 1 {
		return "", fmt.Errorf("%d series", len(r.Data.Result))
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	return s, nil
}
