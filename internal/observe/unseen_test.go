package observe

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// copyTree copies a fixture /proc tree, symbolic links as links.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, to)
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		}
		b, err := os.ReadFile(p) // #nosec G304 -- a fixture
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestObserveNamesWhatItSkipped: a namespace of --netns all whose sockets cannot be read
// (here a fixture process whose /proc/PID/net is missing) is not silently dropped: it is in
// Skipped and Unseen (and Warnings), and the observation the judge gets leaves it out.
func TestObserveNamesWhatItSkipped(t *testing.T) {
	root := t.TempDir()
	copyTree(t, fixtureRoot, root)
	pid := filepath.Join(root, "2000")
	if err := os.MkdirAll(filepath.Join(pid, "ns"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("net:[4026532999]", filepath.Join(pid, "ns", "net")); err != nil {
		t.Fatal(err)
	}
	snap, err := Observe(Options{ProcRoot: root, NetnsDir: t.TempDir(), Netns: NetnsAll, Source: SourceProcfs})
	if err != nil {
		t.Fatal(err)
	}
	const label = "net:[4026532999]"
	if !slices.Contains(snap.Skipped, label) {
		t.Errorf("skipped %q, want %s", snap.Skipped, label)
	}
	if len(snap.Unseen) != 1 || !strings.HasPrefix(snap.Unseen[0], "netns "+label+" skipped: ") || !slices.Contains(snap.Warnings, snap.Unseen[0]) {
		t.Errorf("unseen %q warnings %q", snap.Unseen, snap.Warnings)
	}
	o := snap.Observation()
	if !o.AllNamespaces || len(o.Unseen) != 1 {
		t.Errorf("observation: all %v unseen %q", o.AllNamespaces, o.Unseen)
	}
	for _, ns := range o.Namespaces {
		if ns.Label == label {
			t.Errorf("the skipped namespace is judged as if nothing listened in it")
		}
	}
	if len(o.Namespaces) == 0 || !o.Namespaces[0].Host {
		t.Errorf("namespaces %+v, want the host's first", o.Namespaces)
	}

	// The fixture as it is: nothing unseen.
	snap, err = Observe(Options{ProcRoot: fixtureRoot, NetnsDir: t.TempDir(), Netns: NetnsAll, Source: SourceProcfs})
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Unseen) != 0 || len(snap.Skipped) != 0 {
		t.Errorf("complete fixture: unseen %q skipped %q", snap.Unseen, snap.Skipped)
	}
}
