package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bindguard/bindguard/internal/audit"
	"github.com/bindguard/bindguard/internal/observed"
)

func ptr[T any](v T) *T { return &v }

// checkFinding fails unless appendFinding writes f exactly as json.MarshalIndent does.
func checkFinding(t *testing.T, f *FindingV2) {
	t.Helper()
	want, err := json.MarshalIndent(f, "    ", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if got := appendFinding(nil, &f.Finding, f.Netns); !bytes.Equal(got, want) {
		t.Fatalf("appendFinding:\n%s\nencoding/json:\n%s", got, want)
	}
}

func TestFindingJSONMatches(t *testing.T) {
	full := &FindingV2{
		Finding: audit.Finding{
			Status: audit.Invalid, Severity: audit.Critical, Service: ptr("redis"), Protocol: "tcp",
			Expected: &audit.Expected{Address: "127.0.0.1", Port: 6379, Access: "localhost_only"},
			Actual: &audit.Actual{Address: "::", Port: 65535, Family: "ipv6", V6Only: ptr(true), Exposure: audit.ExposureWildcardV6, Netns: "ct<1>",
				Process: &observed.Process{PID: 1 << 30, Name: "redis-server", Exe: "/usr/bin/redis-server", User: "redis", Group: "redis",
					ContainerPID: 7, ContainerUID: ptr(-1), Unit: "redis.service", Container: "web"}},
			Reason: "a \"reason\" with \\ & <script> \u2028 \u2029 \x00\x1f\x7f \t\n\r\b\f é \xff\xfe end",
		},
		Netns: "web1",
	}
	cases := map[string]*FindingV2{
		"full":             full,
		"nothing":          {},
		"missing":          {Finding: audit.Finding{Status: audit.Missing, Severity: audit.Medium, Service: ptr(""), Expected: &audit.Expected{}}},
		"no process":       {Finding: audit.Finding{Status: audit.Unexpected, Severity: audit.Low, Actual: &audit.Actual{V6Only: ptr(false)}}},
		"empty process":    {Finding: audit.Finding{Actual: &audit.Actual{Process: &observed.Process{}}}},
		"negative pid":     {Finding: audit.Finding{Actual: &audit.Actual{Process: &observed.Process{PID: -5, ContainerPID: -1, ContainerUID: ptr(0)}}}},
		"unknown severity": {Finding: audit.Finding{Severity: audit.Severity(99)}},
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) { checkFinding(t, f) })
	}
}

// FuzzFindingJSON: any text in any string field is written as encoding/json writes it.
func FuzzFindingJSON(f *testing.F) {
	f.Add("redis", "0.0.0.0", "redis-server", "listens on <all> & \u2028", uint16(6379), 42, true)
	f.Add("", "", "\xff", "\x00\"\\", uint16(0), 0, false)
	f.Fuzz(func(t *testing.T, svc, addr, name, reason string, port uint16, pid int, v6 bool) {
		checkFinding(t, &FindingV2{
			Finding: audit.Finding{
				Status: audit.Status(name), Severity: audit.High, Service: &svc, Protocol: "udp",
				Expected: &audit.Expected{Address: addr, Port: port, Access: "lan"},
				Actual: &audit.Actual{Address: addr, Port: port, Family: observed.Family(svc), V6Only: &v6, Exposure: audit.Exposure(reason), Netns: svc,
					Process: &observed.Process{PID: pid, Name: name, Exe: reason, User: svc, Group: name, ContainerPID: pid / 2, Unit: addr, Container: reason}},
				Reason: reason,
			},
			Netns: name,
		})
	})
}

// jsonFields lists the JSON names of t's encoded fields, embedded structs flattened.
func jsonFields(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		if f.Anonymous && tag == "" {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		out = append(out, strings.Split(tag, ",")[0])
	}
	return out
}

// TestFindingJSONFields fails when a field is added to, removed from or renamed in the types
// appendFinding writes by hand: update it (and TestFindingJSONMatches) with the type.
func TestFindingJSONFields(t *testing.T) {
	for typ, want := range map[reflect.Type][]string{
		reflect.TypeFor[FindingV2]():        {"status", "severity", "service", "protocol", "expected", "actual", "reason", "netns"},
		reflect.TypeFor[audit.Expected]():   {"address", "port", "access"},
		reflect.TypeFor[audit.Actual]():     {"address", "port", "family", "v6only", "exposure", "netns", "process"},
		reflect.TypeFor[observed.Process](): {"pid", "name", "exe", "user", "group", "container_pid", "container_uid", "unit", "container"},
	} {
		if got := jsonFields(typ); !slices.Equal(got, want) {
			t.Errorf("%s encodes %q; appendFinding writes %q", typ, got, want)
		}
	}
}

// TestJSONChunksMatch: the v2 document of many findings, encoded in chunks by several
// workers (and by one), is byte for byte what writeDocument writes of NewDocumentV2's
// document, and that is json.MarshalIndent's.
func TestJSONChunksMatch(t *testing.T) {
	m := Meta{Host: "h", Time: time.Unix(0, 0), Warnings: []string{"w"}}
	for _, n := range []int{0, 1, findingChunk - 1, findingChunk, findingChunk + 1, 9*findingChunk + 7} {
		r := bigReport(n)
		for i := range r.Findings {
			r.Findings[i].Netns = fmt.Sprintf("ns%d", i%3)
		}
		// what JSON wrote before it encoded in chunks: the findings copied as FindingV2
		doc := NewDocumentV2(m, r)
		findings := doc.Findings
		doc.Findings = nil
		var ref bytes.Buffer
		if err := writeDocument(&ref, doc, len(findings), func(k int) any { return &findings[k] }); err != nil {
			t.Fatal(err)
		}
		want := ref.Bytes()
		if n > 0 { // with none, JSON writes [] where encoding/json writes null
			std, err := json.MarshalIndent(NewDocumentV2(m, r), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			if std = append(std, '\n'); !bytes.Equal(std, want) {
				t.Fatalf("%d findings: writeDocument differs from encoding/json's document", n)
			}
		}
		for _, procs := range []int{1, 2, 8} {
			old := runtime.GOMAXPROCS(procs)
			var b bytes.Buffer
			err := JSON(&b, m, r)
			runtime.GOMAXPROCS(old)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Fatalf("%d findings, GOMAXPROCS %d: JSON differs from writeDocument's (%d bytes, want %d)", n, procs, b.Len(), len(want))
			}
		}
	}
}
