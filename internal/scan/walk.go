package scan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/bindguard/bindguard/policy"
)

// DefaultMaxFileSize is the largest file read (1 MiB); bigger files are skipped with a problem.
const DefaultMaxFileSize = 1 << 20

// MaxPackageBytes bounds the Go source of one package directory held at once (64 MiB): files
// beyond it are skipped, each named as a problem, so memory stays bounded by the workers times
// this.
const MaxPackageBytes = 64 << 20

// Options configure a scan.
type Options struct {
	// Policy judges the findings; nil means the built-in catalogue.
	Policy *policy.Policy
	// PolicyName names it in reasons ("bindguard.yaml"); "" means "the policy" or "the
	// built-in catalogue".
	PolicyName string
	// Workers bounds the files scanned at once; 0 means GOMAXPROCS.
	Workers int
	// MaxFileSize is the largest file read; 0 means DefaultMaxFileSize.
	MaxFileSize int64
	// IncludeVendored scans vendor/ and node_modules/ too.
	IncludeVendored bool
	// IncludeGenerated scans Go files marked "// Code generated ... DO NOT EDIT.".
	IncludeGenerated bool
	// NoIgnore disregards .gitignore files.
	NoIgnore bool
}

// unit is one piece of work: a Go package directory, or one other file.
type unit struct {
	root string // the scanned root, for relative names
	dir  string
	kind fileKind
	// files are absolute paths.
	files []string
}

