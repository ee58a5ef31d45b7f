package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/readmodel"
	"github.com/gamify/boost/store"
)

// Events projects tracked events, their processing status, end users and
// the analytics roll-ups. Every counter is incremented only for event rows
// this batch inserted, so a re-sent event is counted once.
type Events struct {
	topic string
}

// NewEvents returns the events projection reading topic.
func NewEvents(topic string) *Events { return &Events{topic: topic} }

// Name implements Projection.
func (*Events) Name() string { return "events" }

// Topics implements Projection.
func (p *Events) Topics() []string { return []string{p.topic} }

// Tables implements Projection.
func (*Events) Tables() []string {
	return []string{"events", "end_users", "end_user_aliases", "event_counts_hourly", "daily_users", "revenue_hourly",
		"event_counts_daily", "daily_event_users", "weekly_users", "monthly_users", "active_user_counts", "orphan_outcomes"}
}

type outcome struct {
	project, status, reason string
	at                      time.Time
}

// countSeen counts one more event of u, which happened at.
func countSeen(u *readmodel.EndUser, at time.Time) {
	u.EventCount++
	if at.Before(u.FirstSeenAt) {
		u.FirstSeenAt = at
	}
	if at.After(u.LastSeenAt) {
		u.LastSeenAt = at
	}
}

// newOutcome is what an EventProcessed or EventFailed of project sets on
// its event.
func newOutcome(project, typ, reason string, at time.Time) outcome {
	if typ == domain.EventFailed {
		return outcome{project: project, status: readmodel.StatusFailed, reason: reason, at: at}
	}
	return outcome{project: project, status: readmodel.StatusProcessed, at: at}
}

type trackedRow struct {
	row      readmodel.Event
	identify bool
	traits   json.RawMessage
	counted  bool // tracked or identified, not rejected
	// coalesced is the outcome written with the row; if the row turns out
	// to exist already (a re-delivered event), it must be applied as an
	// update instead.
	coalesced *outcome
}

const insertChunk = 500

// Apply implements Projection.
func (p *Events) Apply(ctx context.Context, tx bun.Tx, db *store.DB, events []domain.Event) error {
	var rows []*trackedRow
	byID := map[string]*trackedRow{}
	outcomes := map[string]outcome{}
	var outcomeOrder []string
	for i := range events {
		e := &events[i]
		switch e.Type {
		case domain.EventTracked, domain.UserIdentified, domain.EventRejected:
			if _, dup := byID[e.ID]; dup {
				continue
			}
			d, err := domain.DecodeData[domain.TrackedData](e)
			if err != nil {
				return err
			}
			if err := checkTracked(e, &d); err != nil {
				return fmt.Errorf("%s %s: %w", e.Type, e.ID, err)
			}
			r := newTrackedRow(e, &d)
			rows = append(rows, r)
			byID[e.ID] = r
		case domain.EventProcessed, domain.EventFailed:
			d, err := domain.DecodeData[domain.OutcomeData](e)
			if err != nil {
				return err
			}
			if err := checkOutcome(e, &d); err != nil {
				return fmt.Errorf("%s %s: %w", e.Type, e.ID, err)
			}
			o := newOutcome(e.ProjectID, e.Type, d.Reason, e.OccurredAt)
			// Coalesce: an outcome for an event of this batch is written
			// with its row instead of as a second update.
			if r, ok := byID[d.EventID]; ok && r.row.Status == readmodel.StatusPending {
				setOutcome(&r.row, o)
				r.coalesced = &o
				continue
			}
			if _, seen := outcomes[d.EventID]; !seen {
				outcomeOrder = append(outcomeOrder, d.EventID)
			}
			outcomes[d.EventID] = o
		}
	}

	inserted := map[string]bool{}
	for chunk := range slices.Chunk(rows, insertChunk) {
		models := make([]readmodel.Event, len(chunk))
		for i, r := range chunk {
			models[i] = r.row
		}
		var ids []string
		if err := tx.NewInsert().Model(&models).On("CONFLICT (id) DO NOTHING").Returning("id").Scan(ctx, &ids); err != nil {
			return fmt.Errorf("inserting events: %w", err)
		}
		for _, id := range ids {
			inserted[id] = true
		}
	}

	for _, r := range rows {
		if !inserted[r.row.ID] && r.coalesced != nil {
			if _, seen := outcomes[r.row.ID]; !seen {
				outcomeOrder = append(outcomeOrder, r.row.ID)
			}
			outcomes[r.row.ID] = *r.coalesced
		}
	}

	var fresh []*trackedRow
	var freshIDs []string
	for _, r := range rows {
		if inserted[r.row.ID] && r.counted {
			fresh = append(fresh, r)
		}
		if inserted[r.row.ID] && r.row.Status == readmodel.StatusPending {
			freshIDs = append(freshIDs, r.row.ID)
		}
	}
	// An event stored after its outcome (it was quarantined, then
	// reprocessed) takes the outcome that waited for it.
	adopted, err := adoptOrphans(ctx, tx, freshIDs)
	if err != nil {
		return err
	}
	for id, o := range adopted {
		if _, seen := outcomes[id]; !seen {
			outcomeOrder = append(outcomeOrder, id)
			outcomes[id] = o
		}
	}
	if err := p.applyUsers(ctx, tx, fresh); err != nil {
		return err
	}
	if err := p.applyRollups(ctx, tx, fresh); err != nil {
		return err
	}
	refunds, err := p.applyOutcomes(ctx, tx, db, outcomeOrder, outcomes)
	if err != nil {
		return err
	}
	return p.applyRevenue(ctx, tx, refunds, -1)
}

