package projections

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

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
	identity domain.Identity // none for a rejected event
	counted  bool            // tracked or identified, not rejected
	// coalesced is the outcome written with the row; if the row turns out
	// to exist already (a re-delivered event), it must be applied as an
	// update instead.
	coalesced *outcome
}

const insertChunk = 500

// Apply implements Projection.
func (p *Events) Apply(ctx context.Context, tx bun.Tx, db *store.DB, events []domain.Event) error {
	b, err := decodeEvents(events)
	if err != nil {
		return err
	}
	if err := b.keyProjects(ctx, tx); err != nil {
		return err
	}
	inserted, err := insertEvents(ctx, tx, b.rows)
	if err != nil {
		return err
	}
	fresh, pending := b.settle(inserted)
	// An event stored after its outcome (it was quarantined, then
	// reprocessed) takes the outcome that waited for it.
	adopted, err := adoptOrphans(ctx, tx, pending)
	if err != nil {
		return err
	}
	for id, o := range adopted {
		b.outcomes.addIfAbsent(id, o)
	}
	if err := p.applyUsers(ctx, tx, fresh); err != nil {
		return err
	}
	if err := p.applyRollups(ctx, tx, fresh); err != nil {
		return err
	}
	refunds, err := p.applyOutcomes(ctx, tx, db, b.outcomes.order, b.outcomes.byID)
	if err != nil {
		return err
	}
	return takeBackRevenue(ctx, tx, refunds)
}

// eventsBatch is a batch decoded: the rows of its tracked events (first
// copy of each) and the outcomes of events stored before.
type eventsBatch struct {
	rows     []*trackedRow
	byID     map[string]*trackedRow
	outcomes outcomeSet
}

// outcomeSet keeps outcomes by event id in the order they first came.
type outcomeSet struct {
	order []string
	byID  map[string]outcome
}

func (s *outcomeSet) add(id string, o outcome) {
	if _, seen := s.byID[id]; !seen {
		s.order = append(s.order, id)
	}
	s.byID[id] = o
}

func (s *outcomeSet) addIfAbsent(id string, o outcome) {
	if _, seen := s.byID[id]; !seen {
		s.add(id, o)
	}
}

func decodeEvents(events []domain.Event) (*eventsBatch, error) {
	b := &eventsBatch{byID: map[string]*trackedRow{}, outcomes: outcomeSet{byID: map[string]outcome{}}}
	for i := range events {
		e := &events[i]
		var err error
		switch e.Type {
		case domain.EventTracked, domain.UserIdentified, domain.EventRejected:
			err = b.addTracked(e)
		case domain.EventProcessed, domain.EventFailed:
			err = b.addOutcome(e)
		}
		if err != nil {
			return nil, err
		}
	}
	return b, nil
}

// keyProjects puts in each row's ProjectID what the tables hold for its
// project (store.ProjectKeys: its key, in decimal). From here on the
// fold runs on those, which is also what it reads back from the tables.
// Outcomes keep the UUID: orphan_outcomes is not keyed.
func (b *eventsBatch) keyProjects(ctx context.Context, tx bun.Tx) error {
	var ids []string
	seen := map[string]bool{}
	for _, r := range b.rows {
		if !seen[r.row.ProjectID] {
			seen[r.row.ProjectID] = true
			ids = append(ids, r.row.ProjectID)
		}
	}
	keys, err := store.ProjectKeys(ctx, tx, ids)
	if err != nil {
		return err
	}
	for _, r := range b.rows {
		r.row.ProjectID = keys[r.row.ProjectID]
	}
	return nil
}

func (b *eventsBatch) addTracked(e *domain.Event) error {
	if _, dup := b.byID[e.ID]; dup {
		return nil
	}
	d, err := decodeTracked(e)
	if err != nil {
		return err
	}
	if err := checkTracked(e, &d); err != nil {
		return fmt.Errorf("%s %s: %w", e.Type, e.ID, err)
	}
	r := newTrackedRow(e, &d)
	b.rows = append(b.rows, r)
	b.byID[e.ID] = r
	return nil
}

