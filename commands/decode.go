package commands

import (
	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/internal/jsonscan"
)

// decodeTrackEvents reads a TrackEvents command in one pass
// (internal/jsonscan, TrackedData's fields by domain.ScanTrackedField,
// the decoder the projector reads the same payloads with), where
// encoding/json would validate the whole command, then decode it by
// reflection: that was half of what a handler spent on a batch. It
// reports false on anything it does not expect, and the caller then
// decodes with encoding/json, the reference (FuzzDecodeTrackEvents ties
// the two). Raw values alias b.
func decodeTrackEvents(b []byte, c *TrackEvents) bool {
	d := jsonscan.New(b)
	sawEvents := false
	ok := d.Object(func(key []byte) bool {
		if string(key) == "events" {
			// encoding/json would decode a second list over the first.
			if sawEvents || d.Null() {
				return false
			}
			sawEvents = true
			c.Events = []TrackEvent{} // [] is an empty list, not none
			return d.Array(func() bool {
				c.Events = append(c.Events, TrackEvent{})
				return decodeTrackEvent(d, &c.Events[len(c.Events)-1])
			})
		}
		if known, ok := scanHeaderField(d, key, &c.Header); known {
			return ok
		}
		return d.Other(key, trackEventsKeys)
	})
	return ok && d.End()
}

var (
	trackEventsKeys = jsonscan.FieldNames[TrackEvents]()
	trackEventKeys  = jsonscan.FieldNames[TrackEvent]()
)

func decodeTrackEvent(d *jsonscan.Scanner, t *TrackEvent) bool {
	return d.Object(func(key []byte) bool {
		switch string(key) {
		case "eventId":
			return d.Str(&t.EventID)
		case "projectId":
			return d.Str(&t.ProjectID)
		case "organizationId":
			return d.Str(&t.OrganizationID)
		case "occurredAt":
			return d.Time(&t.OccurredAt)
		case "event":
			if d.Null() {
				return true
			}
			return d.Object(func(key []byte) bool {
				if known, ok := domain.ScanTrackedField(d, key, &t.Event); known {
					return ok
				}
				return d.Other(key, domain.TrackedKeys)
			})
		}
		if known, ok := scanHeaderField(d, key, &t.Header); known {
			return ok
		}
		return d.Other(key, trackEventKeys)
	})
}

func scanHeaderField(d *jsonscan.Scanner, key []byte, h *Header) (known, ok bool) {
	switch string(key) {
	case "commandId":
		return true, d.Str(&h.CommandID)
	case "correlationId":
		return true, d.Str(&h.CorrelationID)
	case "issuedAt":
		return true, d.Time(&h.IssuedAt)
	}
	return false, true
}
