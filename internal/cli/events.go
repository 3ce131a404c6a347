package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/bindguard/bindguard/internal/monitor"
)

func newEventsCmd(s Streams) *cobra.Command {
	var dataDir, since, server string
	var f *formatFlag
	cmd := &cobra.Command{
		Use:   "events [--since 24h] [--format table|json] [--data DIR | --url URL]",
		Short: "Show the drift history bindguard serve has recorded",
		Long: `Show drift events: sockets that appeared, disappeared or changed status, and
policy reloads, with time, namespace, protocol, address, port, old and new
status, severity and owner.

They are read from the store under --data. While bindguard serve runs it holds
the store: then ask it over HTTP with --url (its /api/v1/events).`,
		Example: `  bindguard events --since 1h
  bindguard events --url http://127.0.0.1:9847 --since 2026-11-22T00:00:00Z --format json`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			if s.Now != nil {
				now = s.Now()
			}
			from, err := monitor.ParseSince(since, now)
			if err != nil {
				return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--%w", err)}
			}
			var events []monitor.Event
			if server != "" {
				events, err = fetchEvents(server, from)
			} else {
				var st *monitor.Store
				st, err = monitor.OpenStore(dataDir, true)
				if err == nil {
					events, err = st.Since(from, 0)
					_ = st.Close()
				}
			}
			if err != nil {
				return err
			}
			if f.value == "json" {
				enc := json.NewEncoder(s.Out)
				enc.SetIndent("", "  ")
				if events == nil {
					events = []monitor.Event{}
				}
				return enc.Encode(struct {
					Schema string          `json:"schema"`
					Since  string          `json:"since"`
					Events []monitor.Event `json:"events"`
				}{"bindguard.events.v1", from.UTC().Format(time.RFC3339), events})
			}
			return eventsTable(s.Out, events, from)
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", defaultDataDir(), "the store's directory (as given to serve)")
	cmd.Flags().StringVar(&since, "since", "24h", "events since a duration ago (1h, 30m, 7d) or an RFC 3339 time")
	cmd.Flags().StringVar(&server, "url", "", "ask a running bindguard serve at this base URL instead of reading the store")
	f = addFormatFlag(cmd, "table", "table", "json")
	return cmd
}

func fetchEvents(base string, from time.Time) ([]monitor.Event, error) {
	u, err := url.Parse(strings.TrimSuffix(base, "/") + "/api/v1/events")
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("--url %q: want http://HOST:PORT", base)
	}
	u.RawQuery = url.Values{"since": {from.UTC().Format(time.RFC3339)}}.Encode()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(u.String())
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("events: %s answered %s: %s", u.Host, resp.Status, strings.TrimSpace(string(b)))
	}
	var doc struct {
		Events []monitor.Event `json:"events"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 256<<20)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("events: reading the answer: %w", err)
	}
	return doc.Events, nil
}

func eventsTable(w io.Writer, events []monitor.Event, from time.Time) error {
	if len(events) == 0 {
		_, err := fmt.Fprintf(w, "no events since %s\n", from.UTC().Format(time.RFC3339))
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTIME\tKIND\tNETNS\tSOCKET\tSERVICE\tSTATUS\tSEVERITY\tPROCESS")
	for _, e := range events {
		sock := ""
		if e.Protocol != "" {
			sock = e.Protocol + " " + hostPort(e.Address, e.Port)
		}
		status := e.NewStatus
		if e.OldStatus != "" {
			status = e.OldStatus + " -> " + orDash(e.NewStatus)
		}
		proc := ""
		if e.Process != nil {
			proc = fmt.Sprintf("%s/%d", e.Process.Name, e.Process.PID)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.Time.UTC().Format(time.RFC3339), e.Kind, orDash(e.Netns),
			orDash(sock), orDash(e.Service), orDash(status), orDash(e.Severity), orDash(proc))
	}
	return tw.Flush()
}

// hostPort writes an event's address and port as the audit does: IPv6 in brackets
// ("[::]:22"), IPv4 bare ("0.0.0.0:22").
func hostPort(addr string, port uint16) string {
	if a, err := netip.ParseAddr(addr); err == nil {
		return netip.AddrPortFrom(a, port).String()
	}
	return net.JoinHostPort(addr, strconv.Itoa(int(port)))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