func (b *eventsBatch) addOutcome(e *domain.Event) error {
	d, err := domain.DecodeData[domain.OutcomeData](e)
	if err != nil {
		return err
	}
	if err := checkOutcome(e, &d); err != nil {
		return fmt.Errorf("%s %s: %w", e.Type, e.ID, err)
	}
	o := newOutcome(e.ProjectID, e.Type, d.Reason, e.OccurredAt)
	// Coalesce: an outcome for an event of this batch is written with its
	// row instead of as a second update.
	if r, ok := b.byID[d.EventID]; ok && r.row.Status == readmodel.StatusPending {
		setOutcome(&r.row, o)
		r.coalesced = &o
		return nil
	}
	b.outcomes.add(d.EventID, o)
	return nil
}

// insertEvents inserts the rows, skipping those stored already, and
// returns the ids it inserted.
func insertEvents(ctx context.Context, tx bun.Tx, rows []*trackedRow) (map[string]bool, error) {
	if tx.Dialect().Name() == dialect.PG {
		return insertEventsPG(ctx, tx, rows)
	}
	return insertEventsSQLite(ctx, tx, rows)
}

// insertEventsSQLite is insertEvents on SQLite: the values bound to a
// statement prepared once a batch, as the bulk build writes them
// (sqliteInsert, sqliteEventValues). Inlined into the SQL, the values cost
// a parse of every one of them at every statement (a quarter of the
// insert's CPU, docs/benchmarks.md).
func insertEventsSQLite(ctx context.Context, tx bun.Tx, rows []*trackedRow) (map[string]bool, error) {
	inserted := make(map[string]bool, len(rows))
	err := sqliteInsert(ctx, tx.Tx, "events", eventColumns, len(rows), func(i int, v []any) { sqliteEventValues(&rows[i].row, v) },
		" ON CONFLICT (id) DO NOTHING RETURNING id", func(res *sql.Rows) error {
			for res.Next() {
				var id string
				if err := res.Scan(&id); err != nil {
					return err
				}
				inserted[id] = true
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	return inserted, nil
}

// settle sorts the rows by what their insert did: those inserted and
// counted feed the users and roll-ups (fresh), those inserted still pending
// may adopt a waiting outcome, and an outcome coalesced into a row that
// turned out to exist already (a re-sent event) is applied as an update.
func (b *eventsBatch) settle(inserted map[string]bool) (fresh []*trackedRow, pending []string) {
	for _, r := range b.rows {
		switch {
		case !inserted[r.row.ID]:
			if r.coalesced != nil {
				b.outcomes.add(r.row.ID, *r.coalesced)
			}
			continue
		case r.counted:
			fresh = append(fresh, r)
		}
		if r.row.Status == readmodel.StatusPending {
			pending = append(pending, r.row.ID)
		}
	}
	return fresh, pending
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
	if err := store.Insert(ctx, tx.NewInsert().Model(&orphans).On("CONFLICT (event_id) DO NOTHING")); err != nil {
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
			Properties: props, Context: d.Context, Integrations: d.Integrations, MessageID: optional(d.MessageID), KeyID: d.KeyID,
			Status: readmodel.StatusPending, ClientTimestamp: d.Timestamp, SentAt: d.SentAt,
			// Stored times are whole µs (bun and COPY drop finer digits);
			// daily_event_users' times must be the same µs as the row's.
			ReceivedAt: d.ReceivedAt.UTC(), OccurredAt: e.OccurredAt.UTC().Truncate(time.Microsecond),
		},
		counted: e.Type != domain.EventRejected,
	}
	if r.counted {
		r.identity = d.Identity()
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
	if e.Type == domain.EventTracked && d.Outcome != "" {
		// Settled as it was appended: its outcome came with it.
		o := outcome{project: e.ProjectID, status: readmodel.StatusProcessed, at: e.ReceivedAt.UTC()}
		if d.Outcome == domain.OutcomeFailed {
			o.status, o.reason = readmodel.StatusFailed, d.Reason
		}
		setOutcome(&r.row, o)
	}
	if e.Type == domain.EventTracked && domain.IsCommerce(d.Event) {
		if c, err := domain.ParseCommerce(props); err == nil {
			r.row.Amount, r.row.Currency = &c.Amount, &c.Currency
		}
	}
	return r
}

// applyUsers folds fresh events into end users: counts, first/last seen,
// and each event's identity (domain.Identity: traits, linked ids).
func (p *Events) applyUsers(ctx context.Context, tx bun.Tx, fresh []*trackedRow) error {
	f := newUserFold()
	for _, r := range fresh {
		f.add(r)
	}
	if len(f.users) == 0 {
		return nil
	}
	if err := f.mergeStored(ctx, tx); err != nil {
		return err
	}
	rows, err := f.rows()
	if err != nil {
		return err
	}
	return writeUsers(ctx, tx, rows, f.stored, f.aliases)
}

type userKey struct{ project, user string }

// userFold is end users as events make them: counts, first and last seen,
// traits, and the ids linked to them. It is the one place these rules
// live: Apply folds a batch and merges in what is stored of its users;
// the bulk replay folds the whole log into one.
type userFold struct {
	users   map[userKey]*foldedUser
	order   []userKey
	aliases []readmodel.EndUserAlias
	aliasAt map[userKey]int
	// stored are the users the read model held before the batch.
	stored map[userKey]bool
}

type foldedUser struct {
	u      readmodel.EndUser
	traits userTraits
}

func newUserFold() *userFold {
	return &userFold{users: map[userKey]*foldedUser{}, aliasAt: map[userKey]int{}, stored: map[userKey]bool{}}
}

// add folds a counted (tracked or identified, not rejected) event.
func (f *userFold) add(r *trackedRow) {
	if r.row.UserID == nil {
		return
	}
	k := userKey{r.row.ProjectID, *r.row.UserID}
	u, ok := f.users[k]
	if !ok {
		u = &foldedUser{u: readmodel.EndUser{ProjectID: k.project, ExternalID: k.user, FirstSeenAt: r.row.OccurredAt,
			LastSeenAt: r.row.OccurredAt}}
		f.users[k] = u
		f.order = append(f.order, k)
	}
	countSeen(&u.u, r.row.OccurredAt)
	for _, id := range r.identity.Links {
		f.link(readmodel.EndUserAlias{ProjectID: k.project, AnonymousID: id, ExternalID: k.user, LinkedAt: r.row.OccurredAt})
	}
	u.traits.apply(r.identity, &r.row)
}

// link keeps the earliest link of an anonymous id.
func (f *userFold) link(a readmodel.EndUserAlias) {
	ak := userKey{a.ProjectID, a.AnonymousID}
	if i, ok := f.aliasAt[ak]; !ok {
		f.aliasAt[ak] = len(f.aliases)
		f.aliases = append(f.aliases, a)
	} else if a.LinkedAt.Before(f.aliases[i].LinkedAt) {
		f.aliases[i] = a
	}
}

// mergeStored folds in what the read model holds of the batch's users.
func (f *userFold) mergeStored(ctx context.Context, tx bun.Tx) error {
	byProject := map[string][]string{}
	for _, k := range f.order {
		byProject[k.project] = append(byProject[k.project], k.user)
	}
	for project, ids := range byProject {
		for chunk := range slices.Chunk(ids, insertChunk) {
			var stored []readmodel.EndUser
			if err := tx.NewSelect().Model(&stored).Where("project_id = ?", project).
				Where("external_id IN (?)", bun.In(chunk)).Scan(ctx); err != nil {
				return fmt.Errorf("loading end users: %w", err)
			}
			for i := range stored {
				f.mergeUser(&stored[i])
			}
		}
	}
	return nil
}

func (f *userFold) mergeUser(s *readmodel.EndUser) {
	k := userKey{s.ProjectID, s.ExternalID}
	f.stored[k] = true
	u := f.users[k]
	u.traits.merge(s)
	u.u.EventCount += s.EventCount
	if s.FirstSeenAt.Before(u.u.FirstSeenAt) {
		u.u.FirstSeenAt = s.FirstSeenAt
	}
	if s.LastSeenAt.After(u.u.LastSeenAt) {
		u.u.LastSeenAt = s.LastSeenAt
	}
}

// rows returns the users in the order they were met.
func (f *userFold) rows() ([]readmodel.EndUser, error) {
	rows := make([]readmodel.EndUser, 0, len(f.order))
	for _, k := range f.order {
		u := f.users[k]
		if err := u.traits.encode(&u.u); err != nil {
			return nil, err
		}
		rows = append(rows, u.u)
	}
	return rows, nil
}

// writeUsers writes the batch's users, whole as folded (stored tells which
// the read model held), and links its anonymous ids.
func writeUsers(ctx context.Context, tx bun.Tx, rows []readmodel.EndUser, stored map[userKey]bool, aliases []readmodel.EndUserAlias) error {
	if tx.Dialect().Name() == dialect.SQLite {
		if err := writeUsersSQLite(ctx, tx, rows, stored); err != nil {
			return err
		}
		return linkAliases(ctx, tx, aliases)
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
	return linkAliases(ctx, tx, aliases)
}

// writeUsersSQLite inserts the new users and overwrites the stored ones,
// without an upsert's statement journal (store.UpdateRows).
func writeUsersSQLite(ctx context.Context, tx bun.Tx, rows []readmodel.EndUser, stored map[userKey]bool) error {
	var fresh []readmodel.EndUser
	var known [][]any
	for _, u := range rows {
		if !stored[userKey{u.ProjectID, u.ExternalID}] {
			fresh = append(fresh, u)
			continue
		}
		known = append(known, []any{u.ProjectID, u.ExternalID, string(u.Traits), string(u.TraitVersions),
			u.FirstSeenAt, u.LastSeenAt, u.EventCount})
	}
	for chunk := range slices.Chunk(known, insertChunk) {
		if err := store.UpdateRows(ctx, tx, "end_users", []string{"project_id", "external_id"},
			[]string{"traits", "trait_versions", "first_seen_at", "last_seen_at", "event_count"}, chunk); err != nil {
			return err
		}
	}
	for chunk := range slices.Chunk(fresh, insertChunk) {
		if err := store.Insert(ctx, tx.NewInsert().Model(&chunk)); err != nil {
			return fmt.Errorf("inserting end users: %w", err)
		}
	}
	return nil
}

func linkAliases(ctx context.Context, tx bun.Tx, aliases []readmodel.EndUserAlias) error {
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
	f := newRollupFold()
	for _, r := range fresh {
		f.add(&r.row)
		f.addRevenue(&r.row, 1)
	}
	if err := writeCounts(ctx, tx, f); err != nil {
		return err
	}
	gained, err := insertUsers(ctx, tx, f.typeDays.userSets())
	if err != nil {
		return err
	}
	if err := p.applyTypeDays(ctx, tx, f.typeDays); err != nil {
		return err
	}
	if err := gained.write(ctx, tx); err != nil {
		return err
	}
	return writeRevenue(ctx, tx, f, false)
}

func writeCounts(ctx context.Context, tx bun.Tx, f *rollupFold) error {
	for chunk := range slices.Chunk(f.hourlyRows(f.hourly.order), insertChunk) {
		if _, err := tx.NewInsert().Model(&chunk).On("CONFLICT (project_id, event_type, bucket_start) DO UPDATE").
			Set("count = event_counts_hourly.count + EXCLUDED.count").Exec(ctx); err != nil {
			return fmt.Errorf("upserting hourly counts: %w", err)
		}
	}
	for chunk := range slices.Chunk(f.dailyRows(f.daily.order), insertChunk) {
		if _, err := tx.NewInsert().Model(&chunk).On("CONFLICT (project_id, event_type, day) DO UPDATE").
			Set("count = event_counts_daily.count + EXCLUDED.count").Exec(ctx); err != nil {
			return fmt.Errorf("upserting daily counts: %w", err)
		}
	}
	return nil
}

// insertUsers adds the batch's distinct users to each period's set and
// counts, per period, the users the set did not hold: the active-user
// counts grow by exactly those.
func insertUsers(ctx context.Context, tx bun.Tx, s userSets) (gainedUsers, error) {
	var gained gainedUsers
	if err := insertGaining(ctx, tx, s.daily, "project_id, day, distinct_id", "day", PeriodDay, &gained); err != nil {
		return gained, fmt.Errorf("inserting daily users: %w", err)
	}
	if err := insertGaining(ctx, tx, s.weekly, "project_id, distinct_id, week", "week", PeriodWeek, &gained); err != nil {
		return gained, fmt.Errorf("inserting weekly users: %w", err)
	}
	if err := insertGaining(ctx, tx, s.monthly, "project_id, distinct_id, month", "month", PeriodMonth, &gained); err != nil {
		return gained, fmt.Errorf("inserting monthly users: %w", err)
	}
	return gained, nil
}

// gainedUsers counts, per project, period and period start, the users a
// batch added to the period's set.
type gainedUsers struct{ counter }

// insertGaining inserts rows, skipping the ones the table holds, and
// counts the inserted ones in gained under period.
func insertGaining[T any](ctx context.Context, tx bun.Tx, rows []T, conflict, atColumn, period string, gained *gainedUsers) error {
	for chunk := range slices.Chunk(rows, insertChunk) {
		var inserted []struct {
			ProjectID string    `bun:"project_id"`
			At        time.Time `bun:"at"`
		}
		if err := store.Insert(ctx, tx.NewInsert().Model(&chunk).On("CONFLICT ("+conflict+") DO NOTHING").
			Returning("project_id, "+atColumn+" AS at"), &inserted); err != nil {
			return err
		}
		for _, r := range inserted {
			gained.add(rollupKey{r.ProjectID, period, r.At.Unix()}, 1)
		}
	}
	return nil
}

func (g gainedUsers) write(ctx context.Context, tx bun.Tx) error {
	rows := make([]readmodel.ActiveUserCount, len(g.order))
	for i, k := range g.order {
		rows[i] = readmodel.ActiveUserCount{ProjectID: k.project, Period: k.name, PeriodStart: UTCDay(k.time()), Users: g.counts[k]}
	}
	for chunk := range slices.Chunk(rows, insertChunk) {
		if _, err := tx.NewInsert().Model(&chunk).On("CONFLICT (project_id, period, period_start) DO UPDATE").
			Set("users = active_user_counts.users + EXCLUDED.users").Exec(ctx); err != nil {
			return fmt.Errorf("upserting active user counts: %w", err)
		}
	}
	return nil
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

// writeRevenue adds f's hourly revenue to the stored buckets. taken is set
// when f takes back failed purchases: a bucket whose only purchases failed
// is then no bucket at all, as if the failure had been known when the
// purchase was counted.
func writeRevenue(ctx context.Context, tx bun.Tx, f *rollupFold, taken bool) error {
	if len(f.revenue.order) == 0 {
		return nil
	}
	out := f.revenueRows(f.revenue.order)
	if _, err := tx.NewInsert().Model(&out).On("CONFLICT (project_id, currency, bucket_start) DO UPDATE").
		Set("amount = " + saturatingAdd("revenue_hourly.amount", "EXCLUDED.amount")).
		Set("count = revenue_hourly.count + EXCLUDED.count").Exec(ctx); err != nil {
		return fmt.Errorf("upserting revenue: %w", err)
	}
	if taken {
		for _, r := range out {
			if _, err := tx.NewDelete().Model((*readmodel.RevenueHourly)(nil)).Where("project_id = ?", r.ProjectID).
				Where("currency = ?", r.Currency).Where("bucket_start = ?", r.BucketStart).Where("count = 0").Exec(ctx); err != nil {
				return fmt.Errorf("pruning revenue: %w", err)
			}
		}
	}
	return nil
}

// takeBackRevenue takes the failed purchases refunds (applyOutcomes) out
// of the hourly revenue.
func takeBackRevenue(ctx context.Context, tx bun.Tx, refunds []*trackedRow) error {
	f := newRollupFold()
	for _, r := range refunds {
		f.addRevenue(&r.row, -1)
	}
	return writeRevenue(ctx, tx, f, true)
}
