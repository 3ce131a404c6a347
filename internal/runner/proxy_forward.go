package runner

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
)

// forwarder is the lean path of Handler: it sends a request without a body (Content-Length 0:
// GET, HEAD, DELETE, most of what a web app serves) to the upstream itself, on a pooled
// Unix-socket connection, and copies the response back. It does what httputil.ReverseProxy
// does for such a request, without its per-request clone of the request and its headers,
// the Transport's two goroutines and channels per connection, and the context a request
// needs to carry the client: on two CPUs that wrk, gunicorn and bindguard share, those were
// most of the proxy's cost. Requests with a body, Upgrade and CONNECT go through the
// ReverseProxy (request bodies stream there while the response is read, full duplex).
//
// What the upstream gets is built from what Go's server parsed and validated, never from the
// client's bytes: the method (a token), the request URI re-encoded from the parsed URL (with
// the ReverseProxy's cleanup of unparsable query parameters), Host, and the client's headers
// without the hop-by-hop ones (RFC 9110 7.6.1, and those the client's Connection names),
// without every forwarding header or other claim about the client (see claimed: X-Forwarded-*,
// Forwarded, X-Real-Ip, True-Client-Ip..., any name with "_"), without
// Content-Length and Transfer-Encoding (no body goes out, so nothing can be smuggled after
// the header block; POST, PUT and PATCH say Content-Length: 0 as Go's client does), and with
// X-Forwarded-For and X-Real-Ip set to the client bindguard resolved. A header name, value or
// Host that Go's own client would refuse (httpguts: CR, LF, NUL and other controls; a name
// that is not a token) is refused again here, though Go's server refused them already.
type forwarder struct {
	addr *net.UnixAddr
	// idle connections, most recently used last; at most maxIdle, none older than idleMax.
	mu   sync.Mutex
	idle []*upConn
}

const (
	maxIdle = 1024
	idleMax = 60 * time.Second
	// max1xx is how many informational responses (102, 103) one request may get, as in
	// Go's client.
	max1xx = 5
)

type upConn struct {
	c      net.Conn
	br     *bufio.Reader
	lr     limitReader
	idleAt time.Time
}

// maxResponseHeader bounds a response's head (status line and headers, 1xx included), as
// Go's client does (10 MiB there; bindguard's memory limit is 40 MiB).
const maxResponseHeader = 1 << 20

var errHeaderTooLarge = errors.New("upstream response headers over 1 MiB")

// limitReader reads from c, at most n bytes while n >= 0 (the head); n < 0 is no limit.
type limitReader struct {
	c net.Conn
	n int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n < 0 {
		return l.c.Read(p)
	}
	if l.n == 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.c.Read(p)
	l.n -= int64(n)
	return n, err
}

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
	reqBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2<<10); return &b }}
	copyPool   = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
	// aLongTimeAgo is a deadline that has passed: it interrupts a blocked read or write.
	aLongTimeAgo = time.Unix(1, 0)
)

func newForwarder(path string) *forwarder {
	return &forwarder{addr: &net.UnixAddr{Name: path, Net: "unix"}}
}

// get is an idle connection (reused true) or a new one. A Unix-socket connect does not wait
// (a full backlog is EAGAIN), so it takes no context.
func (f *forwarder) get() (*upConn, bool, error) {
	now := time.Now()
	f.mu.Lock()
	for n := len(f.idle); n > 0; n = len(f.idle) {
		uc := f.idle[n-1]
		f.idle[n-1] = nil
		f.idle = f.idle[:n-1]
		if now.Sub(uc.idleAt) < idleMax && alive(uc.c) {
			f.mu.Unlock()
			return uc, true, nil
		}
		f.mu.Unlock()
		uc.close()
		f.mu.Lock()
	}
	f.mu.Unlock()
	c, err := dialUpstream(f.addr)
	if err != nil {
		return nil, false, err
	}
	uc := &upConn{c: c, lr: limitReader{c: c, n: -1}}
	uc.br = readerPool.Get().(*bufio.Reader)
	uc.br.Reset(&uc.lr)
	return uc, false, nil
}

func (f *forwarder) put(uc *upConn) {
	uc.idleAt = time.Now()
	f.mu.Lock()
	if len(f.idle) < maxIdle {
		f.idle = append(f.idle, uc)
		f.mu.Unlock()
		return
	}
	f.mu.Unlock()
	uc.close()
}

func (uc *upConn) close() {
	_ = uc.c.Close()
	uc.br.Reset(nil)
	readerPool.Put(uc.br)
	uc.br = nil
}

