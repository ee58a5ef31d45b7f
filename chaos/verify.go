package chaos

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// bucketKey names one roll-up row: a key (event type, user, currency or
// period) and the start of its bucket, in Unix seconds (UTC).
type bucketKey struct {
	Key string
	At  int64
}

func bucket(key string, at time.Time) bucketKey { return bucketKey{Key: key, At: at.UTC().Unix()} }

func (b bucketKey) String() string {
	return b.Key + " @ " + time.Unix(b.At, 0).UTC().Format("2006-01-02T15:04Z")
}

// revenue is one revenue_hourly row's amount (cents) and purchase count.
type revenue struct{ Amount, Count int64 }

func (r revenue) add(amount, count int64) revenue { return revenue{r.Amount + amount, r.Count + count} }

func (r revenue) String() string { return fmt.Sprintf("%d cents in %d purchases", r.Amount, r.Count) }

// rollups are the read models derived from the events rows.
type rollups struct {
	EndUsers    map[string]int64    // end_users.event_count by external id
	Hourly      map[bucketKey]int64 // event_counts_hourly by type and hour
	Daily       map[bucketKey]int64 // event_counts_daily by type and UTC day
	DailyUsers  map[bucketKey]int64 // daily_users rows by distinct id and day
	Revenue     map[bucketKey]revenue
	ActiveUsers map[bucketKey]int64 // active_user_counts by period and start
}

func newRollups() rollups {
	return rollups{EndUsers: map[string]int64{}, Hourly: map[bucketKey]int64{}, Daily: map[bucketKey]int64{},
		DailyUsers: map[bucketKey]int64{}, Revenue: map[bucketKey]revenue{}, ActiveUsers: map[bucketKey]int64{}}
}

// snapshot is what the read model holds for the project.
type snapshot struct {
	Events []eventRow
	Stored rollups
}

// expectedRollups is what the projections must have derived from rows,
// by the rules of projections/events.go: rejected events count nowhere;
// every other event counts for its user (userId), its type's hour and
// UTC day, and its distinct id (userId, else anonymousId) on the day, in
// the ISO week and in the month; a commerce event with an amount is
// revenue of its currency and hour unless it failed.
func expectedRollups(rows []eventRow) rollups {
	r := newRollups()
	seen := map[bucketKey]bool{}
	for _, e := range rows {
		if e.Rejected {
			continue
		}
		at := e.OccurredAt.UTC()
		day := utcDay(at)
		if e.UserID != nil {
			r.EndUsers[*e.UserID]++
		}
		r.Hourly[bucket(e.Type, at.Truncate(time.Hour))]++
		r.Daily[bucket(e.Type, day)]++
		if e.Amount != nil && e.Currency != nil && e.Status != statusFailed {
			k := bucket(*e.Currency, at.Truncate(time.Hour))
			r.Revenue[k] = r.Revenue[k].add(*e.Amount, 1)
		}
		distinct := e.UserID
		if distinct == nil {
			distinct = e.AnonymousID
		}
		if distinct == nil {
			continue
		}
		r.DailyUsers[bucket(*distinct, day)] = 1
		for _, p := range []struct {
			period string
			start  time.Time
		}{{"day", day}, {"week", utcWeek(day)}, {"month", utcMonth(day)}} {
			if k := bucket(p.period+"\x00"+*distinct, p.start); !seen[k] {
				seen[k] = true
				r.ActiveUsers[bucket(p.period, p.start)]++
			}
		}
	}
	return r
}

const (
	statusPending   = "pending"
	statusProcessed = "processed"
	statusFailed    = "failed"
)

func utcDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// utcWeek is the Monday of t's ISO week.
func utcWeek(t time.Time) time.Time {
	d := utcDay(t)
	return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
}

func utcMonth(t time.Time) time.Time {
	y, m, _ := t.UTC().Date()
	return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
}

