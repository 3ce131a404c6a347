package policy

import _ "embed"

//go:embed schema.json
var schemaJSON []byte

// Schema returns a JSON Schema (draft 2020-12) of the native format, for editors that
// validate YAML as they type. The loader is stricter than any schema can be: it also refuses
// overlapping binds, addresses that contradict the access class and allow lists that cover
// everything.
func Schema() []byte { return append([]byte(nil), schemaJSON...) }