// adoptOrphans takes the waiting outcomes of the events ids, if any. The
// table is nearly always empty, which one probe tells.
func adoptOrphans(ctx context.Context, tx bun.Tx, ids []string) (map[string]outcome, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	any, err := tx.NewSelect().Model((*readmodel.OrphanOutcome)(nil)).Limit(1).Exists(ctx)
	if err != nil || !any {
		return nil, err
	}
	out := map[string]outcome{}
	for chunk := range slices.Chunk(ids, insertChunk) {
		var rows []readmodel.OrphanOutcome
		if err := tx.NewSelect().Model(&rows).Where("event_id IN (?)", bun.In(chunk)).Scan(ctx); err != nil {
			return nil, fmt.Errorf("reading waiting outcomes: %w", err)
		}
		if len(rows) == 0 {
			continue
		}
		for _, r := range rows {
			out[r.EventID] = outcome{project: r.ProjectID, status: r.Status, reason: deref(r.Reason), at: r.At.UTC()}
		}
		if _, err := tx.NewDelete().Model((*readmodel.OrphanOutcome)(nil)).Where("event_id IN (?)", bun.In(chunk)).
			Exec(ctx); err != nil {
			return nil, fmt.Errorf("taking waiting outcomes: %w", err)
		}
	}
	return out, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// keepOrphans stores the outcomes of ids, which updated no row: those
// whose event is not stored at all wait for it (the first outcome wins, as
// the status = 'pending' guard makes it for stored events).
func keepOrphans(ctx context.Context, tx bun.Tx, ids []string, outcomes map[string]outcome) error {
	if len(ids) == 0 {
		return nil
	}
	var stored []string
	if err := tx.NewSelect().Model((*readmodel.Event)(nil)).Column("id").Where("id IN (?)", bun.In(ids)).
		Scan(ctx, &stored); err != nil {
		return fmt.Errorf("looking for the events of outcomes: %w", err)
	}
	have := make(map[string]bool, len(stored))
	for _, id := range stored {
		have[id] = true
	}
	var orphans []readmodel.OrphanOutcome
	for _, id := range ids {
		if have[id] {
			continue
		}
		o := outcomes[id]
		orphans = append(orphans, readmodel.OrphanOutcome{EventID: id, ProjectID: o.project, Status: o.status,
			Reason: optional(o.reason), At: o.at.UTC()})
	}
	if len(orphans) == 0 {
		return nil
	}
	if _, err := tx.NewInsert().Model(&orphans).On("CONFLICT (event_id) DO NOTHING").Exec(ctx); err != nil {
		return fmt.Errorf("keeping outcomes of events not stored: %w", err)
	}
	return nil
}

// applyOutcomes sets the status of events stored by earlier batches, in
// one statement per chunk, and returns failed purchases to take out of the
// revenue.
func (p *Events) applyOutcomes(ctx context.Context, tx bun.Tx, db *store.DB, ids []string, outcomes map[string]outcome) ([]*trackedRow, error) {
	cast := func(expr, pgType string) string {
		if db.Dialect == store.Postgres {
			return "CAST(" + expr + " AS " + pgType + ")"
		}
		return expr
	}
	var refunds []*trackedRow
	for chunk := range slices.Chunk(ids, insertChunk) {
		var values strings.Builder
		args := make([]any, 0, 4*len(chunk))
		for i, id := range chunk {
			if i > 0 {
				values.WriteString(", ")
			}
			values.WriteString("(?, ?, ?, ?)")
			o := outcomes[id]
			args = append(args, id, o.status, o.at.UTC(), o.reason)
		}
		query := "UPDATE events SET status = v.status, processed_at = " + cast("v.at", "timestamptz") +
			", error_details = NULLIF(v.reason, '')" +
			" FROM (SELECT column1 AS id, column2 AS status, column3 AS at, column4 AS reason FROM (VALUES " +
			values.String() + ") AS vals) AS v" +
			" WHERE events.id = " + cast("v.id", "uuid") + " AND events.status = 'pending'" +
			" RETURNING events.id, events.project_id, events.status, events.amount, events.currency, events.occurred_at"
		var changed []readmodel.Event
		if err := tx.NewRaw(query, args...).Scan(ctx, &changed); err != nil {
			return nil, fmt.Errorf("updating event statuses: %w", err)
		}
		if len(changed) < len(chunk) {
			updated := make(map[string]bool, len(changed))
			for _, c := range changed {
				updated[c.ID] = true
			}
			var missed []string
			for _, id := range chunk {
				if !updated[id] {
					missed = append(missed, id)
				}
			}
			if err := keepOrphans(ctx, tx, missed, outcomes); err != nil {
				return nil, err
			}
		}
		// A failed purchase is no revenue: take back what tracking added.
		for _, c := range changed {
			if c.Status == readmodel.StatusFailed && c.Amount != nil && c.Currency != nil {
				neg := -*c.Amount
				refunds = append(refunds, &trackedRow{row: readmodel.Event{ProjectID: c.ProjectID, Amount: &neg,
					Currency: c.Currency, OccurredAt: c.OccurredAt.UTC()}})
			}
		}
	}
	return refunds, nil
}

func setOutcome(r *readmodel.Event, o outcome) {
	r.Status = o.status
	at := o.at
	r.ProcessedAt = &at
	if o.reason != "" {
		reason := o.reason
		r.ErrorDetails = &reason
	}
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// newTrackedRow is the row of a tracked, identified or rejected event
// (e's payload, already decoded, is d).
func newTrackedRow(e *domain.Event, d *domain.TrackedData) *trackedRow {
	props := d.Properties
	if len(props) == 0 || string(props) == "null" {
		props = json.RawMessage("{}")
	}
	r := &trackedRow{
		row: readmodel.Event{
			ID: e.ID, ProjectID: e.ProjectID, Type: d.Event, UserID: optional(d.UserID), AnonymousID: optional(d.AnonymousID),
			Properties: props, Context: d.Context, MessageID: optional(d.MessageID), KeyID: d.KeyID,
			Status: readmodel.StatusPending, ClientTimestamp: d.Timestamp, SentAt: d.SentAt,
			// Stored times are whole µs (bun and COPY drop finer digits);
			// daily_event_users' times must be the same µs as the row's.
			ReceivedAt: d.ReceivedAt.UTC(), OccurredAt: e.OccurredAt.UTC().Truncate(time.Microsecond),
		},
		identify: e.Type == domain.UserIdentified,
		counted:  e.Type != domain.EventRejected,
	}
	if r.identify {
		r.traits = props
	}
	if e.Type == domain.EventRejected {
		r.row.Rejected = true
		r.row.Status = readmodel.StatusFailed
		reason := d.Reason
		r.row.ErrorDetails = &reason
		at := e.OccurredAt.UTC()
		r.row.ProcessedAt = &at
	}
	if e.Type == domain.UserIdentified {
		// Identify has no rules to run: it is processed once stored.
		r.row.Status = readmodel.StatusProcessed
		at := e.ReceivedAt.UTC()
		r.row.ProcessedAt = &at
	}
	if e.Type == domain.EventTracked && domain.IsCommerce(d.Event) {
		if c, err := domain.ParseCommerce(props); err == nil {
			r.row.Amount, r.row.Currency = &c.Amount, &c.Currency
		}
	}
	return r
}

// applyUsers folds fresh events into end users: counts, first/last seen,
// traits merged in log order, anonymous ids linked on identify.
func (p *Events) applyUsers(ctx context.Context, tx bun.Tx, fresh []*trackedRow) error {
	type key struct{ project, user string }
	users := map[key]*readmodel.EndUser{}
	var order []key
	var aliases []readmodel.EndUserAlias
	aliasAt := map[key]int{}
	for _, r := range fresh {
		if r.row.UserID == nil {
			continue
		}
		k := key{r.row.ProjectID, *r.row.UserID}
		u, ok := users[k]
		if !ok {
			u = &readmodel.EndUser{ProjectID: k.project, ExternalID: k.user, Traits: nil,
				FirstSeenAt: r.row.OccurredAt, LastSeenAt: r.row.OccurredAt}
			users[k] = u
			order = append(order, k)
		}
		countSeen(u, r.row.OccurredAt)
		if r.identify && r.row.AnonymousID != nil {
			a := readmodel.EndUserAlias{ProjectID: k.project, AnonymousID: *r.row.AnonymousID,
				ExternalID: k.user, LinkedAt: r.row.OccurredAt}
			ak := key{k.project, a.AnonymousID}
			if i, ok := aliasAt[ak]; !ok {
				aliasAt[ak] = len(aliases)
				aliases = append(aliases, a)
			} else if a.LinkedAt.Before(aliases[i].LinkedAt) {
				aliases[i] = a
			}
		}
	}
	if len(users) == 0 {
		return nil
	}
	// Merge with what is stored.
	byProject := map[string][]string{}
	for _, k := range order {
		byProject[k.project] = append(byProject[k.project], k.user)
	}
	existing := map[key]readmodel.EndUser{}
	for project, ids := range byProject {
		for chunk := range slices.Chunk(ids, insertChunk) {
			var stored []readmodel.EndUser
			if err := tx.NewSelect().Model(&stored).Where("project_id = ?", project).
				Where("external_id IN (?)", bun.In(chunk)).Scan(ctx); err != nil {
				return fmt.Errorf("loading end users: %w", err)
			}
			for _, s := range stored {
				existing[key{s.ProjectID, s.ExternalID}] = s
			}
		}
	}
	traits := map[key]map[string]json.RawMessage{}
	versions := map[key]map[string]string{}
	for k, s := range existing {
		m, v := map[string]json.RawMessage{}, map[string]string{}
		_ = json.Unmarshal(s.Traits, &m)
		_ = json.Unmarshal(s.TraitVersions, &v)
		traits[k], versions[k] = m, v
		u := users[k]
		u.EventCount += s.EventCount
		if s.FirstSeenAt.Before(u.FirstSeenAt) {
			u.FirstSeenAt = s.FirstSeenAt
		}
		if s.LastSeenAt.After(u.LastSeenAt) {
			u.LastSeenAt = s.LastSeenAt
		}
	}
	for _, r := range fresh {
		if !r.identify || r.row.UserID == nil {
			continue
		}
		k := key{r.row.ProjectID, *r.row.UserID}
		if traits[k] == nil {
			traits[k], versions[k] = map[string]json.RawMessage{}, map[string]string{}
		}
		var add map[string]json.RawMessage
		if err := json.Unmarshal(r.traits, &add); err != nil {
			continue
		}
		version := traitVersion(&r.row)
		for name, value := range add {
			if version > versions[k][name] {
				traits[k][name], versions[k][name] = value, version
			}
		}
	}
	rows := make([]readmodel.EndUser, 0, len(order))
	for _, k := range order {
		u := users[k]
		m := traits[k]
		if m == nil {
			m = map[string]json.RawMessage{}
		}
		b, err := json.Marshal(m) // map keys sort: deterministic bytes
		if err != nil {
			return err
		}
		v := versions[k]
		if v == nil {
			v = map[string]string{}
		}
		vb, err := json.Marshal(v)
		if err != nil {
			return err
		}
		u.Traits, u.TraitVersions = b, vb
		rows = append(rows, *u)
	}
	for chunk := range slices.Chunk(rows, insertChunk) {
		if _, err := tx.NewInsert().Model(&chunk).
			On("CONFLICT (project_id, external_id) DO UPDATE").
			Set("traits = EXCLUDED.traits").Set("trait_versions = EXCLUDED.trait_versions").Set("first_seen_at = EXCLUDED.first_seen_at").
			Set("last_seen_at = EXCLUDED.last_seen_at").Set("event_count = EXCLUDED.event_count").
			Exec(ctx); err != nil {
			return fmt.Errorf("upserting end users: %w", err)
		}
	}
	if len(aliases) > 0 {
		// The earliest link wins, whatever order links arrive in.
		if _, err := tx.NewInsert().Model(&aliases).On("CONFLICT (project_id, anonymous_id) DO UPDATE").
			Set("external_id = EXCLUDED.external_id").Set("linked_at = EXCLUDED.linked_at").
			Where("EXCLUDED.linked_at < end_user_aliases.linked_at").Exec(ctx); err != nil {
			return fmt.Errorf("linking anonymous ids: %w", err)
		}
	}
	return nil
}

// applyRollups adds fresh events to the hourly and daily counts, the
// distinct users per day, per day and event type, per week and per month
// (counting the users each period gains), and the hourly revenue.
func (p *Events) applyRollups(ctx context.Context, tx bun.Tx, fresh []*trackedRow) error {
	type countKey struct {
		project, typ string
		at           time.Time
	}
	type userKey struct {
		project, id string
		at          time.Time
	}
	hourly, daily := map[countKey]int64{}, map[countKey]int64{}
	var hourOrder, dayOrder []countKey
	days, weeks, months := map[userKey]bool{}, map[userKey]bool{}, map[userKey]bool{}
	var dayUsers []readmodel.DailyUser
	var weekUsers []readmodel.WeeklyUser
	var monthUsers []readmodel.MonthlyUser
	for _, r := range fresh {
		hk := countKey{r.row.ProjectID, r.row.Type, r.row.OccurredAt.Truncate(time.Hour)}
		if _, ok := hourly[hk]; !ok {
			hourOrder = append(hourOrder, hk)
		}
		hourly[hk]++
		day := UTCDay(r.row.OccurredAt)
		dk := countKey{r.row.ProjectID, r.row.Type, day}
		if _, ok := daily[dk]; !ok {
			dayOrder = append(dayOrder, dk)
		}
		daily[dk]++
		distinct := distinctIDOf(&r.row)
		if distinct == nil {
			continue
		}
		id := *distinct
		if k := (userKey{r.row.ProjectID, id, day}); !days[k] {
			days[k] = true
			dayUsers = append(dayUsers, readmodel.DailyUser{ProjectID: k.project, Day: day, DistinctID: id})
		}
		if k := (userKey{r.row.ProjectID, id, UTCWeek(day)}); !weeks[k] {
			weeks[k] = true
			weekUsers = append(weekUsers, readmodel.WeeklyUser{ProjectID: k.project, DistinctID: id, Week: k.at})
		}
		if k := (userKey{r.row.ProjectID, id, UTCMonth(day)}); !months[k] {
			months[k] = true
			monthUsers = append(monthUsers, readmodel.MonthlyUser{ProjectID: k.project, DistinctID: id, Month: k.at})
		}
	}
	if len(hourOrder) > 0 {
		rows := make([]readmodel.EventCountHourly, len(hourOrder))
		for i, k := range hourOrder {
			rows[i] = readmodel.EventCountHourly{ProjectID: k.project, EventType: k.typ, BucketStart: k.at, Count: hourly[k]}
		}
		for chunk := range slices.Chunk(rows, insertChunk) {
			if _, err := tx.NewInsert().Model(&chunk).On("CONFLICT (project_id, event_type, bucket_start) DO UPDATE").
				Set("count = event_counts_hourly.count + EXCLUDED.count").Exec(ctx); err != nil {
				return fmt.Errorf("upserting hourly counts: %w", err)
			}
		}
		rowsD := make([]readmodel.EventCountDaily, len(dayOrder))
		for i, k := range dayOrder {
			rowsD[i] = readmodel.EventCountDaily{ProjectID: k.project, EventType: k.typ, Day: k.at, Count: daily[k]}
		}
		for chunk := range slices.Chunk(rowsD, insertChunk) {
			if _, err := tx.NewInsert().Model(&chunk).On("CONFLICT (project_id, event_type, day) DO UPDATE").
				Set("count = event_counts_daily.count + EXCLUDED.count").Exec(ctx); err != nil {
				return fmt.Errorf("upserting daily counts: %w", err)
			}
		}
	}
	// Each set of distinct users gains only the rows it did not hold; the
	// counts of active users grow by exactly those.
	gained := map[countKey]int64{}
	var gainedOrder []countKey
	type insertedRow struct {
		ProjectID string    `bun:"project_id"`
		At        time.Time `bun:"at"`
	}
	collect := func(rows []insertedRow, period string) {
		for _, r := range rows {
			k := countKey{r.ProjectID, period, r.At}
			if _, ok := gained[k]; !ok {
				gainedOrder = append(gainedOrder, k)
			}
			gained[k]++
		}
	}
	for chunk := range slices.Chunk(dayUsers, insertChunk) {
		var in []insertedRow
		if err := tx.NewInsert().Model(&chunk).On("CONFLICT (project_id, day, distinct_id) DO NOTHING").
			Returning("project_id, day AS at").Scan(ctx, &in); err != nil {
			return fmt.Errorf("inserting daily users: %w", err)
		}
		collect(in, PeriodDay)
	}
	for chunk := range slices.Chunk(weekUsers, insertChunk) {
		var in []insertedRow
		if err := tx.NewInsert().Model(&chunk).On("CONFLICT (project_id, distinct_id, week) DO NOTHING").
			Returning("project_id, week AS at").Scan(ctx, &in); err != nil {
			return fmt.Errorf("inserting weekly users: %w", err)
		}
		collect(in, PeriodWeek)
	}
	for chunk := range slices.Chunk(monthUsers, insertChunk) {
		var in []insertedRow
		if err := tx.NewInsert().Model(&chunk).On("CONFLICT (project_id, distinct_id, month) DO NOTHING").
			Returning("project_id, month AS at").Scan(ctx, &in); err != nil {
			return fmt.Errorf("inserting monthly users: %w", err)
		}
		collect(in, PeriodMonth)
	}
	if err := p.applyTypeDays(ctx, tx, fresh); err != nil {
		return err
	}
	if len(gainedOrder) > 0 {
		rows := make([]readmodel.ActiveUserCount, len(gainedOrder))
		for i, k := range gainedOrder {
			rows[i] = readmodel.ActiveUserCount{ProjectID: k.project, Period: k.typ, PeriodStart: UTCDay(k.at), Users: gained[k]}
		}
		for chunk := range slices.Chunk(rows, insertChunk) {
			if _, err := tx.NewInsert().Model(&chunk).On("CONFLICT (project_id, period, period_start) DO UPDATE").
				Set("users = active_user_counts.users + EXCLUDED.users").Exec(ctx); err != nil {
				return fmt.Errorf("upserting active user counts: %w", err)
			}
		}
	}
	return p.applyRevenue(ctx, tx, fresh, 1)
}

// Periods of active_user_counts.
const (
	PeriodDay   = "day"
	PeriodWeek  = "week"
	PeriodMonth = "month"
)

// UTCDay is the UTC day t falls in.
func UTCDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// UTCWeek is the UTC week (from Monday) t falls in.
func UTCWeek(t time.Time) time.Time {
	day := UTCDay(t)
	return day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
}

// UTCMonth is the UTC month t falls in.
func UTCMonth(t time.Time) time.Time {
	y, m, _ := t.UTC().Date()
	return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
}

// saturatingAdd is a + b in SQL, saturating at the int64 maximum like
// domain.AddAmounts. The CASE is nested because PostgreSQL does not
// short-circuit AND: b <= 0 must be tested before max - b is computed.
func saturatingAdd(a, b string) string {
	return "CASE WHEN " + b + " <= 0 THEN " + a + " + " + b +
		" WHEN " + a + " > 9223372036854775807 - " + b + " THEN 9223372036854775807" +
		" ELSE " + a + " + " + b + " END"
}

// applyRevenue adds the commerce amounts of rows to the hourly revenue;
// countSign is +1 for tracked purchases and -1 for failed ones.
func (p *Events) applyRevenue(ctx context.Context, tx bun.Tx, rows []*trackedRow, countSign int64) error {
	type revKey struct {
		project, currency string
		hour              time.Time
	}
	revenue := map[revKey][2]int64{}
	var order []revKey
	for _, r := range rows {
		if r.row.Amount == nil || r.row.Currency == nil || r.row.Status == readmodel.StatusFailed {
			continue
		}
		k := revKey{r.row.ProjectID, *r.row.Currency, r.row.OccurredAt.Truncate(time.Hour)}
		v, ok := revenue[k]
		if !ok {
			order = append(order, k)
		}
		revenue[k] = [2]int64{domain.AddAmounts(v[0], *r.row.Amount), v[1] + countSign}
	}
	if len(order) == 0 {
		return nil
	}
	out := make([]readmodel.RevenueHourly, len(order))
	for i, k := range order {
		v := revenue[k]
		out[i] = readmodel.RevenueHourly{ProjectID: k.project, Currency: k.currency, BucketStart: k.hour, Amount: v[0], Count: v[1]}
	}
	if _, err := tx.NewInsert().Model(&out).On("CONFLICT (project_id, currency, bucket_start) DO UPDATE").
		Set("amount = " + saturatingAdd("revenue_hourly.amount", "EXCLUDED.amount")).
		Set("count = revenue_hourly.count + EXCLUDED.count").Exec(ctx); err != nil {
		return fmt.Errorf("upserting revenue: %w", err)
	}
	if countSign < 0 {
		// A bucket whose only purchases failed is no bucket at all, as if
		// the failure had been known when the purchase was counted.
		for _, k := range order {
			if _, err := tx.NewDelete().Model((*readmodel.RevenueHourly)(nil)).Where("project_id = ?", k.project).
				Where("currency = ?", k.currency).Where("bucket_start = ?", k.hour).Where("count = 0").Exec(ctx); err != nil {
				return fmt.Errorf("pruning revenue: %w", err)
			}
		}
	}
	return nil
}