// rollupMismatches lists every roll-up row whose stored value differs
// from the expected one (a row missing on either side included), sorted.
func rollupMismatches(want, got rollups) []string {
	var out []string
	out = append(out, diffMaps("end_users.event_count", want.EndUsers, got.EndUsers, func(k string) string { return k })...)
	out = append(out, diffMaps("event_counts_hourly", want.Hourly, got.Hourly, bucketKey.String)...)
	out = append(out, diffMaps("event_counts_daily", want.Daily, got.Daily, bucketKey.String)...)
	out = append(out, diffMaps("daily_users", want.DailyUsers, got.DailyUsers, bucketKey.String)...)
	out = append(out, diffMaps("revenue_hourly", want.Revenue, got.Revenue, bucketKey.String)...)
	out = append(out, diffMaps("active_user_counts", want.ActiveUsers, got.ActiveUsers, bucketKey.String)...)
	return out
}

func diffMaps[K comparable, V comparable](table string, want, got map[K]V, name func(K) string) []string {
	var out []string
	keys := slices.Collect(maps.Keys(want))
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		w, wok := want[k]
		g, gok := got[k]
		switch {
		case wok && gok && w == g:
		case !gok:
			out = append(out, fmt.Sprintf("%s %s: expected %v, no row", table, name(k), w))
		case !wok:
			out = append(out, fmt.Sprintf("%s %s: expected no row, found %v", table, name(k), g))
		default:
			out = append(out, fmt.Sprintf("%s %s: expected %v, found %v", table, name(k), w, g))
		}
	}
	slices.Sort(out)
	return out
}

// verdict is what verification found for one scenario.
type verdict struct {
	Offered  int // distinct events offered
	Accepted int // distinct events the API answered 2xx for
	Refused  int // dropped on a 4xx other than 429
	Stored   int // accepted events present in the read model
	Lost     int // accepted events absent from the read model
	// Duplicated counts read-model rows beyond the first per messageId.
	Duplicated int
	Stuck      int // accepted events still pending
	// Unacknowledged are stored events whose request never got a 2xx
	// (the client gave up); allowed, since a 202 may be lost on the way.
	Unacknowledged int
	Unexpected     int // rows the load never offered
	Mismatched     int // rows that differ from what was sent
	Rollups        []string
	KafkaChecked   bool
	// KafkaDuplicated counts EventTracked records beyond the first per id.
	KafkaDuplicated int
	KafkaMissing    int // accepted events with no EventTracked record
	Failures        []string
}

// verifyInput is everything verification compares.
type verifyInput struct {
	Offers    []offer
	Conflicts []string // messageIds answered with two different ids
	Snapshot  *snapshot
	// Kafka counts EventTracked records per event id; nil when the log
	// could not be read (KafkaErr says why).
	Kafka    map[string]int
	KafkaErr error
	// ExpectedID is the id the API derives from a messageId, used to tell
	// an unacknowledged event from an unexpected one.
	ExpectedID func(messageID string) string
}

// verify compares what the API accepted with the read model and the log.
func verify(in verifyInput) verdict {
	var v verdict
	var f findings
	rows, perMessage := indexRows(in.Snapshot.Events)
	v.compareOffers(in, rows, &f)
	v.classifyRows(rows, &f)
	v.countDuplicates(perMessage, &f)
	v.Lost, v.Stuck, v.Mismatched, v.Unexpected = len(f.lost), len(f.stuck), len(f.mismatched), len(f.unexpected)
	v.Rollups = rollupMismatches(expectedRollups(in.Snapshot.Events), in.Snapshot.Stored)
	if in.Kafka != nil {
		v.checkKafka(in.Kafka, &f)
	}
	v.addFailures(in, f)
	return v
}

// findings are the examples behind a verdict's counts, and the ids they
// were told apart by.
type findings struct {
	accepted                                   map[string]bool // ids the API answered 2xx with
	offeredIDs                                 map[string]bool // ids the API would give offers it never acknowledged
	lost, stuck, mismatched, unexpected, dupes []string
	kafkaMissing, kafkaDupes                   []string
}

