package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bindguard/bindguard/internal/monitor"
)

// TestInitCreatesDirectory: `init -o /etc/bindguard/bindguard.yaml`, the help's own example,
// works on a host without the directory.
func TestInitCreatesDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "etc", "bindguard", "bindguard.yaml")
	if _, errOut, code := runAt(t, append([]string{"init", "-o", path}, fixtureArgs("basic")...)...); code != 0 {
		t.Fatalf("init -o into a missing directory: exit %d: %s", code, errOut)
	}
	fi, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got&^0o755 != 0 || !fi.IsDir() {
		t.Errorf("directory mode %v, want a directory of at most 0755", fi.Mode())
	}
	data, err := os.ReadFile(path)
	if err != nil || !bytes.Contains(data, []byte("version: 1")) {
		t.Fatalf("policy not written: %v %q", err, data)
	}
}

// TestEventsTableAddresses: IPv6 in brackets, as everywhere else.
func TestEventsTableAddresses(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	events := []monitor.Event{
		{ID: 1, Time: at, Kind: "appeared", Protocol: "tcp", Address: "::", Port: 22},
		{ID: 2, Time: at, Kind: "appeared", Protocol: "tcp", Address: "0.0.0.0", Port: 22},
		{ID: 3, Time: at, Kind: "appeared", Protocol: "udp", Address: "2001:db8::1", Port: 53},
	}
	var b bytes.Buffer
	if err := eventsTable(&b, events, at); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"tcp [::]:22", "tcp 0.0.0.0:22", "udp [2001:db8::1]:53"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), ":::22") {
		t.Errorf("unbracketed IPv6:\n%s", b.String())
	}
}
