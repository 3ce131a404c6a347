package policy

import (
	_ "embed"
	"fmt"
	"slices"
	"sync"
)

//go:embed catalogue.yaml
var catalogueYAML []byte

// Category says what kind of service a catalogue entry is.
type Category string

// The catalogue's categories.
const (
	CategoryDatabase       Category = "database"
	CategoryCache          Category = "cache"
	CategoryControl        Category = "control"
	CategoryWeb            Category = "web"
	CategoryMail           Category = "mail"
	CategoryRemoteAccess   Category = "remote-access"
	CategoryInfrastructure Category = "infrastructure"
	CategoryMonitoring     Category = "monitoring"
)

var categories = []Category{CategoryDatabase, CategoryCache, CategoryControl, CategoryWeb, CategoryMail, CategoryRemoteAccess, CategoryInfrastructure, CategoryMonitoring}

// Sensitive reports whether services of this category (databases, caches and brokers, control
// APIs) must never be reachable from outside the host.
func (c Category) Sensitive() bool {
	return c == CategoryDatabase || c == CategoryCache || c == CategoryControl
}

// CatalogueEntry is a well-known service: where it listens, the exposure that is safe for it,
// and its category.
type CatalogueEntry struct {
	Service
	Category Category
}

// Builtin returns the embedded catalogue as a policy (Source "builtin", Format FormatBuiltin):
// well-known services with no fixed address, each with the access class that is safe for it.
// Each call returns a fresh copy.
func Builtin() *Policy {
	p, _ := catalogue()
	c := *p
	c.Networks = slices.Clone(p.Networks)
	c.Services = make([]Service, len(p.Services))
	for i, s := range p.Services {
		c.Services[i] = cloneService(s)
	}
	return &c
}

// Catalogue returns the embedded catalogue's entries, in file order. Each call returns a fresh
// copy.
func Catalogue() []CatalogueEntry {
	_, entries := catalogue()
	out := make([]CatalogueEntry, len(entries))
	for i, e := range entries {
		out[i] = CatalogueEntry{Service: cloneService(e.Service), Category: e.Category}
	}
	return out
}

// LookupCatalogue returns the catalogue entry for a protocol and port.
// It does not parse anything: the catalogue is read once per process.
func LookupCatalogue(proto Protocol, port uint16) (CatalogueEntry, bool) {
	_, entries := catalogue()
	for _, e := range entries {
		if e.Protocol == proto && e.Port == port {
			return CatalogueEntry{Service: cloneService(e.Service), Category: e.Category}, true
		}
	}
	return CatalogueEntry{}, false
}

// catalogue is the embedded catalogue, parsed once. Its values are never handed out: callers
// get copies, so the cache is never mutated after it is built.
var catalogue = sync.OnceValues(parseCatalogue)

// cloneService copies a service's slices, so a caller's changes stay its own.
func cloneService(s Service) Service {
	s.Allow = slices.Clone(s.Allow)
	s.AllowPrefixes = slices.Clone(s.AllowPrefixes)
	return s
}

// parseCatalogue reads the embedded file. It cannot fail at run time: a test loads it, so a
// broken catalogue fails the build's tests, and a panic here is a programming error.
func parseCatalogue() (*Policy, []CatalogueEntry) {
	ps := &problems{file: "builtin catalogue"}
	d := &decoder{ps: ps, catalogue: true}
	root := d.document(catalogueYAML)
	var p *Policy
	var sm *sourceMap
	if root != nil {
		p, sm = d.native(root)
	}
	if p != nil {
		applyDefaults(p, sm)
		validate(ps, p, sm)
	}
	for i, c := range d.categories {
		if !slices.Contains(categories, c) {
			ps.add(p.Services[i].Pos, indexPath("services", i)+".category", "unknown category %q", c)
		}
	}
	if err := ps.err(); err != nil {
		panic(fmt.Sprintf("policy: embedded catalogue is invalid: %v", err))
	}
	p.Source, p.Format = "builtin", FormatBuiltin
	entries := make([]CatalogueEntry, len(p.Services))
	for i, s := range p.Services {
		entries[i] = CatalogueEntry{Service: s, Category: d.categories[i]}
	}
	return p, entries
}
