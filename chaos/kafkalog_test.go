package chaos

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestTrackedID(t *testing.T) {
	const project = "p1"
	envelope := `{"id":"e1","type":"EventTracked","projectId":"p1","data":{}}`
	tests := []struct {
		name   string
		rec    *kgo.Record
		wantID string
		wantOK bool
	}{
		{"headers and envelope", &kgo.Record{Value: []byte(envelope), Headers: []kgo.RecordHeader{
			{Key: "event-id", Value: []byte("e1")}, {Key: "event-type", Value: []byte("EventTracked")}}}, "e1", true},
		{"envelope only", &kgo.Record{Value: []byte(envelope)}, "e1", true},
		{"an outcome is not a tracked event", &kgo.Record{Value: []byte(`{"id":"o1","type":"EventProcessed","projectId":"p1"}`)}, "", false},
		{"another project", &kgo.Record{Value: []byte(`{"id":"e2","type":"EventTracked","projectId":"p2"}`)}, "", false},
		{"not an envelope", &kgo.Record{Value: []byte(`raw bytes`)}, "", false},
	}
	for _, tt := range tests {
		id, ok := trackedID(tt.rec, project)
		if id != tt.wantID || ok != tt.wantOK {
			t.Errorf("%s: trackedID = %q, %v; want %q, %v", tt.name, id, ok, tt.wantID, tt.wantOK)
		}
	}
}
