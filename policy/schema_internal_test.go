package policy

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSchemaMatchesDecoder keeps the JSON Schema's field lists in step with what the decoder
// accepts.
func TestSchemaMatchesDecoder(t *testing.T) {
	var s struct {
		Properties map[string]json.RawMessage `json:"properties"`
		Defs       struct {
			Service struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"service"`
			Scope struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"scope"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(Schema(), &s); err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	keys := func(m map[string]json.RawMessage) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	sorted := func(in []string) []string { out := slices.Clone(in); slices.Sort(out); return out }
	if diff := cmp.Diff(sorted(nativeKeys), keys(s.Properties)); diff != "" {
		t.Errorf("top-level fields (-decoder +schema):\n%s", diff)
	}
	if diff := cmp.Diff(sorted(serviceKeys), keys(s.Defs.Service.Properties)); diff != "" {
		t.Errorf("service fields (-decoder +schema):\n%s", diff)
	}
	if diff := cmp.Diff(sorted(scopeKeys), keys(s.Defs.Scope.Properties)); diff != "" {
		t.Errorf("scope fields (-decoder +schema):\n%s", diff)
	}
}
