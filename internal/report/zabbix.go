package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/bindguard/bindguard/internal/audit"
)

// ZabbixPrefix starts every item key bindguard writes.
const ZabbixPrefix = "bindguard"

// zabbixLLD is one discovered service.
type zabbixLLD struct {
	Service  string `json:"{#SERVICE}"`
	Protocol string `json:"{#PROTOCOL}"`
	Port     uint16 `json:"{#PORT}"`
}

// Zabbix writes the report as zabbix_sender input (`zabbix_sender -z SERVER -i FILE`): one
// "host key value" line per item, host "-" (the sender's configured Hostname). Items:
//
//	bindguard.discovery                  low-level discovery of the declared services (JSON)
//	bindguard.score                      the score, 0-100
//	bindguard.findings[STATUS]           findings by status
//	bindguard.service.compliant[SERVICE] 1 or 0 per declared service
func Zabbix(w io.Writer, m Meta, r *audit.Report) error {
	lld := make([]zabbixLLD, 0, len(r.Services))
	for _, s := range r.Services {
		lld = append(lld, zabbixLLD{Service: s.Name, Protocol: string(s.Protocol), Port: s.Port})
	}
	disc, err := json.Marshal(lld)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	ew := &errWriter{w: w}
	item := func(key, value string) { ew.printf("- %s %s\n", zabbixQuote(key), zabbixQuote(value)) }
	item(ZabbixPrefix+".discovery", string(disc))
	item(ZabbixPrefix+".score", fmt.Sprint(r.Score))
	for _, st := range audit.Statuses() {
		item(fmt.Sprintf("%s.findings[%s]", ZabbixPrefix, st), fmt.Sprint(r.Summary.Count(st)))
	}
	for _, s := range r.Services {
		v := "0"
		if s.Compliant {
			v = "1"
		}
		item(fmt.Sprintf("%s.service.compliant[%s]", ZabbixPrefix, s.Name), v)
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