// lean reports whether r takes the forwarder's path: no body, no upgrade, not CONNECT.
func lean(r *http.Request) bool {
	return r.ContentLength == 0 && r.Method != http.MethodConnect && r.ProtoMajor == 1 &&
		len(r.Header["Upgrade"]) == 0
}

// hopByHop are the headers of RFC 9110 7.6.1 and the older ones proxies drop (as
// httputil.ReverseProxy does), with the forwarding headers bindguard replaces and the framing
// headers it writes itself; keys are canonical.
var dropped = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// framing are the headers the forwarder writes itself.
var framing = map[string]bool{"Content-Length": true, "Host": true}

// clientClaims are the headers besides X-Forwarded-* by which a proxy or CDN names a client
// (and apps or their libraries read): the guard alone names the client, so what the client
// sent of these is dropped on both paths. Keys are canonical.
var clientClaims = map[string]bool{
	"Forwarded": true, "X-Real-Ip": true, "True-Client-Ip": true, "X-Client-Ip": true,
	"Cf-Connecting-Ip": true, "X-Cluster-Client-Ip": true, "Fastly-Client-Ip": true,
	"Client-Ip": true, "X-Originating-Ip": true, "X-Remote-Ip": true, "X-Remote-Addr": true,
	"X-Original-Forwarded-For": true, "X-Proxyuser-Ip": true,
}

// claimed reports whether the client's header k is dropped toward the upstream as a claim
// about the client or the request's origin: every X-Forwarded-* (For, Host, Proto, Port,
// Prefix, Server... as werkzeug's ProxyFix reads them), the headers of clientClaims, and any
// name with "_" (see underscored).
func claimed(k string) bool {
	return strings.HasPrefix(k, "X-Forwarded-") || clientClaims[k] || underscored(k)
}

var errBadHeader = errors.New("invalid header name or value, or Host")

// underscored reports whether a header name holds "_". Such headers are dropped on the way
// to the upstream, as nginx does by default (underscores_in_headers off) and gunicorn 22 does
// (header_map drop): CGI and WSGI servers turn "-" into "_" in the environ key, so a client's
// "X_Forwarded_For: 127.0.0.1" would become HTTP_X_FORWARDED_FOR beside (gunicorn 20 joins
// them, the client's first) the X-Forwarded-For bindguard sets, and an app that reads it would
// take the forged address.
func underscored(k string) bool { return strings.IndexByte(k, '_') >= 0 }

// connectionListed reports whether the Connection headers hv name key (canonical).
func connectionListed(hv []string, key string) bool {
	for _, v := range hv {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			if tok = textproto.TrimString(tok); tok != "" && textproto.CanonicalMIMEHeaderKey(tok) == key {
				return true
			}
		}
	}
	return false
}

// appendRequest appends r's request to the upstream, with client as its forwarding headers.
func appendRequest(b []byte, r *http.Request, client string) ([]byte, error) {
	b = append(b, r.Method...)
	b = append(b, ' ')
	u := *r.URL
	u.RawQuery = cleanQueryParams(u.RawQuery)
	b = append(b, u.RequestURI()...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	if !httpguts.ValidHostHeader(r.Host) {
		return nil, errBadHeader
	}
	b = append(b, r.Host...)
	b = append(b, "\r\n"...)
	conn := r.Header["Connection"]
	for k, vv := range r.Header {
		if dropped[k] || framing[k] || claimed(k) || (len(conn) > 0 && connectionListed(conn, k)) {
			continue
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) || !httpguts.ValidHeaderFieldName(k) {
				return nil, errBadHeader
			}
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	if headerContainsToken(r.Header["Te"], "trailers") {
		b = append(b, "Te: trailers\r\n"...)
	}
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		b = append(b, "Content-Length: 0\r\n"...)
	}
	b = append(b, "X-Forwarded-For: "...)
	b = append(b, client...)
	b = append(b, "\r\nX-Real-Ip: "...)
	b = append(b, client...)
	b = append(b, "\r\n\r\n"...)
	return b, nil
}

func headerContainsToken(hv []string, tok string) bool {
	for _, v := range hv {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(textproto.TrimString(t), tok) {
				return true
			}
		}
	}
	return false
}

