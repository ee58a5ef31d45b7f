package projections

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/gamify/boost/domain"
)

// A batch decodes the same in halves at once as one record at a time,
// undecodable records in their places.
func TestDecodeAllIsDecodeInOrder(t *testing.T) {
	r := &Runner{p: NewEvents("t")}
	for _, n := range []int{0, 1, parallelDecodeFrom - 1, parallelDecodeFrom, 2*parallelDecodeFrom + 1} {
		records := make([]*kgo.Record, n)
		for i := range records {
			v := []byte(fmt.Sprintf(`{"id":"e%d","type":%q,"data":{"event":"x"}}`, i, domain.EventTracked))
			if i%97 == 3 {
				v = []byte(`{"id":`) // not an event
			}
			records[i] = &kgo.Record{Topic: "t", Offset: int64(i), Value: v}
		}
		got := r.decodeAll(records)
		if len(got) != n {
			t.Fatalf("%d records: decodeAll gave %d", n, len(got))
		}
		for i, rec := range records {
			e, q := r.decode(rec)
			if !reflect.DeepEqual(got[i].event, e) || (got[i].quarantined == nil) != (q == nil) {
				t.Fatalf("%d records: record %d decoded as %+v / %v, want %+v / %v", n, i, got[i].event, got[i].quarantined, e, q)
			}
			if q != nil && got[i].quarantined.Offset != q.Offset {
				t.Fatalf("record %d: quarantined at offset %d, want %d", i, got[i].quarantined.Offset, q.Offset)
			}
		}
	}
}
