package report

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"

	"github.com/bindguard/bindguard/policy"
)

// SchemaPolicy names the version of the policy view, `bindguard policy show --format json`.
const SchemaPolicy = "bindguard.policy.v1"

// PolicyDoc is the JSON view of a policy (schema bindguard.policy.v1): its binding matrix.
// Fields are only ever added within a schema version.
type PolicyDoc struct {
	Schema         string          `json:"schema"`
	Source         string          `json:"source"`
	Format         policy.Format   `json:"format"`
	TrustedProxies []string        `json:"trusted_proxies"`
	ClientIPHeader string          `json:"client_ip_header"`
	Networks       []PolicyNetwork `json:"networks"`
	Services       []PolicyService `json:"services"`
	// Scopes are the policy's named scopes, in file order; Services are the host scope's.
	Scopes []PolicyScope `json:"scopes"`
}

// PolicyScope is a named scope: the namespaces it matches and their services.
type PolicyScope struct {
	Name     string          `json:"name"`
	Match    []string        `json:"match"`
	Services []PolicyService `json:"services"`
}

// PolicyNetwork is a named network of the policy.
type PolicyNetwork struct {
	Name     string   `json:"name"`
	Prefixes []string `json:"prefixes"`
}

// PolicyService is one declared service; Address is null when none is declared.
type PolicyService struct {
	Name        string          `json:"name"`
	Protocol    policy.Protocol `json:"protocol"`
	Address     *string         `json:"address"`
	V6Only      bool            `json:"v6only"`
	Port        uint16          `json:"port"`
	Access      policy.Access   `json:"access"`
	Allow       []string        `json:"allow"`
	HostCheck   bool            `json:"host_check"`
	Process     string          `json:"process,omitempty"`
	Description string          `json:"description,omitempty"`
}

// PrefixStrings writes prefixes in their canonical form.
func PrefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// NewPolicyDoc is the view of a policy.
func NewPolicyDoc(p *policy.Policy) PolicyDoc {
	v := PolicyDoc{
		Schema: SchemaPolicy, Source: p.Source, Format: p.Format,
		TrustedProxies: zonedStrings(PrefixStrings(p.TrustedProxies), p.TrustedZoned), ClientIPHeader: p.ClientIPHeader,
		Networks: []PolicyNetwork{},
	}
	for _, n := range p.Networks {
		v.Networks = append(v.Networks, PolicyNetwork{Name: n.Name, Prefixes: PrefixStrings(n.Prefixes)})
	}
	v.Services = policyServices(p.Services)
	v.Scopes = []PolicyScope{}
	for _, sc := range p.Scopes {
		v.Scopes = append(v.Scopes, PolicyScope{Name: sc.Name, Match: append([]string{}, sc.Match...), Services: policyServices(sc.Services)})
	}
	return v
}

func policyServices(svcs []policy.Service) []PolicyService {
	out := []PolicyService{}
	for _, s := range svcs {
		sv := PolicyService{
			Name: s.Name, Protocol: s.Protocol, V6Only: s.V6Only, Port: s.Port, Access: s.Access,
			Allow: zonedStrings(PrefixStrings(s.AllowPrefixes), s.AllowZoned), HostCheck: s.HostCheck, Process: s.Process, Description: s.Description,
		}
		if s.Address.IsValid() {
			a := s.Address.String()
			sv.Address = &a
		}
		out = append(out, sv)
	}
	return out
}

// Encode writes the view as two-space indented JSON.
func (v PolicyDoc) Encode(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// DecodePolicyDoc reads a policy view and checks its schema.
func DecodePolicyDoc(r io.Reader) (*PolicyDoc, error) {
	var v PolicyDoc
	if err := json.NewDecoder(r).Decode(&v); err != nil {
		return nil, err
	}
	if v.Schema != SchemaPolicy {
		return nil, fmt.Errorf("schema %q, want %s", v.Schema, SchemaPolicy)
	}
	return &v, nil
}

// zonedStrings appends zoned entries (fe80::1%eth0) to prefix strings.
func zonedStrings(out []string, zs []policy.ZonedPrefix) []string {
	for _, z := range zs {
		out = append(out, z.String())
	}
	return out
}
