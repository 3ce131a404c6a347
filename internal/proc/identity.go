package proc

import (
	"bufio"
	"bytes"
	"strconv"
)

// maxUserDB bounds the /etc/passwd and /etc/group read from a process's root: a container is
// hostile ground, and a huge file must not exhaust the audit's memory.
const maxUserDB = 4 << 20

// status is what readProcess takes from /proc/PID/status.
type status struct {
	uid, gid int // real ids as the reader's user namespace sees them; -1 when absent
	// nspid is the pid in the innermost pid namespace (the NSpid line's last field); 0 when
	// the line is absent or the process is in the reader's own pid namespace only.
	nspid int
}

// parseStatus reads the Uid:, Gid: and NSpid: lines of /proc/PID/status.
func parseStatus(b []byte) status {
	st := status{uid: -1, gid: -1}
	for line := range bytes.Lines(b) {
		key, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		switch string(key) {
		case "Uid", "Gid", "NSpid":
		default:
			continue // the other lines are not split into fields
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			continue
		}
		switch string(key) {
		case "Uid":
			if v, err := strconv.ParseUint(string(f[0]), 10, 32); err == nil {
				st.uid = int(v)
			}
		case "Gid":
			if v, err := strconv.ParseUint(string(f[0]), 10, 32); err == nil {
				st.gid = int(v)
			}
		case "NSpid":
			if len(f) > 1 {
				if v, err := strconv.ParseUint(string(f[len(f)-1]), 10, 31); err == nil {
					st.nspid = int(v)
				}
			}
		}
	}
	return st
}

// idRange is one line of /proc/PID/uid_map or gid_map: ids inside..inside+count-1 of the
// process's user namespace are outside..outside+count-1 in the reader's.
type idRange struct{ inside, outside, count uint64 }

// parseIDMap reads a uid_map or gid_map; malformed lines are ignored (an id they would have
// mapped stays unmapped, so it is shown as the host sees it).
func parseIDMap(b []byte) []idRange {
	var out []idRange
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) != 3 {
			continue
		}
		var r idRange
		var err error
		if r.inside, err = strconv.ParseUint(string(f[0]), 10, 32); err != nil {
			continue
		}
		if r.outside, err = strconv.ParseUint(string(f[1]), 10, 32); err != nil {
			continue
		}
		if r.count, err = strconv.ParseUint(string(f[2]), 10, 33); err != nil || r.count == 0 {
			continue
		}
		out = append(out, r)
	}
	return out
}

// inside maps an id as the reader sees it to the id inside the process's user namespace.
func inside(m []idRange, id int) (int, bool) {
	if id < 0 {
		return 0, false
	}
	u := uint64(id)
	for _, r := range m {
		if u >= r.outside && u-r.outside < r.count {
			return int(r.inside + (u - r.outside)), true // #nosec G115 -- ids are 32-bit
		}
	}
	return 0, false
}

// identity reports whether the map is the identity over the whole id space (a privileged
// container, or the host's own user namespace).
func identity(m []idRange) bool {
	return len(m) == 1 && m[0].inside == 0 && m[0].outside == 0 && m[0].count == 1<<32-1
}

// parseIDNames reads a passwd or group file into id -> name: the first and third fields of
// each line, the first line for an id winning. Names are sanitized by the caller.
func parseIDNames(b []byte) map[int]string {
	out := map[int]string{}
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		f := bytes.SplitN(line, []byte(":"), 4)
		if len(f) < 3 || len(f[0]) == 0 {
			continue
		}
		id, err := strconv.ParseUint(string(f[2]), 10, 32)
		if err != nil {
			continue
		}
		if _, dup := out[int(id)]; !dup {
			out[int(id)] = string(f[0])
		}
	}
	return out
}
