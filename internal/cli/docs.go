package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra/doc"
)

// WriteDocs writes what a package installs besides the binary, generated from the command tree
// itself so that it cannot drift from --help: man pages in dir/man1 (bindguard.1 and one per
// subcommand, section 1) and shell completions in dir/completions (bindguard.bash, _bindguard
// for zsh, bindguard.fish). date is the man pages' date (for a reproducible package, the
// commit's). dir is created if missing; existing files in it are replaced.
func WriteDocs(dir string, date time.Time) error {
	root := newRoot(Streams{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard, Now: time.Now})
	root.DisableAutoGenTag = true
	root.InitDefaultCompletionCmd() // as Execute adds it: bindguard completion SHELL gets its pages too
	man := filepath.Join(dir, "man1")
	comp := filepath.Join(dir, "completions")
	for _, d := range []string{man, comp} {
		if err := os.MkdirAll(d, 0o755); err != nil { // #nosec G301 -- build output, installed world-readable
			return fmt.Errorf("docs: %w", err)
		}
	}
	header := &doc.GenManHeader{Title: "BINDGUARD", Section: "1", Source: "bindguard", Manual: "bindguard manual", Date: &date}
	if err := doc.GenManTree(root, header, man); err != nil {
		return fmt.Errorf("docs: man pages: %w", err)
	}
	for name, gen := range map[string]func(io.Writer) error{
		"bindguard.bash": func(w io.Writer) error { return root.GenBashCompletionV2(w, true) },
		"_bindguard":     root.GenZshCompletion,
		"bindguard.fish": func(w io.Writer) error { return root.GenFishCompletion(w, true) },
	} {
		var b bytes.Buffer
		if err := gen(&b); err != nil {
			return fmt.Errorf("docs: %s: %w", name, err)
		}
		if b.Len() == 0 {
			return errors.New("docs: " + name + ": empty completion script")
		}
		if err := os.WriteFile(filepath.Join(comp, name), b.Bytes(), 0o644); err != nil { // #nosec G306 -- installed world-readable
			return fmt.Errorf("docs: %w", err)
		}
	}
	return nil
}
