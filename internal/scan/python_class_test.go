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
