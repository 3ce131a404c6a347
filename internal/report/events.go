package report

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// SchemaEvents names the version of the drift events' document.
const SchemaEvents = "bindguard.events.v1"

// SchemaEventsV2 names version 2: every event has netns, the latency fields time, judged_at and
// stored_at (RFC 3339 with nanoseconds), old_address on a changed socket, and the kind resolved.
// Added within v2 (readers that ignore unknown kinds and fields are unaffected): the kind
// denied, source enforce, with a denial object (rule, errno, mode, scope, cgroups, container,
// process_gone, count), from serve --enforce (docs/enforce.md); v1 documents never have it.
const SchemaEventsV2 = "bindguard.events.v2"

// Events is the document of drift events (schema bindguard.events.v1), from the monitor's
// /api/v1/events and `bindguard events --format json`. The event record is the monitor's
// (monitor.Event): the envelope is generic so that report does not import the monitor.
type Events[E any] struct {
	Schema string `json:"schema"`
	// Since is the start of the window, RFC 3339 in UTC.
	Since  string `json:"since"`
	Events []E    `json:"events"`
}

// NewEvents is the document of the events since a time; nil events are written as [].
func NewEvents[E any](since time.Time, events []E) Events[E] {
	return Events[E]{Schema: SchemaEvents, Since: since.UTC().Format(time.RFC3339), Events: nonNil(events)}
}

// NewEventsV2 is NewEvents for schema bindguard.events.v2.
func NewEventsV2[E any](since time.Time, events []E) Events[E] {
	d := NewEvents(since, events)
	d.Schema = SchemaEventsV2
	return d
}

// Encode writes the document as JSON; indent makes it two-space indented, for people.
func (d Events[E]) Encode(w io.Writer, indent bool) error {
	enc := json.NewEncoder(w)
	if indent {
		enc.SetIndent("", "  ")
	}
	return enc.Encode(d)
}

// DecodeEvents reads an events document and checks its schema (v1).
func DecodeEvents[E any](r io.Reader) (*Events[E], error) { return decodeEvents[E](r, SchemaEvents) }

// DecodeEventsV2 reads a bindguard.events.v2 document.
func DecodeEventsV2[E any](r io.Reader) (*Events[E], error) {
	return decodeEvents[E](r, SchemaEventsV2)
}

func decodeEvents[E any](r io.Reader, schema string) (*Events[E], error) {
	var d Events[E]
	if err := json.NewDecoder(r).Decode(&d); err != nil {
		return nil, err
	}
	if d.Schema != schema {
		return nil, fmt.Errorf("schema %q, want %s", d.Schema, schema)
	}
	return &d, nil
}
