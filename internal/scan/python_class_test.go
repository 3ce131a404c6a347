//go:build cgo

package scan

import (
	"fmt"
	"sort"
	"strings"
	"testing"
)

// TestPythonClassDefaults: every address a configuration or option class declares is a
// finding, loopback ones included (the verdict allows them); each default is one finding,
// however often the class repeats it interpolated; hostile shapes give none and do not panic.
func TestPythonClassDefaults(t *testing.T) {
	src := `import os
class Bind(Setting):
    name = "bind"
    cli = ["-b", "--bind"]
    if 'PORT' in os.environ:
        default = ['0.0.0.0:{0}'.format(os.environ.get('PORT'))]
    else:
        default = ['127.0.0.1:8000']

class Adjustments:
    host = _str_marker("0.0.0.0")
    port = _int_marker(8080)
    listen = [f"{host}:{port}"]
    bind = x.format("0.0.0.0")
    address = "{0}".format(h)
    listen_address = "%s:80" % h
    bind_host = a = "0.0.0.0"
    addr = wrap(wrap(wrap(wrap(wrap(wrap("0.0.0.0"))))))
    host: str
    bind_addr = "10.0.0.5"
    if host == "0.0.0.0":
        pass

class Other:
    name = "bind"
    default = ["", None, 8000, "example.com:80", "localhost:8000"]
`
	out, probs := scanPython("cfg.py", []byte(src))
	if len(probs) > 0 {
		t.Fatalf("problems: %v", probs)
	}
	var got []string
	for _, f := range out {
		got = append(got, fmt.Sprintf("%d %s %d %s", f.Line, f.Address, f.Port, f.Reach))
	}
	sort.Strings(got)
	want := []string{"11 0.0.0.0 8080 public", "26 localhost 8000 loopback", "6 0.0.0.0 0 public", "8 127.0.0.1 8000 loopback"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("findings:\n got %q\nwant %q", got, want)
	}
}

// TestAddrDefault: the port of a formatted string is unknown (0) whatever digits precede its
// placeholder, as is a port out of range; hosts that are not addresses are refused.
func TestAddrDefault(t *testing.T) {
	for _, c := range []struct {
		s       string
		partial bool
		want    string // "HOST PORT HASPORT", or "" when not an address
	}{
		{"[::]:", true, ":: 0 true"},           // "[::]:%d" % p
		{"[::]:80", true, ":: 0 true"},         // "[::]:80%d": not port 80
		{"0.0.0.0:80", true, "0.0.0.0 0 true"}, // "0.0.0.0:80{0}".format(x)
		{"0.0.0.0:", true, "0.0.0.0 0 true"},
		{"[::]", true, ":: 0 true"},
		{"[::", true, ""},
		{"0.0.0", true, ""},
		{"::", true, ""},
		{"::1:", true, ""},
		{"[::]:8443", false, ":: 8443 true"},
		{"[::]:99999", false, ":: 0 true"},
		{"0.0.0.0:http", false, "0.0.0.0 0 true"},
		{":8000", false, "0.0.0.0 8000 true"},
		{"::", false, ":: 0 false"},
		{"127.0.0.1", false, "127.0.0.1 0 false"},
		{"[::1]x", false, ""},
		{"example.com:80", false, ""},
		{"localhost:8000", false, "localhost 8000 true"},
	} {
		h, p, hp, ok := addrDefault(tsValue{known: true, str: c.s, partial: c.partial})
		got := ""
		if ok {
			got = fmt.Sprintf("%s %d %t", h, p, hp)
		}
		if got != c.want {
			t.Errorf("addrDefault(%q, partial %t) = %q, want %q", c.s, c.partial, got, c.want)
		}
	}
}
