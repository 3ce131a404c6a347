// Package zabbix writes the Zabbix agent side of bindguard: a UserParameter file with the
// seed's keys (PREFIX.port.bindings[*], PREFIX.service.binding[*],
// PREFIX.binding.security.score; PREFIX is bindguard unless given, the seed's aktienanalyse;
// the key scheme is report.ZabbixKeys) answered by
// `bindguard zabbix get`, plus a low-level discovery key for the policy's services, and a
// Zabbix 6.0 template with the items, the discovery rule and triggers.
package zabbix

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"text/template"

	"github.com/bindguard/bindguard/internal/report"
)

// Files Generate writes.
const (
	UserParamsFile = "bindguard.conf"
	TemplateFile   = "bindguard_template.yaml"
)

var (
	//go:embed userparams.tmpl
	userParamsText string
	//go:embed template.yaml.tmpl
	templateText string

	funcs = template.FuncMap{"uuid": uuid}

	userParamsTmpl = sync.OnceValue(func() *template.Template {
		return template.Must(template.New("userparams").Funcs(funcs).Parse(userParamsText))
	})
	templateTmpl = sync.OnceValue(func() *template.Template {
		return template.Must(template.New("template").Funcs(funcs).Parse(templateText))
	})

	pathRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^/[A-Za-z0-9._/+-]+$`) })
	urlRE  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^https?://[A-Za-z0-9.\[\]:-]+(/[A-Za-z0-9._/-]*)?$`) })
)

// Options say what to generate.
type Options struct {
	// Prefix of the item keys (report.DefaultZabbixPrefix when empty).
	Prefix string
	// Bindguard is the bindguard executable the agent runs.
	Bindguard string
	// URL is the bindguard serve the commands ask ("" for its default).
	URL string
}

// File is one generated file.
type File struct {
	Name    string
	Content []byte
}

// Generate renders the UserParameter file and the template.
func Generate(o Options) ([]File, error) {
	keys, err := report.NewZabbixKeys(o.Prefix)
	if err != nil {
		return nil, err
	}
	o.Prefix = keys.Prefix
	if o.Bindguard == "" {
		o.Bindguard = "/usr/local/bin/bindguard"
	}
	// A zabbix agent reads configuration lines of at most 2048 bytes: keep each value short.
	if !pathRE().MatchString(o.Bindguard) || len(o.Bindguard) > 256 {
		return nil, fmt.Errorf("--bindguard %q: want an absolute path (letters, digits, ._/+-) of at most 256 bytes", o.Bindguard)
	}
	if o.URL != "" && (!urlRE().MatchString(o.URL) || len(o.URL) > 256) {
		return nil, fmt.Errorf("--url %q: want http://HOST:PORT, at most 256 bytes", o.URL)
	}
	// The keys come from the one key scheme (report.ZabbixKeys), shared with
	// `audit --format zabbix` and `zabbix get`.
	data := struct {
		Options
		Keys report.ZabbixKeys
	}{o, keys}
	var up, tpl bytes.Buffer
	if err := userParamsTmpl().Execute(&up, data); err != nil {
		return nil, err
	}
	if err := templateTmpl().Execute(&tpl, data); err != nil {
		return nil, err
	}
	return []File{{UserParamsFile, up.Bytes()}, {TemplateFile, tpl.Bytes()}}, nil
}

// uuid is a stable 32-hex-digit UUID (version 4 layout) for a template element, so that
// re-importing a regenerated template updates elements instead of duplicating them.
func uuid(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return hex.EncodeToString(b)
}