// indexRows indexes the read model's rows by id, and counts them per
// messageId.
func indexRows(events []eventRow) (rows map[string]*eventRow, perMessage map[string]int) {
	rows = map[string]*eventRow{}
	perMessage = map[string]int{}
	for i := range events {
		e := &events[i]
		rows[e.ID] = e
		if e.MessageID != nil {
			perMessage[*e.MessageID]++
		}
	}
	return rows, perMessage
}

// compareOffers counts the offers and checks each accepted one against
// its row: lost when there is none, stuck while pending, mismatched when
// it differs.
func (v *verdict) compareOffers(in verifyInput, rows map[string]*eventRow, f *findings) {
	f.accepted, f.offeredIDs = map[string]bool{}, map[string]bool{}
	for _, o := range in.Offers {
		v.Offered++
		if o.Refusal != "" {
			v.Refused++
		}
		if o.AcceptedID == "" {
			if in.ExpectedID != nil {
				f.offeredIDs[in.ExpectedID(o.MessageID)] = true
			}
			continue
		}
		v.Accepted++
		f.accepted[o.AcceptedID] = true
		row, ok := rows[o.AcceptedID]
		if !ok {
			f.lost = append(f.lost, o.AcceptedID)
			continue
		}
		v.Stored++
		if row.Status == statusPending {
			f.stuck = append(f.stuck, o.AcceptedID)
		}
		if why := differs(o, row); why != "" {
			f.mismatched = append(f.mismatched, o.AcceptedID+" ("+why+")")
		}
	}
}

// classifyRows tells the rows no 2xx accounted for apart: offered but
// unacknowledged, or unexpected.
func (v *verdict) classifyRows(rows map[string]*eventRow, f *findings) {
	for id := range rows {
		switch {
		case f.accepted[id]:
		case f.offeredIDs[id]:
			v.Unacknowledged++
		default:
			f.unexpected = append(f.unexpected, id)
		}
	}
}

// countDuplicates counts the rows beyond the first per messageId.
func (v *verdict) countDuplicates(perMessage map[string]int, f *findings) {
	for m, n := range perMessage {
		if n > 1 {
			v.Duplicated += n - 1
			f.dupes = append(f.dupes, m)
		}
	}
}

// checkKafka checks the log has exactly one EventTracked record per
// accepted event.
func (v *verdict) checkKafka(kafka map[string]int, f *findings) {
	v.KafkaChecked = true
	for id := range f.accepted {
		if kafka[id] == 0 {
			f.kafkaMissing = append(f.kafkaMissing, id)
		}
	}
	for id, n := range kafka {
		if n > 1 {
			v.KafkaDuplicated += n - 1
			f.kafkaDupes = append(f.kafkaDupes, fmt.Sprintf("%s ×%d", id, n))
		}
	}
	v.KafkaMissing = len(f.kafkaMissing)
}

// addFailures states every count that should be zero and is not, with
// examples.
func (v *verdict) addFailures(in verifyInput, f findings) {
	if v.Lost > 0 && in.Kafka != nil {
		v.failLostWithLog(f.lost, in.Kafka)
	} else {
		v.fail(v.Lost, "LOST: %d accepted events are not in the read model", f.lost)
	}
	v.fail(v.Duplicated, "DUPLICATED: %d extra read-model rows for messageIds stored more than once", f.dupes)
	v.fail(v.Stuck, "STUCK: %d accepted events are still pending", f.stuck)
	v.fail(v.Unexpected, "UNEXPECTED: %d read-model rows match no offered event", f.unexpected)
	v.fail(v.Mismatched, "MISMATCHED: %d stored events differ from what was sent or from the outcome the rules give", f.mismatched)
	v.fail(len(in.Conflicts), "ID CONFLICT: %d messageIds were answered with two different event ids", in.Conflicts)
	v.fail(v.Refused, "REFUSED: %d valid events were refused with a 4xx", refusals(in.Offers))
	v.fail(len(v.Rollups), "ROLL-UPS: %d roll-up rows differ from what the events rows imply", v.Rollups)
	if in.KafkaErr != nil {
		v.Failures = append(v.Failures, "KAFKA: the log could not be read: "+in.KafkaErr.Error())
	}
	v.fail(v.KafkaDuplicated, "KAFKA DUPLICATED: %d extra EventTracked records in the Kafka log", f.kafkaDupes)
	v.fail(v.KafkaMissing, "KAFKA MISSING: %d accepted events have no EventTracked record in the Kafka log", f.kafkaMissing)
}