// Scan walks each root (a directory or a file) and returns every finding, judged. It fails
// only when a root cannot be read at all; problems with single files are in the result.
func Scan(ctx context.Context, roots []string, o Options) (*Result, error) {
	if o.MaxFileSize <= 0 {
		o.MaxFileSize = DefaultMaxFileSize
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	j := judge{p: o.Policy, name: o.PolicyName}
	if j.p == nil {
		j.p, j.name = policy.Builtin(), "the built-in catalogue"
	} else if j.name == "" {
		j.name = "the policy"
	}
	res := &Result{Roots: roots, Findings: []Finding{}, Problems: []Problem{}, Unscanned: []string{}, Policy: j.name}
	var units []unit
	unscanned := map[string]int{}
	for _, root := range roots {
		us, probs, err := collect(root, o, unscanned)
		if err != nil {
			return nil, err
		}
		units = append(units, us...)
		res.Problems = append(res.Problems, probs...)
	}
	for lang, n := range unscanned {
		res.Unscanned = append(res.Unscanned, fmt.Sprintf("%s: %d files (this build has no cgo, which the tree-sitter parser needs)", lang, n))
	}
	sort.Strings(res.Unscanned)

	var mu sync.Mutex
	mods := make([]*pyMod, len(units)) // the Python files' summaries, by unit
	work := make(chan int)
	var wg sync.WaitGroup
	for range o.Workers {
		wg.Go(func() {
			for ui := range work {
				u := units[ui]
				found, probs, n, mod := runUnit(u, o)
				for i := range found {
					j.applyRule(&found[i])
					j.verdict(&found[i])
					suppress(&found[i], found[i].comments)
				}
				if mod != nil {
					mod.root, mod.abs = u.root, u.files[0]
					mods[ui] = mod
				}
				mu.Lock()
				res.Findings = append(res.Findings, found...)
				res.Problems = append(res.Problems, probs...)
				res.Files += n
				mu.Unlock()
			}
		})
	}
	err := feed(ctx, len(units), work)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	// Python calls into other files of the same root (python_pkg.go).
	found, err := crossFiles(ctx, mods, o)
	if err != nil {
		return nil, err
	}
	for i := range found {
		j.applyRule(&found[i])
		j.verdict(&found[i])
		suppress(&found[i], found[i].comments)
	}
	res.Findings = append(res.Findings, found...)
	sortFindings(res.Findings)
	sort.Slice(res.Problems, func(a, b int) bool {
		return res.Problems[a].String() < res.Problems[b].String()
	})
	return res, nil
}

// feed sends 0..n-1 to work, then closes it; it stops early when ctx is done.
func feed(ctx context.Context, n int, work chan<- int) error {
	defer close(work)
	for i := range n {
		select {
		case work <- i:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// runUnit scans one unit; a panic in a parser becomes a problem, never a crash. A Python
// file's summary is mod.
func runUnit(u unit, o Options) (out []Finding, probs []Problem, n int, mod *pyMod) {
	defer func() {
		if r := recover(); r != nil {
			out, mod = nil, nil
			probs = append(probs, Problem{File: rel(u.root, u.files[0]), Msg: fmt.Sprintf("internal error while scanning: %v", r)})
		}
	}()
	if u.kind == kindGo {
		out, probs, n = scanGoDir(u, o)
		return out, probs, n, nil
	}
	name := rel(u.root, u.files[0])
	src, err := readCapped(u.files[0], o.MaxFileSize)
	if err != nil {
		return nil, []Problem{{File: name, Msg: err.Error()}}, 0, nil
	}
	if u.kind == kindPython {
		out, probs, mod = scanPythonMod(name, src)
		return out, probs, 1, mod
	}
	out, probs = scanBytes(u.kind, name, src)
	return out, probs, 1, nil
}

// crossFiles is the second pass over Python files: per root, the files whose calls resolve to
// another file's class or function with a bind host that is not static there, in parallel. A
// panic is dropped with the findings of that file (the first pass already scanned it).
func crossFiles(ctx context.Context, mods []*pyMod, o Options) ([]Finding, error) {
	byRoot := map[string][]*pyMod{}
	var roots []string
	flagged := map[string]bool{}
	for _, m := range mods {
		if m == nil {
			continue
		}
		if byRoot[m.root] == nil {
			roots = append(roots, m.root)
		}
		byRoot[m.root] = append(byRoot[m.root], m)
		flagged[m.root] = flagged[m.root] || m.flagged || len(m.bases) > 0
	}
	type job struct {
		ix *pyIndex
		m  *pyMod
	}
	var jobs []job
	for _, r := range roots {
		if !flagged[r] {
			continue
		}
		ix := newPyIndex(byRoot[r])
		for _, m := range byRoot[r] {
			if ix.candidate(m) {
				jobs = append(jobs, job{ix, m})
			}
		}
	}
	// The index's resolution cache is filled above; the workers share it read-only below, so
	// each builds its own.
	out := make([][]Finding, len(jobs))
	work := make(chan int)
	var wg sync.WaitGroup
	read := func(m *pyMod) ([]byte, error) { return readCapped(m.abs, o.MaxFileSize) }
	for range o.Workers {
		wg.Go(func() {
			ixs := map[*pyIndex]*pyIndex{}
			for i := range work {
				jb := jobs[i]
				ix := ixs[jb.ix]
				if ix == nil {
					ix = &pyIndex{mods: jb.ix.mods, bySuffix: jb.ix.bySuffix, cache: map[string]pyTarget{}}
					ixs[jb.ix] = ix
				}
				func() {
					defer func() { _ = recover() }()
					src, err := read(jb.m)
					if err != nil {
						return
					}
					out[i] = ix.crossFile(jb.m, src, read)
				}()
			}
		})
	}
	err := feed(ctx, len(jobs), work)
	wg.Wait()
	var all []Finding
	for _, f := range out {
		all = append(all, f...)
	}
	return all, err
}

// jsLangs are the grammars of the JavaScript-family kinds.
var jsLangs = map[fileKind]tsLang{kindJS: langJS, kindTS: langTS, kindTSX: langTSX}

// scanBytes runs the scanner of a kind over one file's bytes and applies suppressions.
func scanBytes(kind fileKind, name string, src []byte) ([]Finding, []Problem) {
	var fs []Finding
	var probs []Problem
	comments := hashComments(src, "#")
	switch kind {
	case kindDockerfile:
		fs, probs = scanDockerfile(name, src)
	case kindCompose:
		fs, probs = scanCompose(name, src)
	case kindYAML:
		fs, probs = scanKube(name, src)
	case kindRedis:
		fs, probs = scanRedis(name, src)
	case kindPostgres:
		fs, probs = scanPostgres(name, src)
	case kindNginx:
		fs, probs = scanNginx(name, src)
	case kindMongo:
		fs, probs = scanMongo(name, src)
	case kindSSHD:
		fs, probs = scanSSHD(name, src)
	case kindSystemd:
		comments = hashComments(src, "#", ";")
		fs, probs = scanSystemd(name, src)
	case kindPython:
		fs, probs = scanPython(name, src)
		return fs, probs // comments from the syntax tree
	case kindJS, kindTS, kindTSX:
		fs, probs = scanJS(jsLangs[kind], name, src)
		return fs, probs
	}
	for i := range fs {
		fs[i].comments = comments
	}
	return fs, probs
}

// readCapped reads a file of at most max bytes.
func readCapped(name string, max int64) ([]byte, error) {
	f, err := os.Open(name) // #nosec G304 -- reading the files the user asked to scan is the point
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("larger than %d bytes; skipped", max)
	}
	return b, nil
}

func rel(root, name string) string {
	r, err := filepath.Rel(root, name)
	if err != nil || r == "." {
		r = filepath.Base(name)
	}
	return filepath.ToSlash(r)
}

// fileKind is which scanner reads a file.
type fileKind int

const (
	kindNone fileKind = iota
	kindGo
	kindDockerfile
	kindCompose
	kindYAML
	kindRedis
	kindPostgres
	kindNginx
	kindSystemd
	kindMongo
	kindSSHD
	kindPython
	kindJS
	kindTS
	kindTSX
)

// classify picks a file's scanner by its name and directory; lang names a language this
// build finds but cannot scan.
func classify(relPath string) (kind fileKind, lang string) {
	base := strings.ToLower(path.Base(relPath))
	dir := strings.ToLower(path.Dir(relPath))
	ext := path.Ext(base)
	switch {
	case ext == ".go":
		return kindGo, ""
	case base == "dockerfile" || base == "containerfile" || strings.HasPrefix(base, "dockerfile.") || ext == ".dockerfile":
		return kindDockerfile, ""
	case (strings.HasPrefix(base, "docker-compose") || strings.HasPrefix(base, "compose")) && (ext == ".yml" || ext == ".yaml"):
		return kindCompose, ""
	case ext == ".yml" || ext == ".yaml":
		return kindYAML, ""
	case strings.HasPrefix(base, "mongod") && ext == ".conf":
		return kindMongo, ""
	case base == "sshd_config" || (ext == ".conf" && strings.HasSuffix(dir, "sshd_config.d")):
		return kindSSHD, ""
	case strings.HasPrefix(base, "redis") && ext == ".conf":
		return kindRedis, ""
	case base == "postgresql.conf" || base == "postgresql.auto.conf":
		return kindPostgres, ""
	case base == "nginx.conf" || (ext == ".conf" && strings.Contains(dir, "nginx")) || strings.Contains(dir, "sites-available") || strings.Contains(dir, "sites-enabled"):
		return kindNginx, ""
	case ext == ".socket":
		return kindSystemd, ""
	}
	if k, lang := treeSitterKind(ext); lang != "" {
		if !treeSitter {
			return kindNone, lang
		}
		return k, ""
	}
	return kindNone, ""
}

// treeSitterKind is the kind and language of a file the tree-sitter scanners read, by its
// extension ("" when none does).
func treeSitterKind(ext string) (fileKind, string) {
	switch ext {
	case ".py":
		return kindPython, "python"
	case ".js", ".mjs", ".cjs", ".jsx":
		return kindJS, "javascript"
	case ".ts", ".mts", ".cts":
		return kindTS, "typescript"
	case ".tsx":
		return kindTSX, "typescript"
	}
	return kindNone, ""
}

// collect walks one root into units. Symbolic links are never followed (a link to a
// directory or file is skipped, so nothing outside the tree is read).
func collect(root string, o Options, unscanned map[string]int) ([]unit, []Problem, error) {
	info, err := os.Lstat(root)
	if err != nil {
		return nil, nil, fmt.Errorf("scan: %w", err)
	}
	if !info.IsDir() {
		if !info.Mode().IsRegular() {
			return nil, nil, fmt.Errorf("scan: %s: not a regular file or directory (symbolic links are not followed)", root)
		}
		base := filepath.Dir(root)
		k, lang := classify(filepath.Base(root))
		if lang != "" {
			unscanned[lang]++
		}
		if k == kindNone {
			return nil, nil, nil
		}
		return []unit{{root: base, dir: base, kind: k, files: []string{root}}}, nil, nil
	}
	var units []unit
	var probs []Problem
	goFiles := map[string][]string{}
	var goDirs []string
	ign := &ignorer{}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		r := rel(root, p)
		if p == root {
			r = "."
		}
		if err != nil {
			probs = append(probs, Problem{File: r, Msg: err.Error()})
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 || (!d.IsDir() && !d.Type().IsRegular()) {
			return nil
		}
		if d.IsDir() {
			name := d.Name()
			if p != root && (name == ".git" || (!o.IncludeVendored && (name == "vendor" || name == "node_modules"))) {
				return fs.SkipDir
			}
			if p != root && !o.NoIgnore && ign.ignored(r, true) {
				return fs.SkipDir
			}
			if !o.NoIgnore {
				if src, err := readCapped(filepath.Join(p, ".gitignore"), o.MaxFileSize); err == nil {
					ign.add(r, src)
				} else if !errors.Is(err, fs.ErrNotExist) {
					probs = append(probs, Problem{File: path.Join(r, ".gitignore"), Msg: err.Error()})
				}
			}
			return nil
		}
		if !o.NoIgnore && ign.ignored(r, false) {
			return nil
		}
		k, lang := classify(r)
		if lang != "" {
			unscanned[lang]++
		}
		switch k {
		case kindNone:
		case kindGo:
			dir := filepath.Dir(p)
			if _, ok := goFiles[dir]; !ok {
				goDirs = append(goDirs, dir)
			}
			goFiles[dir] = append(goFiles[dir], p)
		default:
			units = append(units, unit{root: root, dir: filepath.Dir(p), kind: k, files: []string{p}})
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("scan: %w", err)
	}
	for _, d := range goDirs {
		units = append(units, unit{root: root, dir: d, kind: kindGo, files: goFiles[d]})
	}
	return units, probs, nil
}

// ignorer is a .gitignore matcher: the patterns of every .gitignore met so far, each relative
// to its directory. Later patterns win; "!" negates; a trailing "/" matches directories only;
// a pattern with a "/" before its end is anchored to its directory; "**" matches any number of
// path segments. (A directory that is ignored is not entered, so a negation cannot re-include
// a file inside it, as in git.)
type ignorer struct {
	pats []ignorePattern
}

type ignorePattern struct {
	base     string // directory of the .gitignore, "." for the root
	segs     []string
	negate   bool
	dirOnly  bool
	anchored bool
}

func (g *ignorer) add(dir string, src []byte) {
	for _, line := range bytes.Split(src, []byte("\n")) {
		s := strings.TrimRight(string(line), "\r")
		if strings.HasPrefix(s, `\#`) || strings.HasPrefix(s, `\!`) {
			s = s[1:]
		} else if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		s = strings.TrimRight(s, " ")
		p := ignorePattern{base: dir}
		if strings.HasPrefix(s, "!") {
			p.negate, s = true, s[1:]
		}
		if strings.HasSuffix(s, "/") {
			p.dirOnly, s = true, strings.TrimRight(s, "/")
		}
		if strings.Contains(s, "/") {
			p.anchored = true
		}
		s = strings.TrimPrefix(s, "/")
		if s == "" {
			continue
		}
		p.segs = strings.Split(s, "/")
		g.pats = append(g.pats, p)
	}
}

// ignored reports whether the path (relative to the root, slash-separated) is ignored.
func (g *ignorer) ignored(rel string, isDir bool) bool {
	out := false
	for _, p := range g.pats {
		if p.dirOnly && !isDir {
			continue
		}
		sub := rel
		if p.base != "." {
			var ok bool
			sub, ok = strings.CutPrefix(rel, p.base+"/")
			if !ok {
				continue
			}
		}
		segs := strings.Split(sub, "/")
		var m bool
		if p.anchored {
			m = matchSegs(p.segs, segs)
		} else {
			m = matchSegs(p.segs, segs[len(segs)-1:])
		}
		if m {
			out = !p.negate
		}
	}
	return out
}

// matchSegs matches glob segments against path segments, "**" spanning any number of them.
func matchSegs(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			rest := pat[1:]
			for i := 0; i <= len(name); i++ {
				if matchSegs(rest, name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, err := path.Match(pat[0], name[0]); err != nil || !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}
