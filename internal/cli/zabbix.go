package cli

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bindguard/bindguard/internal/gen/systemd"
	"github.com/bindguard/bindguard/internal/gen/zabbix"
	"github.com/bindguard/bindguard/internal/report"
)

var defaultServeURL = fmt.Sprintf("http://127.0.0.1:%d", systemd.DefaultSelfPort)

func newGenZabbixCmd(s Streams) *cobra.Command {
	var o zabbix.Options
	var output string
	var force bool
	cmd := &cobra.Command{
		Use:   "zabbix [--prefix aktienanalyse] [--bindguard PATH] [--url URL] [--output DIR]",
		Short: "Write the Zabbix agent UserParameter file (the seed's keys) and a Zabbix 6.0 template",
		Long: `Write the Zabbix side (docs/monitor.md):

  bindguard.conf            UserParameter lines for zabbix_agent2.d/: the seed's keys
                            PREFIX.port.bindings[*], PREFIX.service.binding[*] and
                            PREFIX.binding.security.score, plus PREFIX.service.discovery,
                            PREFIX.namespace.discovery and PREFIX.namespace.score[NETNS],
                            each answered by 'bindguard zabbix get' from bindguard serve
  bindguard_template.yaml   a Zabbix 6.0 template: the items, low-level discovery of the
                            policy's services and of the audited network namespaces
                            (containers) with an item and trigger each, and triggers

'bindguard audit --format zabbix' with the same --prefix sends the same keys and
values. SERVICE in keys and in the discovery macro {#SERVICE} is the policy's
name with "-" written "_", as the seed writes it.

Without --output both are written to standard output, each after "# ==> NAME <==".`,
		Example: `  bindguard gen zabbix --output /etc/zabbix/zabbix_agent2.d
  zabbix_agent2 -t bindguard.binding.security.score

  # The seed's keys
  bindguard gen zabbix --prefix aktienanalyse --output /etc/zabbix/zabbix_agent2.d`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			files, err := zabbix.Generate(o)
			if err != nil {
				return &usageError{cmd: cmd.CommandPath(), err: err}
			}
			out := make([]genFile, len(files))
			for i, f := range files {
				out[i] = genFile{f.Name, f.Content}
			}
			return writeGenerated(s, output, force, out)
		},
	}
	cmd.Flags().StringVar(&o.Prefix, "prefix", report.DefaultZabbixPrefix, "item key prefix (the seed's is aktienanalyse)")
	cmd.Flags().StringVar(&o.Bindguard, "bindguard", "/usr/local/bin/bindguard", "the bindguard executable the agent runs")
	cmd.Flags().StringVar(&o.URL, "url", "", "the bindguard serve to ask (default "+defaultServeURL+")")
	cmd.Flags().StringVarP(&output, "output", "o", "", "directory to write the files to (default: standard output)")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite files that exist")
	return cmd
}

func newZabbixCmd(s Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "zabbix",
		Short: "Answer Zabbix agent items from bindguard serve",
		Long: `Commands for the Zabbix agent: 'zabbix get KEY' answers the UserParameter items
'bindguard gen zabbix' writes.`,
		Example: `  bindguard zabbix get --prefix aktienanalyse aktienanalyse.binding.security.score`,
		Args:    args(0, 0),
		RunE:    func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newZabbixGetCmd(s))
	return cmd
}

func newZabbixGetCmd(s Streams) *cobra.Command {
	var url, prefix string
	cmd := &cobra.Command{
		Use:   "get KEY",
		Short: "Print one item's value, as the Zabbix agent's UserParameter does",
		Long: `Print the value of a Zabbix item key from bindguard serve's latest audit:

  PREFIX.port.bindings[valid|invalid|missing|unexpected]   findings by status
  PREFIX.service.binding[SERVICE]                          1 bound as the policy says, else 0
  PREFIX.binding.security.score                            0-100
  PREFIX.service.discovery                                 low-level discovery JSON
  PREFIX.namespace.discovery                               the namespaces, discovery JSON
                                                           ({#NETNS} {#LABEL} {#CONTAINER} {#SCOPE})
  PREFIX.namespace.score[NETNS]                            one namespace's score, 0-100

PREFIX is --prefix (default bindguard; the seed's is aktienanalyse). SERVICE may
be spelt as in the policy or with "-" written "_", as discovery writes it. The
values are those 'bindguard audit --format zabbix --prefix PREFIX' sends.

An unknown key, an unknown service, or a daemon that cannot be reached is an
error (exit 2): Zabbix then marks the item unsupported instead of recording a
made-up 0.`,
		Example: `  bindguard zabbix get 'bindguard.port.bindings[invalid]'
  bindguard zabbix get --prefix aktienanalyse --url http://127.0.0.1:9847 'aktienanalyse.service.binding[redis]'`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, a []string) error {
			key := a[0]
			if _, err := report.NewZabbixKeys(prefix); err != nil {
				return &usageError{cmd: cmd.CommandPath(), err: err}
			}
			doc, err := fetchZabbix(url)
			if err != nil {
				return err
			}
			v, err := zabbixValue(doc, prefix, key)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(s.Out, v)
			return err
		},
	}
	cmd.Flags().StringVar(&url, "url", defaultServeURL, "bindguard serve's base URL")
	cmd.Flags().StringVar(&prefix, "prefix", report.DefaultZabbixPrefix, "item key prefix, as given to gen zabbix")
	return cmd
}

func fetchZabbix(base string) (*report.ZabbixDoc, error) {
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		return nil, fmt.Errorf("--url %q: want http://HOST:PORT", base)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(strings.TrimSuffix(base, "/") + "/api/v1/zabbix")
	if err != nil {
		return nil, fmt.Errorf("bindguard serve at %s: %w", base, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		return nil, fmt.Errorf("bindguard serve at %s answered %s: %s", base, resp.Status, strings.TrimSpace(string(b)))
	}
	doc, err := report.DecodeZabbixDoc(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("bindguard serve at %s: %w", base, err)
	}
	return doc, nil
}

// zabbixValue answers one item key from the daemon's figures, by the report's key scheme.
func zabbixValue(doc *report.ZabbixDoc, prefix, key string) (string, error) {
	k, err := report.NewZabbixKeys(prefix)
	if err != nil {
		return "", err
	}
	return doc.Value(k, key)
}
