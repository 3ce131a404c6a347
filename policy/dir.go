package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The layout of a policy directory: MainFile with the globals and the host's services, and
// drop-ins, DropInDir/*.yaml, with scopes only.
const (
	MainFile  = "bindguard.yaml"
	DropInDir = "bindguard.d"
)

// LoadDir reads the policy directory dir as one policy: dir/bindguard.yaml (MainFile, native or
// seed format: the globals, the host's services, and scopes if it likes), then each drop-in
// dir/bindguard.d/*.yaml (DropIns) in the order of their names. Other files in dir are not read
// (it may hold TLS keys or a web configuration). Problems name the file they are in.
func LoadDir(dir string) (*Policy, error) {
	main := filepath.Join(dir, MainFile)
	if _, err := os.Stat(main); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("policy: directory %s has no %s (a policy directory holds %s and drop-ins in %s/)", dir, MainFile, MainFile, DropInDir)
		}
		return nil, fmt.Errorf("policy: %w", err)
	}
	dropins, err := DropIns(dir)
	if err != nil {
		return nil, err
	}
	p, err := LoadFiles(main, dropins...)
	if err != nil {
		return nil, err
	}
	p.Source = dir
	return p, nil
}

// DropIns lists the drop-ins of the policy directory dir: the files dir/bindguard.d/*.yaml,
// sorted by name, names starting with "." left out (editors' and package managers' temporary
// files). None when the drop-in directory does not exist.
func DropIns(dir string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(dir, DropInDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	var out []string
	for _, e := range entries {
		if name := e.Name(); strings.HasSuffix(name, ".yaml") && !strings.HasPrefix(name, ".") {
			out = append(out, filepath.Join(dir, DropInDir, name))
		}
	}
	slices.Sort(out)
	return out, nil
}

// LoadFiles reads a main policy file and drop-ins as one policy. The main file is any policy
// (native or seed format). A drop-in holds `scopes:` and optionally `version: 1`, nothing else:
// the globals (trusted proxies, networks, proxy, monitor) and the host's services have one
// place, the main file, so that a drop-in (one per container, from an LXC template) cannot
// widen what the host trusts. The scopes of all files are validated together (names unique,
// matchers not overlapping, allow lists against the main file's networks); each problem names
// its file and line. Source is the main file.
func LoadFiles(main string, dropins ...string) (*Policy, error) {
	src, err := readPolicyFile(main)
	if err != nil {
		return nil, err
	}
	files := make([]source, 0, len(dropins))
	for _, name := range dropins {
		b, err := readPolicyFile(name)
		if err != nil {
			return nil, err
		}
		files = append(files, source{name: name, src: b})
	}
	return parseFiles(main, src, files)
}

// dropInFile decodes a drop-in: its scopes, each recorded as declared in the decoder's file.
func (d *decoder) dropInFile(src []byte, main string) ([]Scope, []scopeLoc) {
	root := d.document(src)
	if root == nil {
		return nil, nil
	}
	entries, ok := d.mapping(root, "", "a mapping with scopes:")
	if !ok {
		return nil, nil
	}
	var (
		scopes []Scope
		locs   []scopeLoc
		wrote  bool
	)
	for _, e := range entries {
		switch {
		case e.key == "version":
			if v, ok := d.version(e.value, "version"); ok && v != 1 {
				d.ps.add(posOf(unwrap(e.value)), "version", "unsupported version %d; this bindguard reads version 1", v)
			}
		case e.key == "scopes":
			wrote = true
			scopes, locs = d.scopes(e.value, "scopes")
		case slices.Contains(nativeKeys, e.key):
			d.ps.add(e.keyPos, joinPath("", e.key), "a drop-in holds only scopes: (and version: 1); %s belongs in the main policy file, %s", e.key, main)
		default:
			msg := fmt.Sprintf("unknown field %q; a drop-in holds only scopes: (and version: 1)", e.key)
			if s := suggest(e.key, []string{"scopes", "version"}); s != "" {
				msg = fmt.Sprintf("unknown field %q; did you mean %q? A drop-in holds only scopes: (and version: 1)", e.key, s)
			}
			d.ps.add(e.keyPos, joinPath("", e.key), "%s", msg)
		}
	}
	if !wrote {
		d.ps.add(posOf(unwrap(root)), "scopes", "missing; a drop-in declares scopes: (scopes: [] declares none)")
	}
	file := d.ps.file
	for i := range locs {
		locs[i].file = file
	}
	return scopes, locs
}