// cleanQueryParams is httputil.ReverseProxy's: a query with a semicolon or a bad escape is
// re-encoded from what url.ParseQuery accepts of it.
func cleanQueryParams(s string) string {
	reencode := func(s string) string {
		v, _ := url.ParseQuery(s)
		return v.Encode()
	}
	for i := 0; i < len(s); {
		switch s[i] {
		case ';':
			return reencode(s)
		case '%':
			if i+2 >= len(s) || !ishex(s[i+1]) || !ishex(s[i+2]) {
				return reencode(s)
			}
			i += 3
		default:
			i++
		}
	}
	return s
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// replayable: Go's client's rule for sending a request again on a new connection when a
// reused one turned out closed.
func replayable(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return len(r.Header["Idempotency-Key"]) > 0 || len(r.Header["X-Idempotency-Key"]) > 0
}

// serve forwards r (lean(r)) for client. fail answers an upstream that cannot be reached or
// gives no response (502).
func (f *forwarder) serve(w http.ResponseWriter, r *http.Request, client string, fail func(http.ResponseWriter, *http.Request, error)) {
	bp := reqBufPool.Get().(*[]byte)
	req, err := appendRequest((*bp)[:0], r, client)
	if err != nil {
		reqBufPool.Put(bp)
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	var uc *upConn
	var stop func() bool
	for attempt := 0; ; attempt++ {
		var reused bool
		uc, reused, err = f.get()
		if err != nil {
			break
		}
		c := uc.c
		stop = context.AfterFunc(ctx, func() { _ = c.SetDeadline(aLongTimeAgo) })
		uc.lr.n = maxResponseHeader - int64(uc.br.Buffered())
		if _, err = c.Write(req); err == nil {
			_, err = uc.br.Peek(1)
		}
		if err == nil {
			break
		}
		stop()
		uc.close()
		uc = nil
		// A reused connection the upstream had closed: once more on a new one.
		if !reused || attempt > 0 || !replayable(r) || ctx.Err() != nil {
			break
		}
	}
	*bp = req[:0]
	reqBufPool.Put(bp)
	if uc == nil {
		fail(w, r, err)
		return
	}
	done := false
	defer func() {
		if !stop() || !done {
			uc.close()
			return
		}
		f.put(uc)
	}()

	var resp *http.Response
	for n := 0; ; n++ {
		resp, err = http.ReadResponse(uc.br, r)
		if err != nil {
			fail(w, r, err)
			return
		}
		if resp.StatusCode >= 200 {
			break
		}
		if resp.StatusCode == http.StatusSwitchingProtocols || n >= max1xx {
			fail(w, r, fmt.Errorf("upstream answered %d to a request without Upgrade, or too many 1xx", resp.StatusCode))
			return
		}
		if resp.StatusCode == http.StatusContinue {
			continue // Go's server says 100 Continue to the client itself.
		}
		h := w.Header()
		copyHeader(h, resp.Header)
		w.WriteHeader(resp.StatusCode)
		clear(h)
	}
	uc.lr.n = -1
	h := w.Header()
	copyHeader(h, resp.Header)
	announced := len(resp.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		h.Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(resp.StatusCode)
	if err := copyBody(w, resp.Body, flushEvery(resp)); err != nil {
		// Streaming: all that can be done is to abort the client's response, as the
		// ReverseProxy does.
		panic(http.ErrAbortHandler)
	}
	_ = resp.Body.Close()
	if len(resp.Trailer) > 0 {
		_ = http.NewResponseController(w).Flush()
		if len(resp.Trailer) == announced {
			copyHeader(h, resp.Trailer)
		} else {
			for k, vv := range resp.Trailer {
				for _, v := range vv {
					h.Add(http.TrailerPrefix+k, v)
				}
			}
		}
	}
	untilEOF := resp.ContentLength < 0 && len(resp.TransferEncoding) == 0 && resp.Body != http.NoBody
	done = !resp.Close && !untilEOF && uc.br.Buffered() == 0
}

// copyHeader adds src, without its hop-by-hop headers, to dst.
func copyHeader(dst, src http.Header) {
	conn := src["Connection"]
	for k, vv := range src {
		if dropped[k] || (len(conn) > 0 && connectionListed(conn, k)) {
			continue
		}
		dst[k] = append(dst[k], vv...)
	}
}

// flushEvery is the ReverseProxy's FlushInterval 0 rule: flush every write of a response of
// unknown length or a server-sent event stream.
func flushEvery(resp *http.Response) bool {
	if resp.ContentLength == -1 {
		return true
	}
	ct := resp.Header.Get("Content-Type")
	if len(ct) < len("text/event-stream") || !strings.EqualFold(ct[:len("text/event-stream")], "text/event-stream") {
		return false // not worth parsing on every response
	}
	base, _, _ := mime.ParseMediaType(ct)
	return base == "text/event-stream"
}

// copyBody copies the upstream's body to w, flushing each write when flush.
func copyBody(w http.ResponseWriter, body io.Reader, flush bool) error {
	bp := copyPool.Get().(*[]byte)
	defer copyPool.Put(bp)
	buf := *bp
	var rc *http.ResponseController
	if flush {
		rc = http.NewResponseController(w)
	}
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
			if flush {
				if err := rc.Flush(); err != nil {
					return err
				}
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}
