package runner

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// FuzzAppendRequest: whatever request head a client sends that Go's server parses, what the
// forwarder writes to the upstream is one request and nothing after it, with the client's
// method, Host, path and (cleaned) query, the resolved client as X-Forwarded-For and
// X-Real-Ip and no other claim about the client, no header with "_", no hop-by-hop header,
// and no framing but Content-Length: 0.
func FuzzAppendRequest(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /p?q=1;x=%zz HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 127.0.0.1\r\nX_Forwarded_For: 1.2.3.4\r\n\r\n",
		"DELETE http://a/b/../c HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\nTE: trailers\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nForwarded: for=1.2.3.4\r\nTrue-Client-IP: 1.2.3.4\r\n\r\n",
		"GET / HTTP/1.0\r\nX-Real-IP: 10.0.0.1\r\nX-Forwarded-Host: evil\r\nCF-Connecting-IP: 1.1.1.1\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	const client = "203.0.113.9"
	f.Fuzz(func(t *testing.T, head []byte) {
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if err != nil || !lean(r) || !originPath(r) {
			return // Go's server refuses it, or it is not the forwarder's
		}
		out, err := appendRequest(nil, r, client)
		if err != nil {
			return // refused: 400
		}
		br := bufio.NewReader(bytes.NewReader(out))
		up, err := http.ReadRequest(br)
		if err != nil {
			t.Fatalf("the upstream cannot parse what was forwarded: %v\n%q", err, out)
		}
		if br.Buffered() != 0 {
			t.Fatalf("bytes after the forwarded request (smuggled): %q", out)
		}
		if up.Method != r.Method || up.Host != r.Host {
			t.Fatalf("method/host %q %q became %q %q", r.Method, r.Host, up.Method, up.Host)
		}
		// An absolute target without a path ("http://a", "a:") is the root, as for Go's
		// client.
		if want := r.URL.EscapedPath(); r.URL.Path != "*" && up.URL.EscapedPath() != want && !(want == "" && up.URL.Path == "/") {
			t.Fatalf("path %q became %q", want, up.URL.EscapedPath())
		}
		if want := cleanQueryParams(r.URL.RawQuery); up.URL.RawQuery != want {
			t.Fatalf("query %q became %q, want %q", r.URL.RawQuery, up.URL.RawQuery, want)
		}
		for _, h := range []string{"X-Forwarded-For", "X-Real-Ip"} {
			if v := up.Header.Values(h); len(v) != 1 || v[0] != client {
				t.Fatalf("%s is %q, want only %q", h, v, client)
			}
		}
		if up.ContentLength != 0 || len(up.TransferEncoding) != 0 {
			t.Fatalf("framing: Content-Length %d, Transfer-Encoding %q", up.ContentLength, up.TransferEncoding)
		}
		listed := r.Header["Connection"]
		for k := range up.Header {
			switch {
			case k == "X-Forwarded-For" || k == "X-Real-Ip":
			case claimed(k):
				t.Fatalf("the client's %s reached the upstream", k)
			case dropped[k] && !(k == "Te" && strings.EqualFold(up.Header.Get("Te"), "trailers")):
				t.Fatalf("hop-by-hop %s reached the upstream", k)
			case connectionListed(listed, k):
				t.Fatalf("%s, named in the client's Connection, reached the upstream", k)
			}
		}
	})
}
