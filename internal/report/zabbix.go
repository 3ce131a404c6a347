package report

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/bindguard/bindguard/internal/audit"
)

// The Zabbix key scheme. Every Zabbix key bindguard writes or answers is made here, for
// `audit --format zabbix` (zabbix_sender input), `gen zabbix` (UserParameters and template),
// `zabbix get` and the monitor's /api/v1/zabbix. With PREFIX (DefaultZabbixPrefix unless
// given) the items are the seed's:
//
//	PREFIX.port.bindings[valid|invalid|missing|unexpected]  findings by status
//	PREFIX.service.binding[SERVICE]                         1 when SERVICE is bound as the policy says, else 0
//	PREFIX.binding.security.score                           the score, 0-100
//	PREFIX.service.discovery                                low-level discovery of the declared services
//	PREFIX.namespace.discovery                              low-level discovery of the audited network namespaces
//	PREFIX.namespace.score[NETNS]                           one namespace's score, 0-100
//
// SERVICE, in keys and in the discovery macro {#SERVICE}, is the policy's service name with
// "-" written "_", as the seed writes it (SeedServiceName); `zabbix get` accepts either
// spelling. Values are decimal integers, and the discovery value is a JSON array of objects
// with the macros {#SERVICE}, {#PROTOCOL} and {#PORT}. The namespace discovery's rows have
// {#NETNS} (the namespace's label in key form, ZabbixNetns), {#LABEL}, {#CONTAINER} and
// {#SCOPE}. The score is the host's (the lowest of its namespaces'), as in every format.

// DefaultZabbixPrefix starts every item key unless a prefix is given (the seed's is
// aktienanalyse).
const DefaultZabbixPrefix = "bindguard"

// SchemaZabbix names the version of ZabbixDoc, the monitor's /api/v1/zabbix document.
const SchemaZabbix = "bindguard.zabbix.v1"

// The low-level discovery macros of a discovered service.
const (
	ZabbixMacroService  = "{#SERVICE}"
	ZabbixMacroProtocol = "{#PROTOCOL}"
	ZabbixMacroPort     = "{#PORT}"
	ZabbixMacroNetns    = "{#NETNS}"
	ZabbixMacroScope    = "{#SCOPE}"
)

var zabbixPrefixRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[a-z][a-z0-9_]{0,30}(\.[a-z][a-z0-9_]{0,30}){0,3}$`)
})

// ZabbixKeys makes the item keys of one prefix.
type ZabbixKeys struct{ Prefix string }

// NewZabbixKeys checks a prefix ("" is DefaultZabbixPrefix): lower-case words joined by dots.
func NewZabbixKeys(prefix string) (ZabbixKeys, error) {
	if prefix == "" {
		prefix = DefaultZabbixPrefix
	}
	if !zabbixPrefixRE().MatchString(prefix) {
		return ZabbixKeys{}, fmt.Errorf("--prefix %q: want lower-case words joined by dots, such as %s or aktienanalyse", prefix, DefaultZabbixPrefix)
	}
	return ZabbixKeys{Prefix: prefix}, nil
}

// ZabbixStatuses are the parameters of PortBindings, in the seed's order.
func ZabbixStatuses() []string {
	return []string{string(audit.Valid), string(audit.Invalid), string(audit.Missing), string(audit.Unexpected)}
}

// PortBindings is the key of the count of findings with a status; "*" gives the UserParameter's.
func (k ZabbixKeys) PortBindings(status string) string {
	return k.Prefix + ".port.bindings[" + status + "]"
}

// ServiceBinding is the key of a service's compliance; "*" gives the UserParameter's.
func (k ZabbixKeys) ServiceBinding(service string) string {
	return k.Prefix + ".service.binding[" + service + "]"
}

// ServicePrototype is the discovery rule's item prototype key.
func (k ZabbixKeys) ServicePrototype() string { return k.ServiceBinding(ZabbixMacroService) }

// MacroService is the discovery macro of a service's name, for templates.
func (ZabbixKeys) MacroService() string { return ZabbixMacroService }

// Score is the key of the audit score.
func (k ZabbixKeys) Score() string { return k.Prefix + ".binding.security.score" }

// Discovery is the key of the low-level discovery of the declared services.
func (k ZabbixKeys) Discovery() string { return k.Prefix + ".service.discovery" }

// NamespaceDiscovery is the key of the low-level discovery of the audited namespaces.
func (k ZabbixKeys) NamespaceDiscovery() string { return k.Prefix + ".namespace.discovery" }

// NamespaceScore is the key of one namespace's score (the label in key form, ZabbixNetns);
// "*" gives the UserParameter's.
func (k ZabbixKeys) NamespaceScore(netns string) string {
	return k.Prefix + ".namespace.score[" + netns + "]"
}

// NamespacePrototype is the namespace discovery rule's item prototype key.
func (k ZabbixKeys) NamespacePrototype() string { return k.NamespaceScore(ZabbixMacroNetns) }

// MacroNetns is the discovery macro of a namespace, for templates.
func (ZabbixKeys) MacroNetns() string { return ZabbixMacroNetns }

// MacroScope is the discovery macro of a namespace's scope, for templates.
func (ZabbixKeys) MacroScope() string { return ZabbixMacroScope }

// ZabbixNetns is a namespace's label in key form: every character but letters, digits, "_",
// "-" and "." written "_" ("net:[4026532201]" is "net__4026532201_"), so that it is a key
// parameter and a hash field without quoting.
func ZabbixNetns(label string) string {
	b := []byte(label)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
		if !ok {
			b[i] = '_'
		}
	}
	return string(b)
}

// NamespaceScoreField is the hash field of a namespace's score: netns_<NETNS>_score.
func NamespaceScoreField(label string) string { return "netns_" + ZabbixNetns(label) + "_score" }

// NamespaceStatusField is the hash field of a namespace's count of a status:
// netns_<NETNS>_port_bindings_<status>.
func NamespaceStatusField(label, status string) string {
	return "netns_" + ZabbixNetns(label) + "_" + fieldStatusPrefix + status
}

// Statuses are ZabbixStatuses, for templates.
func (ZabbixKeys) Statuses() []string { return ZabbixStatuses() }

// SeedServiceName is a service's name as the seed writes it in keys and hash fields: "-"
// becomes "_".
func SeedServiceName(name string) string { return strings.ReplaceAll(name, "-", "_") }

// ServiceField is the seed's hash field for a service: service_binding_correct_<name>.
func ServiceField(name string) string { return "service_binding_correct_" + SeedServiceName(name) }

// The seed's hash fields for the counts and the score.
const (
	fieldScore        = "port_binding_security_score"
	fieldStatusPrefix = "port_bindings_"
)

// fieldComplete is the hash field that says the audit saw everything (1) or not (0).
const fieldComplete = "audit_complete"

// SeedFields are the seed's zabbix:port_bindings fields for a report, for the host: counts by
// status over every namespace (port_bindings_<status>), the host's score
// (port_binding_security_score), and service_binding_correct_<service> (1 when the declared
// service is compliant in the primary namespace, else 0); then bindguard's own: per namespace
// its score (netns_<NETNS>_score) and counts (netns_<NETNS>_port_bindings_<status>), and
// audit_complete (1 or 0).
func SeedFields(rep *audit.Report) map[string]int {
	f := map[string]int{fieldScore: rep.Score}
	for _, st := range audit.Statuses() {
		f[fieldStatusPrefix+string(st)] = rep.Summary.Count(st)
	}
	for _, s := range rep.Services {
		v := 0
		if s.Compliant {
			v = 1
		}
		f[ServiceField(s.Name)] = v
	}
	for _, n := range rep.Namespaces {
		f[NamespaceScoreField(n.Label)] = n.Score
		for _, st := range audit.Statuses() {
			f[NamespaceStatusField(n.Label, string(st))] = n.Summary.Count(st)
		}
	}
	c := 0
	if rep.Complete {
		c = 1
	}
	f[fieldComplete] = c
	return f
}

// ZabbixNamespace is one discovered namespace: a row of the namespace discovery value.
type ZabbixNamespace struct {
	Netns     string `json:"{#NETNS}"`
	Label     string `json:"{#LABEL}"`
	Container string `json:"{#CONTAINER}"`
	Scope     string `json:"{#SCOPE}"`
}

// ZabbixService is one discovered service: a row of the discovery value.
type ZabbixService struct {
	Service  string `json:"{#SERVICE}"`
	Protocol string `json:"{#PROTOCOL},omitempty"`
	Port     uint16 `json:"{#PORT},omitempty"`
}

// ZabbixDoc is the document of /api/v1/zabbix (schema bindguard.zabbix.v1): the seed's
// zabbix:port_bindings fields, the policy's service names and the discovery rows, from which
// `bindguard zabbix get` answers every key. Fields are only ever added within a schema version.
type ZabbixDoc struct {
	Schema   string         `json:"schema"`
	Fields   map[string]int `json:"fields"`
	Services []string       `json:"services"`
	// Discovery was added within v1: a document without it discovers Services by name only.
	Discovery []ZabbixService `json:"discovery,omitempty"`
	// Namespaces was added within v1: the audited namespaces (none in an older document).
	Namespaces []ZabbixNamespace `json:"namespaces,omitempty"`
}

// NewZabbixDoc is the Zabbix document of a report.
func NewZabbixDoc(r *audit.Report) ZabbixDoc {
	d := ZabbixDoc{Schema: SchemaZabbix, Fields: SeedFields(r), Services: []string{}, Discovery: []ZabbixService{}}
	for _, s := range r.Services {
		d.Services = append(d.Services, s.Name)
		d.Discovery = append(d.Discovery, ZabbixService{Service: SeedServiceName(s.Name), Protocol: string(s.Protocol), Port: s.Port})
	}
	seen := map[string]bool{}
	for _, n := range r.Namespaces {
		if k := ZabbixNetns(n.Label); !seen[k] {
			seen[k] = true
			d.Namespaces = append(d.Namespaces, ZabbixNamespace{Netns: k, Label: n.Label, Container: n.Container, Scope: n.Scope})
		}
	}
	return d
}

// Encode writes the document as one line of JSON.
func (d ZabbixDoc) Encode(w io.Writer) error { return json.NewEncoder(w).Encode(d) }

// DecodeZabbixDoc reads a ZabbixDoc and checks its schema.
func DecodeZabbixDoc(r io.Reader) (*ZabbixDoc, error) {
	var d ZabbixDoc
	if err := json.NewDecoder(r).Decode(&d); err != nil {
		return nil, err
	}
	if d.Schema != SchemaZabbix {
		return nil, fmt.Errorf("schema %q, want %s", d.Schema, SchemaZabbix)
	}
	return &d, nil
}

// ZabbixItem is one item key and its value.
type ZabbixItem struct{ Key, Value string }

func (d *ZabbixDoc) discovery() []ZabbixService {
	if len(d.Discovery) > 0 {
		return d.Discovery
	}
	rows := make([]ZabbixService, 0, len(d.Services))
	for _, s := range d.Services {
		rows = append(rows, ZabbixService{Service: SeedServiceName(s)})
	}
	return rows
}

// Items are every item of the document under k: the discovery, the score, the counts by
// status, each service's compliance, then the namespace discovery and each namespace's score,
// in that order. An item whose field the document lacks is left out.
func (d *ZabbixDoc) Items(k ZabbixKeys) ([]ZabbixItem, error) {
	rows := d.discovery()
	disc, err := json.Marshal(rows)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	items := []ZabbixItem{{k.Discovery(), string(disc)}}
	add := func(key, field string) {
		if v, ok := d.Fields[field]; ok {
			items = append(items, ZabbixItem{key, strconv.Itoa(v)})
		}
	}
	add(k.Score(), fieldScore)
	for _, st := range audit.Statuses() {
		add(k.PortBindings(string(st)), fieldStatusPrefix+string(st))
	}
	for _, s := range rows {
		add(k.ServiceBinding(s.Service), ServiceField(s.Service))
	}
	nss := nonNil(d.Namespaces)
	nsDisc, err := json.Marshal(nss)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	items = append(items, ZabbixItem{k.NamespaceDiscovery(), string(nsDisc)})
	for _, n := range nss {
		add(k.NamespaceScore(n.Netns), NamespaceScoreField(n.Netns))
	}
	return items, nil
}

// Value answers one item key, as `bindguard zabbix get` does: exactly the value Items gives
// for it. A service may be named as the policy spells it or with "-" written "_", and a
// parameter may be quoted. An unknown key, status or service is an error, never a made-up 0.
func (d *ZabbixDoc) Value(k ZabbixKeys, key string) (string, error) {
	items, err := d.Items(k)
	if err != nil {
		return "", err
	}
	find := func(key string) (string, error) {
		for _, it := range items {
			if it.Key == key {
				return it.Value, nil
			}
		}
		return "", fmt.Errorf("%s: bindguard serve's document has no value for it", key)
	}
	switch {
	case key == k.Score() || key == k.Discovery() || key == k.NamespaceDiscovery():
		return find(key)
	}
	if arg, ok := zabbixParam(key, k.NamespaceScore("")); ok {
		if v, err := find(k.NamespaceScore(ZabbixNetns(arg))); err == nil {
			return v, nil
		}
		return "", fmt.Errorf("%s: no network namespace %q was audited", key, arg)
	}
	if arg, ok := zabbixParam(key, k.PortBindings("")); ok {
		if !slices.Contains(ZabbixStatuses(), arg) {
			return "", fmt.Errorf("%s: want %s", key, strings.Join(ZabbixStatuses(), ", "))
		}
		return find(k.PortBindings(arg))
	}
	if arg, ok := zabbixParam(key, k.ServiceBinding("")); ok {
		if v, err := find(k.ServiceBinding(SeedServiceName(arg))); err == nil {
			return v, nil
		}
		return "", fmt.Errorf("%s: the policy declares no service %q", key, arg)
	}
	return "", fmt.Errorf("unknown item key %q (prefix %q): see bindguard zabbix get --help", key, k.Prefix)
}

// zabbixParam is the one parameter of key, given the key with an empty parameter ("P.x[]"),
// without the quotes Zabbix allows around it.
func zabbixParam(key, empty string) (string, bool) {
	head := strings.TrimSuffix(empty, "]")
	arg, ok := strings.CutPrefix(key, head)
	if !ok {
		return "", false
	}
	arg, ok = strings.CutSuffix(arg, "]")
	if !ok || strings.ContainsAny(arg, "[],") {
		return "", false
	}
	if len(arg) >= 2 && arg[0] == '"' && arg[len(arg)-1] == '"' {
		arg = arg[1 : len(arg)-1]
	}
	return arg, true
}

// Zabbix writes the report as zabbix_sender input (`zabbix_sender -z SERVER -i FILE`): one
// "host key value" line per item of the key scheme above under m.ZabbixPrefix, host "-" (the
// sender's configured Hostname); the same keys and values `bindguard zabbix get` answers.
func Zabbix(w io.Writer, m Meta, r *audit.Report) error {
	k, err := NewZabbixKeys(m.ZabbixPrefix)
	if err != nil {
		return err
	}
	doc := NewZabbixDoc(r)
	items, err := doc.Items(k)
	if err != nil {
		return err
	}
	ew := &errWriter{w: w}
	for _, it := range items {
		ew.printf("- %s %s\n", zabbixQuote(it.Key), zabbixQuote(it.Value))
	}
	return ew.err
}

// zabbixQuote quotes a zabbix_sender input field when it holds a space, a quote or a
// backslash, escaping the quote and the backslash as zabbix_sender expects.
func zabbixQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\"\\") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}
