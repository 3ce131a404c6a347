//go:build !cgo

package scan

import "errors"

// treeSitter says this build parses Python, JavaScript and TypeScript: it does not, because
// their parsers (tree-sitter) need cgo. Their files are counted and named as not scanned.
const treeSitter = false

func parseTS(l tsLang, src []byte) (*tsNode, error) {
	return nil, errors.New("no " + string(l) + " parser in this build (built without cgo)")
}
