package policy

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with a policy file, at a place in it.
type Problem struct {
	// File is the policy's name as given to Load or Parse.
	File string
	// Line and Column locate the offending key or value, 1-based.
	Line, Column int
	// Path is the field path, such as "services[1].port"; empty for problems with the file as a
	// whole (encoding, syntax, size).
	Path string
	// Msg says what is wrong, and how to put it right where that is not obvious.
	Msg string
}

// Error formats the problem as FILE:LINE:COL: PATH: MSG.
func (p *Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", p.Line, p.Column)
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// InvalidError is returned for a policy that cannot be used. It lists every problem found, in
// file order. errors.As finds it, and through Unwrap each *Problem too.
type InvalidError struct {
	File     string
	Problems []*Problem
	// Truncated is set when more problems were found than MaxProblems; the rest are not listed.
	Truncated bool
}

// Error lists the problems, one a line.
func (e *InvalidError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.Error())
	}
	if e.Truncated {
		fmt.Fprintf(&b, "\n%s: too many problems; only the first %d are listed", e.File, MaxProblems)
	}
	return b.String()
}

// Unwrap returns the problems, so errors.As can reach each *Problem.
func (e *InvalidError) Unwrap() []error {
	errs := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		errs[i] = p
	}
	return errs
}

// maxMsgLen bounds a problem's message and path.
const maxMsgLen = 512

func clip(s string) string {
	if len(s) <= maxMsgLen {
		return s
	}
	return strings.ToValidUTF8(s[:maxMsgLen], "") + "…"
}

// problems collects Problems for one file, or for a policy read from several (LoadFiles): a view
// made by in records into its root's list under its own file name.
type problems struct {
	file      string
	list      []*Problem
	truncated bool
	root      *problems
}

// in is the view of ps that names file in its problems ("" or ps's own file: ps itself).
func (ps *problems) in(file string) *problems {
	if ps == nil {
		return nil
	}
	r := ps
	if ps.root != nil {
		r = ps.root
	}
	if file == "" || file == r.file {
		return r
	}
	return &problems{file: file, root: r}
}

// add records a problem. A nil *problems records nothing: the defaults step resolves allow lists
// with the validator's code and leaves the reporting to it.
func (ps *problems) add(at Position, path, format string, args ...any) {
	if ps == nil {
		return
	}
	r := ps
	if ps.root != nil {
		r = ps.root
	}
	if len(r.list) >= MaxProblems {
		r.truncated = true
		return
	}
	// Messages quote what the file says; a megabyte key must not come back a megabyte long.
	msg := clip(fmt.Sprintf(format, args...))
	r.list = append(r.list, &Problem{File: ps.file, Line: at.Line, Column: at.Column, Path: clip(path), Msg: msg})
}

func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	return &InvalidError{File: ps.file, Problems: ps.list, Truncated: ps.truncated}
}
