package scan_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/bindguard/bindguard/internal/scan"
)

// TestSARIFValidatesAgainstSchema validates the SARIF of the corpus against the OASIS SARIF
// 2.1.0 JSON schema (testdata/sarif-schema-2.1.0.json, vendored from its public source) with
// a small draft-04 validator: type, $ref, properties, required, additionalProperties, items,
// minItems, uniqueItems, minimum, maximum, pattern, enum, anyOf and oneOf ("format" is not
// checked).
func TestSARIFValidatesAgainstSchema(t *testing.T) {
	raw, err := os.ReadFile("testdata/sarif-schema-2.1.0.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	res := scanDir(t, "../../testdata/scan", nil)
	var buf bytes.Buffer
	if err := scan.WriteSARIF(&buf, res, "bindguard/scan", "test"); err != nil {
		t.Fatal(err)
	}
	var doc any
	dec := json.NewDecoder(&buf)
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	v := validator{root: schema}
	v.check(schema, doc, "$")
	for _, e := range v.errs {
		t.Error(e)
	}

	// The validator itself must reject what the schema forbids.
	bad := map[string]any{"version": "2.0.0", "runs": []any{map[string]any{"tool": map[string]any{}}}}
	v = validator{root: schema}
	v.check(schema, bad, "$")
	if len(v.errs) < 2 {
		t.Errorf("validator accepted an invalid document: %v", v.errs)
	}

	// Reported findings only; relative URIs; a fingerprint per result.
	runs := doc.(map[string]any)["runs"].([]any)
	run := runs[0].(map[string]any)
	results := run["results"].([]any)
	if len(results) != len(res.Visible(false)) || len(results) == 0 {
		t.Errorf("%d results, want the %d reported findings", len(results), len(res.Visible(false)))
	}
	for _, r := range results {
		r := r.(map[string]any)
		loc := r["locations"].([]any)[0].(map[string]any)["physicalLocation"].(map[string]any)["artifactLocation"].(map[string]any)
		if uri := loc["uri"].(string); strings.HasPrefix(uri, "/") || strings.Contains(uri, "..") {
			t.Errorf("uri %q is not relative to the scanned root", uri)
		}
		if _, ok := r["partialFingerprints"].(map[string]any)["bindguardFinding/v1"]; !ok {
			t.Errorf("result without a fingerprint: %v", r)
		}
	}
	if id := run["automationDetails"].(map[string]any)["id"]; id != "bindguard/scan" {
		t.Errorf("automationDetails.id = %v", id)
	}
}

type validator struct {
	root map[string]any
	errs []string
}

func (v *validator) fail(at, f string, args ...any) {
	if len(v.errs) < 50 {
		v.errs = append(v.errs, at+": "+fmt.Sprintf(f, args...))
	}
}

func (v *validator) resolve(s map[string]any) map[string]any {
	for range 32 {
		ref, ok := s["$ref"].(string)
		if !ok {
			return s
		}
		name, ok := strings.CutPrefix(ref, "#/definitions/")
		if !ok {
			v.fail("schema", "unsupported $ref %q", ref)
			return s
		}
		s = v.root["definitions"].(map[string]any)[name].(map[string]any)
	}
	return s
}

func jsonType(x any) string {
	switch n := x.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number:
		if _, err := n.Int64(); err == nil {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "unknown"
}

func (v *validator) check(s map[string]any, x any, at string) {
	s = v.resolve(s)
	if t, ok := s["type"]; ok {
		got := jsonType(x)
		okType := false
		types := []any{t}
		if l, isList := t.([]any); isList {
			types = l
		}
		for _, want := range types {
			if want == got || (want == "number" && got == "integer") {
				okType = true
			}
		}
		if !okType {
			v.fail(at, "type %s, want %v", got, t)
			return
		}
	}
	if e, ok := s["enum"].([]any); ok {
		found := false
		for _, w := range e {
			if reflect.DeepEqual(w, x) {
				found = true
			}
		}
		if !found {
			v.fail(at, "%v not in %v", x, e)
		}
	}
	for _, key := range []string{"anyOf", "oneOf"} {
		alts, ok := s[key].([]any)
		if !ok {
			continue
		}
		n := 0
		for _, a := range alts {
			sub := validator{root: v.root}
			sub.check(a.(map[string]any), x, at)
			if len(sub.errs) == 0 {
				n++
			}
		}
		if n == 0 || (key == "oneOf" && n != 1) {
			v.fail(at, "%s: %d alternatives match", key, n)
		}
	}
	switch x := x.(type) {
	case string:
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(x) {
			v.fail(at, "%q does not match %s", x, p)
		}
	case json.Number:
		f, _ := x.Float64()
		if m, ok := s["minimum"].(float64); ok && f < m {
			v.fail(at, "%v < minimum %v", f, m)
		}
		if m, ok := s["maximum"].(float64); ok && f > m {
			v.fail(at, "%v > maximum %v", f, m)
		}
	case []any:
		if m, ok := s["minItems"].(float64); ok && float64(len(x)) < m {
			v.fail(at, "%d items < minItems %v", len(x), m)
		}
		if u, _ := s["uniqueItems"].(bool); u {
			for i := range x {
				for j := i + 1; j < len(x); j++ {
					if reflect.DeepEqual(x[i], x[j]) {
						v.fail(at, "items %d and %d are equal", i, j)
					}
				}
			}
		}
		if it, ok := s["items"].(map[string]any); ok {
			for i, e := range x {
				v.check(it, e, fmt.Sprintf("%s[%d]", at, i))
			}
		}
	case map[string]any:
		for _, r := range asList(s["required"]) {
			if _, ok := x[r.(string)]; !ok {
				v.fail(at, "missing required %q", r)
			}
		}
		props, _ := s["properties"].(map[string]any)
		for k, val := range x {
			if ps, ok := props[k].(map[string]any); ok {
				v.check(ps, val, at+"."+k)
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					v.fail(at, "property %q not allowed", k)
				}
			case map[string]any:
				v.check(ap, val, at+"."+k)
			}
		}
	}
}

func asList(x any) []any {
	l, _ := x.([]any)
	return l
}

// TestSARIFURIEscaped: a file name with a space, "#", "%", "?", ":" or a newline is written
// as a relative URI reference that resolves to it.
func TestSARIFURIEscaped(t *testing.T) {
	dir := t.TempDir()
	name := "a b#c%d?e:f\n.go"
	src := "package main\n\nimport \"net\"\n\nfunc f() { _, _ = net.Listen(\"tcp\", \":81\") }\n"
	if err := os.WriteFile(dir+"/"+name, []byte(src), 0o600); err != nil {
		t.Skipf("this file system refuses the name: %v", err)
	}
	res := scanDir(t, dir, nil)
	var buf bytes.Buffer
	if err := scan.WriteSARIF(&buf, res, "bindguard/scan", "test"); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Runs []struct {
			Results []struct {
				Locations []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string } `json:"artifactLocation"`
					} `json:"physicalLocation"`
				} `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Runs) != 1 || len(doc.Runs[0].Results) != 1 {
		t.Fatalf("want one result: %s", buf.String())
	}
	uri := doc.Runs[0].Results[0].Locations[0].PhysicalLocation.ArtifactLocation.URI
	base, _ := url.Parse("file:///src/")
	ref, err := url.Parse(uri)
	if err != nil {
		t.Fatalf("uri %q: %v", uri, err)
	}
	if got := base.ResolveReference(ref); got.Path != "/src/"+name || ref.Scheme != "" || ref.RawQuery != "" || ref.Fragment != "" {
		t.Errorf("uri %q resolves to %q (scheme %q, query %q, fragment %q), want /src/%q", uri, got.Path, ref.Scheme, ref.RawQuery, ref.Fragment, name)
	}
}
