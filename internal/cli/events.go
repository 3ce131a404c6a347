package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/bindguard/bindguard/internal/monitor"
	"github.com/bindguard/bindguard/internal/report"
)

func newEventsCmd(s Streams) *cobra.Command {
	var dataDir, since, server, passwordFile string
	var f *formatFlag
	cmd := &cobra.Command{
		Use:   "events [--since 24h] [--format table|json] [--data DIR | --url URL] [--password-file FILE]",
		Short: "Show the drift history bindguard serve has recorded",
		Long: `Show drift events: sockets that appeared, disappeared or changed status (or
address), violations resolved, and policy reloads, with time, namespace,
protocol, address, port, old and new status, severity and owner. --format json
writes bindguard.events.v2 (with judged_at and stored_at).

They are read from the store under --data. While bindguard serve runs it holds
the store; then events asks it over HTTP, where it recorded it listens
(DATA/serve.json), trusting the certificate it recorded when it serves TLS.
--url asks a serve at another address instead.

When serve's web configuration requires basic auth, the credentials are read
from --password-file (default DATA/events.credentials when it exists): one line
USER:PASSWORD, readable by its owner only. They are never taken from the
command line.`,
		Example: `  bindguard events --since 1h
  bindguard events --password-file /etc/bindguard/events.credentials --format json
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
				events, err = fetchEvents(eventsClient{base: server, passwordFile: passwordFile}, from)
			} else {
				var st *monitor.Store
				st, err = monitor.OpenStore(dataDir, true)
				switch {
				case err == nil:
					events, err = st.Since(from, 0)
					_ = st.Close()
				case errors.Is(err, monitor.ErrLocked):
					// serve holds the store: ask it where it recorded it listens.
					info, ierr := monitor.ReadServeInfo(dataDir)
					if ierr != nil {
						return fmt.Errorf("the store in %s is in use, and no running serve recorded where it listens (%v): ask it with --url", dataDir, ierr)
					}
					pf := passwordFile
					if pf == "" {
						if def := filepath.Join(dataDir, "events.credentials"); fileExists(def) {
							pf = def
						}
					}
					events, err = fetchEvents(eventsClient{base: info.URL, info: &info, passwordFile: pf}, from)
				}
			}
			if err != nil {
				return err
			}
			if f.value == "json" {
				return report.NewEventsV2(from, events).Encode(s.Out, true)
			}
			return eventsTable(s.Out, events, from)
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", defaultDataDir(), "the store's directory (as given to serve)")
	cmd.Flags().StringVar(&since, "since", "24h", "events since a duration ago (1h, 30m, 7d) or an RFC 3339 time")
	cmd.Flags().StringVar(&server, "url", "", "ask a running bindguard serve at this base URL instead of reading the store (default: where the serve holding --data recorded it listens)")
	cmd.Flags().StringVar(&passwordFile, "password-file", "", "basic auth credentials for serve, one line USER:PASSWORD, owner-only (default DATA/events.credentials when it exists)")
	f = addFormatFlag(cmd, "table", "table", "json")
	return cmd
}

// eventsClient is how events asks a running serve.
type eventsClient struct {
	base string
	// info, when serve recorded itself, says how to trust its certificate.
	info         *monitor.ServeInfo
	passwordFile string
}

// httpClient trusts the certificate serve recorded (pinned: the chain is checked against it,
// the host name is not, since serve is asked on the address it listens on), else the system's.
func (ec eventsClient) httpClient() (*http.Client, error) {
	tr := &http.Transport{Proxy: nil}
	if ec.info != nil && ec.info.Scheme == "https" {
		pemData := []byte(ec.info.CertPEM)
		if ec.info.CertFile != "" {
			b, err := os.ReadFile(ec.info.CertFile) // #nosec G304 -- the certificate serve recorded
			if err != nil {
				return nil, fmt.Errorf("events: serve's certificate: %w", err)
			}
			pemData = b
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pemData) {
			return nil, errors.New("events: serve recorded no usable certificate")
		}
		tr.TLSClientConfig = &tls.Config{
			MinVersion: tls.VersionTLS12,
			// The chain is verified below against serve's own certificate, without a host name.
			InsecureSkipVerify: true, // #nosec G402 -- verified in VerifyConnection against the pinned certificate
			VerifyConnection: func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 {
					return errors.New("no certificate")
				}
				inter := x509.NewCertPool()
				for _, c := range cs.PeerCertificates[1:] {
					inter.AddCert(c)
				}
				_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
				return err
			},
		}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: tr}, nil
}

// credentials reads USER:PASSWORD from the password file, refusing one others may read.
func (ec eventsClient) credentials() (user, pass string, ok bool, err error) {
	if ec.passwordFile == "" {
		return "", "", false, nil
	}
	fi, err := os.Stat(ec.passwordFile)
	if err != nil {
		return "", "", false, fmt.Errorf("--password-file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", "", false, fmt.Errorf("--password-file %s: readable by others (mode %v); chmod 600 it", ec.passwordFile, fi.Mode().Perm())
	}
	b, err := os.ReadFile(ec.passwordFile) // #nosec G304 -- the operator's credentials file
	if err != nil {
		return "", "", false, fmt.Errorf("--password-file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	user, pass, found := strings.Cut(strings.TrimRight(line, "\r"), ":")
	if !found || user == "" {
		return "", "", false, fmt.Errorf("--password-file %s: want one line USER:PASSWORD", ec.passwordFile)
	}
	return user, pass, true, nil
}

// fetchEvents asks a serve for its events: /api/v2/events, or /api/v1/events from a serve
// older than bindguard.events.v2 (it answers 404 for v2).
func fetchEvents(ec eventsClient, from time.Time) ([]monitor.Event, error) {
	evs, err := fetchEventsAt(ec, from, "/api/v2/events")
	if errors.Is(err, errNoV2) {
		return fetchEventsAt(ec, from, "/api/v1/events")
	}
	return evs, err
}

var errNoV2 = errors.New("no /api/v2/events")

func fetchEventsAt(ec eventsClient, from time.Time, path string) ([]monitor.Event, error) {
	u, err := url.Parse(strings.TrimSuffix(ec.base, "/") + path)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("--url %q: want http://HOST:PORT", ec.base)
	}
	u.RawQuery = url.Values{"since": {from.UTC().Format(time.RFC3339)}}.Encode()
	c, err := ec.httpClient()
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	user, pass, auth, err := ec.credentials()
	if err != nil {
		return nil, err
	}
	if auth {
		req.SetBasicAuth(user, pass)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode == http.StatusUnauthorized {
		return nil, fmt.Errorf("events: %s wants basic auth credentials: give --password-file (one line USER:PASSWORD, chmod 600), or put them in DATA/events.credentials", u.Host)
	}
	if resp.StatusCode == http.StatusNotFound && strings.HasPrefix(path, "/api/v2/") {
		return nil, errNoV2
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("events: %s answered %s: %s", u.Host, resp.Status, strings.TrimSpace(string(b)))
	}
	decode := report.DecodeEventsV2[monitor.Event]
	if strings.HasPrefix(path, "/api/v1/") {
		decode = report.DecodeEvents[monitor.Event] // v1 events decode as v2 without its fields
	}
	doc, err := decode(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("events: reading the answer: %w", err)
	}
	return doc.Events, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
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
		if d := e.Denial; d != nil { // a denied event: what the kernel did, and by which rule
			status = d.Mode + " " + d.Rule
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
