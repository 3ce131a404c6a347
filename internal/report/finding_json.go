package report

import (
	"strconv"
	"unicode/utf8"

	"github.com/bindguard/bindguard/internal/audit"
	"github.com/bindguard/bindguard/internal/observed"
)

// appendFinding appends f (a FindingV2 of it, with netns as its label) as
// json.MarshalIndent(f, "    ", "  ") writes it, byte for byte,
// without reflection and without MarshalIndent's second pass over the output (which was most
// of the cost of a large audit's document: 47 % of BenchmarkJSON). TestFindingJSONMatches and
// FuzzFindingJSON hold it to encoding/json's output; TestFindingJSONFields fails when a field
// is added to the types it writes, so it cannot go stale silently.
func appendFinding(b []byte, f *audit.Finding, netns string) []byte {
	const in1, in2, in3 = "\n      ", "\n        ", "\n          "
	b = append(b, '{')
	b = appendKey(b, in1, "status")
	b = appendString(b, string(f.Status))
	b = append(b, ',')
	b = appendKey(b, in1, "severity")
	b = appendString(b, f.Severity.String())
	b = append(b, ',')
	b = appendKey(b, in1, "service")
	if f.Service == nil {
		b = append(b, "null"...)
	} else {
		b = appendString(b, *f.Service)
	}
	b = append(b, ',')
	b = appendKey(b, in1, "protocol")
	b = appendString(b, string(f.Protocol))
	b = append(b, ',')
	b = appendKey(b, in1, "expected")
	if e := f.Expected; e == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '{')
		b = appendKey(b, in2, "address")
		b = appendString(b, e.Address)
		b = append(b, ',')
		b = appendKey(b, in2, "port")
		b = strconv.AppendUint(b, uint64(e.Port), 10)
		b = append(b, ',')
		b = appendKey(b, in2, "access")
		b = appendString(b, string(e.Access))
		b = append(b, "\n      }"...)
	}
	b = append(b, ',')
	b = appendKey(b, in1, "actual")
	if a := f.Actual; a == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '{')
		b = appendKey(b, in2, "address")
		b = appendString(b, a.Address)
		b = append(b, ',')
		b = appendKey(b, in2, "port")
		b = strconv.AppendUint(b, uint64(a.Port), 10)
		b = append(b, ',')
		b = appendKey(b, in2, "family")
		b = appendString(b, string(a.Family))
		b = append(b, ',')
		b = appendKey(b, in2, "v6only")
		switch {
		case a.V6Only == nil:
			b = append(b, "null"...)
		case *a.V6Only:
			b = append(b, "true"...)
		default:
			b = append(b, "false"...)
		}
		b = append(b, ',')
		b = appendKey(b, in2, "exposure")
		b = appendString(b, string(a.Exposure))
		b = append(b, ',')
		b = appendKey(b, in2, "netns")
		b = appendString(b, a.Netns)
		b = append(b, ',')
		b = appendKey(b, in2, "process")
		if p := a.Process; p == nil {
			b = append(b, "null"...)
		} else {
			b = appendProcess(b, p, in3)
		}
		b = append(b, "\n      }"...)
	}
	b = append(b, ',')
	b = appendKey(b, in1, "reason")
	b = appendString(b, f.Reason)
	b = append(b, ',')
	b = appendKey(b, in1, "netns")
	b = appendString(b, netns)
	return append(b, "\n    }"...)
}

// appendProcess appends p as an object whose fields are indented by in (a newline and the
// spaces), closed two spaces less deep.
func appendProcess(b []byte, p *observed.Process, in string) []byte {
	b = append(b, '{')
	b = appendKey(b, in, "pid")
	b = strconv.AppendInt(b, int64(p.PID), 10)
	b = append(b, ',')
	b = appendKey(b, in, "name")
	b = appendString(b, p.Name)
	b = append(b, ',')
	b = appendKey(b, in, "exe")
	b = appendString(b, p.Exe)
	b = append(b, ',')
	b = appendKey(b, in, "user")
	b = appendString(b, p.User)
	b = append(b, ',')
	if p.Group != "" {
		b = appendKey(b, in, "group")
		b = appendString(b, p.Group)
		b = append(b, ',')
	}
	if p.ContainerPID != 0 {
		b = appendKey(b, in, "container_pid")
		b = strconv.AppendInt(b, int64(p.ContainerPID), 10)
		b = append(b, ',')
	}
	if p.ContainerUID != nil {
		b = appendKey(b, in, "container_uid")
		b = strconv.AppendInt(b, int64(*p.ContainerUID), 10)
		b = append(b, ',')
	}
	b = appendKey(b, in, "unit")
	b = appendString(b, p.Unit)
	b = append(b, ',')
	b = appendKey(b, in, "container")
	b = appendString(b, p.Container)
	b = append(b, in[:len(in)-2]...)
	return append(b, '}')
}

// appendKey appends the indent and a key (plain ASCII, no escaping needed) with its colon.
func appendKey(b []byte, in, key string) []byte {
	b = append(b, in...)
	b = append(b, '"')
	b = append(b, key...)
	return append(b, "\": "...)
}

const hexDigits = "0123456789abcdef"

// plainByte says which ASCII bytes appendString copies as they are: all but control
// characters, '"', '\\', '<', '>' and '&' (and bytes from 0x80, which start UTF-8 sequences).
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString appends s quoted as encoding/json quotes a string (with its default HTML
// escaping): control characters, '"', '\\', '<', '>', '&', U+2028 and U+2029 escaped, and
// invalid UTF-8 replaced by U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if plainByte[s[i]] {
			i++
			continue
		}
		if c := s[i]; c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