// fail records a failure when n is not zero: format takes n.
func (v *verdict) fail(n int, format string, examples []string) {
	if n > 0 {
		v.Failures = append(v.Failures, fmt.Sprintf(format, n)+examplesOf(examples))
	}
}

// failLostWithLog records the lost events, telling those the log has
// (the projection missed them) from those it never got.
func (v *verdict) failLostWithLog(lost []string, kafka map[string]int) {
	inLog := 0
	for _, id := range lost {
		if kafka[id] > 0 {
			inLog++
		}
	}
	v.Failures = append(v.Failures, fmt.Sprintf("LOST: %d accepted events are not in the read model "+
		"(%d of them are in the Kafka log, not projected; %d never reached it)", v.Lost, inLog, v.Lost-inLog)+examplesOf(lost))
}

// expectedStatus is the outcome the processor's rules give an event the
// load sent: only purchases in the unknown currency fail. An outage of a
// dependency may delay an outcome, never change it.
func expectedStatus(o offer) string {
	if o.Currency == failingCurrency {
		return statusFailed
	}
	return statusProcessed
}

// differs says how a stored row differs from the event sent ("" if not).
func differs(o offer, row *eventRow) string {
	var why []string
	if row.Type != o.Event {
		why = append(why, fmt.Sprintf("type %q, sent %q", row.Type, o.Event))
	}
	if deref(row.UserID) != o.UserID {
		why = append(why, fmt.Sprintf("userId %q, sent %q", deref(row.UserID), o.UserID))
	}
	if deref(row.AnonymousID) != o.AnonymousID {
		why = append(why, fmt.Sprintf("anonymousId %q, sent %q", deref(row.AnonymousID), o.AnonymousID))
	}
	if deref(row.MessageID) != o.MessageID {
		why = append(why, fmt.Sprintf("messageId %q, sent %q", deref(row.MessageID), o.MessageID))
	}
	if want := expectedStatus(o); row.Status != statusPending && row.Status != want {
		why = append(why, fmt.Sprintf("status %s (%s), expected %s", row.Status, deref(row.Details), want))
	}
	if o.Currency != "" {
		if row.Amount == nil || *row.Amount != o.Amount || deref(row.Currency) != o.Currency {
			why = append(why, fmt.Sprintf("amount %v %s, sent %d %s", ptrText(row.Amount), deref(row.Currency), o.Amount, o.Currency))
		}
	}
	return strings.Join(why, "; ")
}

func refusals(offers []offer) []string {
	var out []string
	for _, o := range offers {
		if o.Refusal != "" {
			out = append(out, o.MessageID+": "+o.Refusal)
		}
	}
	return out
}

// examplesOf lists up to five examples, sorted, after a colon.
func examplesOf(xs []string) string {
	if len(xs) == 0 {
		return ""
	}
	xs = slices.Clone(xs)
	slices.Sort(xs)
	const show = 5
	more := ""
	if len(xs) > show {
		more = fmt.Sprintf("; … %d more", len(xs)-show)
		xs = xs[:show]
	}
	return " (e.g. " + strings.Join(xs, "; ") + more + ")"
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func ptrText(n *int64) string {
	if n == nil {
		return "none"
	}
	return fmt.Sprint(*n)
}
