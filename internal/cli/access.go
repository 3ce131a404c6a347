package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bindguard/bindguard/access"
)

// maxAccessLine bounds one request line on standard input.
const maxAccessLine = 1 << 20

func newAccessCmd(s Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "access",
		Short: "Ask how the access middleware decides for a request",
		Long: `Commands about bindguard's access middleware (the Go package access), which
admits HTTP clients by IP for a service of the policy.`,
		Example: `  bindguard access check -p bindguard.yaml --service core --remote 10.1.1.50:40000 --host localhost`,
		Args:    args(0, 0),
		RunE:    func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newAccessCheckCmd(s))
	return cmd
}

// accessRequest is one line of `access check` input.
type accessRequest struct {
	RemoteAddr *string    `json:"remote_addr"`
	Host       string     `json:"host"`
	Headers    [][]string `json:"headers"`
}

// accessAnswer is one line of `access check` output.
type accessAnswer struct {
	ClientIP *string `json:"client_ip"`
	Allowed  bool    `json:"allowed"`
	Reason   string  `json:"reason"`
}

func newAccessCheckCmd(s Streams) *cobra.Command {
	var (
		policyPath, service, remote, host string
		headers                           []string
	)
	cmd := &cobra.Command{
		Use:   "check --service NAME [--remote ADDR --host H -H 'Name: value'...]",
		Short: "Decide for requests as the service's access middleware would, and say why",
		Long: `Decide for requests as bindguard's access middleware decides for the service:
the client IP (the peer, or the configured client-IP header walked right to left
through the policy's trusted proxies), allowed or not, and why.

Without --remote, reads one JSON object per line on standard input:
  {"remote_addr": "127.0.0.1:51000", "host": "localhost",
   "headers": [["X-Forwarded-For", "127.0.0.1, 203.0.113.9"]]}
(header order and repeats are kept) and writes one per line:
  {"client_ip": "203.0.113.9", "allowed": false, "reason": "..."}
client_ip is null when no client could be determined (the request is denied).

The policy is --policy, else ./bindguard.yaml, else /etc/bindguard/bindguard.yaml.

Exit codes: 0 every request allowed, 1 one or more denied, 2 error.`,
		Example: `  # Why was this request refused?
  bindguard access check -p service-bindings.yaml --service intelligent_core_service \
    --remote 127.0.0.1:40000 --host localhost -H 'X-Forwarded-For: 127.0.0.1, 10.1.1.50'

  # Replay requests from a log, one JSON object per line
  bindguard access check -p bindguard.yaml --service core < requests.jsonl`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if service == "" {
				return &usageError{cmd: cmd.CommandPath(), err: errors.New("--service is required")}
			}
			single := cmd.Flags().Changed("remote")
			if !single && (cmd.Flags().Changed("host") || len(headers) > 0) {
				return &usageError{cmd: cmd.CommandPath(), err: errors.New("--host and -H describe one request: give --remote too")}
			}
			pol, err := findPolicy(s, policyPath)
			if err != nil {
				return err
			}
			g, err := access.NewGuard(pol, service)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(s.Out)
			enc.SetEscapeHTML(false)
			denied := false
			answer := func(req access.Request) error {
				d := g.Decide(req)
				a := accessAnswer{Allowed: d.Allowed, Reason: d.Explain()}
				if d.Client.Addr.IsValid() {
					ip := d.Client.Addr.String()
					a.ClientIP = &ip
				}
				denied = denied || !d.Allowed
				return enc.Encode(a)
			}
			if single {
				h := http.Header{}
				for _, line := range headers {
					name, value, ok := strings.Cut(line, ":")
					if !ok {
						return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("-H %q: want 'Name: value'", line)}
					}
					if err := addHeader(h, name, strings.TrimLeft(value, " \t")); err != nil {
						return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("-H %q: %w", line, err)}
					}
				}
				if err := answer(access.Request{RemoteAddr: remote, Host: host, Path: "/", Header: h}); err != nil {
					return err
				}
			} else if err := readAccessRequests(s.In, answer); err != nil {
				return err
			}
			if denied {
				return &exitError{Code: ExitViolation}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&policyPath, "policy", "p", "", "policy file (default ./bindguard.yaml, then /etc/bindguard/bindguard.yaml)")
	cmd.Flags().StringVar(&service, "service", "", "the service whose middleware decides (required)")
	cmd.Flags().StringVar(&remote, "remote", "", "one request: the peer address as the server sees it, `IP:PORT`, `[IPv6]:PORT` or the IP alone")
	cmd.Flags().StringVar(&host, "host", "", "one request: the Host header")
	cmd.Flags().StringArrayVarP(&headers, "header", "H", nil, "one request: a header, `'Name: value'` (repeatable, order kept)")
	return cmd
}

// addHeader adds a header as a server would receive it: the name a token, the value free of
// CR, LF and NUL.
func addHeader(h http.Header, name, value string) error {
	if name == "" || strings.IndexFunc(name, func(r rune) bool {
		return r <= ' ' || r >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r)
	}) >= 0 {
		return fmt.Errorf("header name %q is not a token", name)
	}
	if strings.ContainsAny(value, "\r\n\x00") {
		return fmt.Errorf("header %s: value holds CR, LF or NUL, which no HTTP server accepts", name)
	}
	h[textproto.CanonicalMIMEHeaderKey(name)] = append(h[textproto.CanonicalMIMEHeaderKey(name)], value)
	return nil
}

// readAccessRequests decodes one request per line and answers each.
func readAccessRequests(in io.Reader, answer func(access.Request) error) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), maxAccessLine)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var r accessRequest
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			return fmt.Errorf("stdin:%d: %w (want {\"remote_addr\": str, \"host\": str, \"headers\": [[name, value], ...]})", line, err)
		}
		if dec.More() {
			return fmt.Errorf("stdin:%d: more than one JSON value on the line", line)
		}
		if r.RemoteAddr == nil {
			return fmt.Errorf("stdin:%d: remote_addr is required", line)
		}
		h := http.Header{}
		for i, kv := range r.Headers {
			if len(kv) != 2 {
				return fmt.Errorf("stdin:%d: headers[%d]: want [name, value], got %d strings", line, i, len(kv))
			}
			if err := addHeader(h, kv[0], kv[1]); err != nil {
				return fmt.Errorf("stdin:%d: headers[%d]: %w", line, i, err)
			}
		}
		if err := answer(access.Request{RemoteAddr: *r.RemoteAddr, Host: r.Host, Path: "/", Header: h}); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("stdin:%d: line longer than %d bytes", line+1, maxAccessLine)
		}
		return fmt.Errorf("stdin: %w", err)
	}
	return nil
}
