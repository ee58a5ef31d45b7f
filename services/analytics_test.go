package services_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gamify/boost/internal/testenv"
	"github.com/gamify/boost/services"
	"github.com/gamify/boost/store"
)

type sent struct {
	typ, user, currency string
	at                  time.Time
	amount              int64
}

// TestAnalyticsAnswersMatchTheEventsSent sends a known history and checks
// every analytics endpoint against numbers computed here from what was
// sent, on both the roll-up path (whole-hour buckets) and the scan path
// (minute buckets, a +05:30 time zone).
func TestAnalyticsAnswersMatchTheEventsSent(t *testing.T) {
	eachMode(t, func(t *testing.T, env *testenv.Env) {
		nd := startNode(t, env, services.AllRoles...)
		tn := newTenant(t, nd)
		base := time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC)
		types := []string{"signup", "page_view", "cart_add", "page_view", "purchase"}
		var history []sent
		var items []string
		for i := range 150 {
			e := sent{typ: types[i%len(types)], user: fmt.Sprint("u", i%7), at: base.Add(time.Duration(i) * 47 * time.Minute)}
			props := fmt.Sprintf(`{"i":%d}`, i)
			if e.typ == "purchase" {
				e.currency, e.amount = []string{"EUR", "USD", "XYZ"}[i%3], int64(100+i)
				props = fmt.Sprintf(`{"orderId":"o%d","amount":%d,"currency":"%s"}`, i, e.amount, e.currency)
			}
			history = append(history, e)
			items = append(items, fmt.Sprintf(`{"event":"%s","userId":"%s","timestamp":"%s","messageId":"a-%d","properties":%s}`,
				e.typ, e.user, e.at.Format(time.RFC3339), i, props))
		}
		for i := 0; i < len(items); i += 100 {
			end := min(i+100, len(items))
			if r := nd.post("/v1/events/batch", tn.sk, `{"batch":[`+strings.Join(items[i:end], ",")+`]}`); r.Status != http.StatusAccepted {
				t.Fatalf("batch: %d %s", r.Status, r.Body)
			}
		}
		waitUntil(t, 30*time.Second, "history processed", func() bool {
			return nd.countRows("SELECT count(*) FROM events WHERE project_id = "+store.ProjectKeySQL("?")+" AND status <> 'pending'", tn.project) == len(history)
		})
		get := func(path string, q url.Values) map[string]any {
			return nd.admin("GET", "/v1/projects/"+tn.project+"/analytics/"+path+"?"+q.Encode(), "", http.StatusOK)
		}
		from, to := base, base.Add(6*24*time.Hour)
		q := url.Values{"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}}

		// Event counts per day: UTC (roll-ups) and Asia/Kolkata (+05:30, scanned).
		for _, tz := range []string{"UTC", "Asia/Kolkata", "Europe/Paris"} {
			loc, _ := time.LoadLocation(tz)
			want := map[string]map[string]int64{}
			for _, e := range history {
				lt := e.at.In(loc)
				day := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, loc).Format(time.RFC3339)
				if want[e.typ] == nil {
					want[e.typ] = map[string]int64{}
				}
				want[e.typ][day]++
			}
			qq := url.Values{"from": q["from"], "to": q["to"], "tz": {tz}, "bucket": {"day"}}
			m := get("events", qq)
			buckets := m["buckets"].([]any)
			for _, s := range m["series"].([]any) {
				sr := s.(map[string]any)
				for i, c := range sr["counts"].([]any) {
					b, _ := time.Parse(time.RFC3339, buckets[i].(string))
					if got, w := int64(c.(float64)), want[str(sr, "name")][b.In(loc).Format(time.RFC3339)]; got != w {
						t.Errorf("%s %s %s: %d, want %d", tz, str(sr, "name"), buckets[i], got, w)
					}
				}
			}
		}
		// Hour buckets (roll-up) and minute buckets (scan) agree on totals.
		var hourTotal, minuteTotal float64
		for _, c := range get("events", url.Values{"from": {base.Format(time.RFC3339)}, "to": {base.Add(12 * time.Hour).Format(time.RFC3339)}, "bucket": {"hour"}})["total"].([]any) {
			hourTotal += c.(float64)
		}
		for _, c := range get("events", url.Values{"from": {base.Format(time.RFC3339)}, "to": {base.Add(12 * time.Hour).Format(time.RFC3339)}, "bucket": {"minute"}})["total"].([]any) {
			minuteTotal += c.(float64)
		}
		if hourTotal != minuteTotal || hourTotal != float64(12*60/47+1) {
			t.Errorf("12 h: %v by hour, %v by minute, want %d", hourTotal, minuteTotal, 12*60/47+1)
		}

		// Unique users per UTC day.
		dau := map[string]map[string]bool{}
		for _, e := range history {
			d := e.at.Truncate(24 * time.Hour).Format(time.RFC3339)
			if dau[d] == nil {
				dau[d] = map[string]bool{}
			}
			dau[d][e.user] = true
		}
		m := get("users", url.Values{"from": q["from"], "to": q["to"], "bucket": {"day"}})
		for i, b := range m["buckets"].([]any) {
			if got := int(m["users"].([]any)[i].(float64)); got != len(dau[b.(string)]) {
				t.Errorf("users on %s: %d, want %d", b, got, len(dau[b.(string)]))
			}
		}
		if w := get("users", url.Values{"from": q["from"], "to": q["to"], "bucket": {"week"}})["users"].([]any); len(w) == 0 {
			t.Error("no weekly users")
		}

		// Top events with distinct users.
		counts, users := map[string]int64{}, map[string]map[string]bool{}
		for _, e := range history {
			counts[e.typ]++
			if users[e.typ] == nil {
				users[e.typ] = map[string]bool{}
			}
			users[e.typ][e.user] = true
		}
		top := get("top-events", q)["data"].([]any)
		if len(top) != 4 || str(top[0].(map[string]any), "event") != "page_view" {
			t.Fatalf("top events %v", top)
		}
		for _, x := range top {
			row := x.(map[string]any)
			if int64(row["count"].(float64)) != counts[str(row, "event")] || int(row["users"].(float64)) != len(users[str(row, "event")]) {
				t.Errorf("top %v, want count %d users %d", row, counts[str(row, "event")], len(users[str(row, "event")]))
			}
		}

		// Nothing in range: an empty list, not null, over whole days or not.
		for _, r := range [][2]time.Time{{base.AddDate(-1, 0, 0), base.AddDate(-1, 0, 3)}, {base.AddDate(-1, 0, 0), base.AddDate(-1, 0, 0).Add(time.Hour)}} {
			rq := url.Values{"from": {r[0].Format(time.RFC3339)}, "to": {r[1].Format(time.RFC3339)}}
			if top, ok := get("top-events", rq)["data"].([]any); !ok || len(top) != 0 {
				t.Errorf("top events over %v with no events: %#v", r, get("top-events", rq)["data"])
			}
		}

		// Top events over a range cut mid-hour and mid-day: whole days, whole
		// hours and minutes come from different places and must add up.
		for _, r := range [][2]time.Time{
			{base.Add(5*time.Hour + 17*time.Minute), base.Add(4*24*time.Hour + 3*time.Hour + 5*time.Minute)},
			{base.Add(30 * time.Minute), base.Add(20 * time.Hour)},
			{base.Add(-time.Hour), base.Add(2 * 24 * time.Hour)},
			{base.Add(3 * time.Hour), base.Add(3*24*time.Hour + 2*time.Hour)}, // whole hours at both edges
			{base, base.Add(3 * 24 * time.Hour)},                              // whole days only
			{history[10].at, history[100].at},                                 // from an event (in), to one (out)
			{history[10].at.Add(time.Nanosecond), history[100].at.Add(time.Nanosecond)},
			// Event 29 (22:43) is its user's only purchase in these: in, then
			// out by a nanosecond.
			{history[29].at, base.Add(49 * time.Hour)},
			{history[29].at.Add(time.Nanosecond), base.Add(49 * time.Hour)},
		} {
			counts, users := map[string]int64{}, map[string]map[string]bool{}
			for _, e := range history {
				if e.at.Before(r[0]) || !e.at.Before(r[1]) {
					continue
				}
				counts[e.typ]++
				if users[e.typ] == nil {
					users[e.typ] = map[string]bool{}
				}
				users[e.typ][e.user] = true
			}
			rq := url.Values{"from": {r[0].Format(time.RFC3339Nano)}, "to": {r[1].Format(time.RFC3339Nano)}}
			top := get("top-events", rq)["data"].([]any)
			if len(top) != len(counts) {
				t.Errorf("top events %v: %v, want %v", r, top, counts)
			}
			for _, x := range top {
				row := x.(map[string]any)
				if int64(row["count"].(float64)) != counts[str(row, "event")] || int(row["users"].(float64)) != len(users[str(row, "event")]) {
					t.Errorf("top %v over %v, want count %d users %d", row, r, counts[str(row, "event")], len(users[str(row, "event")]))
				}
			}
		}

		// Revenue per currency; the XYZ purchases failed processing.
		revenue := map[string]int64{}
		for _, e := range history {
			if e.typ == "purchase" && e.currency != "XYZ" {
				revenue[e.currency] += e.amount
			}
		}
		for _, bucket := range []string{"day", "hour"} {
			cur := get("revenue", url.Values{"from": q["from"], "to": q["to"], "bucket": {bucket}})["currencies"].([]any)
			if len(cur) != 2 {
				t.Fatalf("revenue currencies %v", cur)
			}
			for _, c := range cur {
				cm := c.(map[string]any)
				if int64(cm["totalAmount"].(float64)) != revenue[str(cm, "currency")] {
					t.Errorf("revenue %s by %s: %v, want %d", str(cm, "currency"), bucket, cm["totalAmount"], revenue[str(cm, "currency")])
				}
			}
		}

		// Funnel signup → cart_add → purchase within 48 h.
		steps := []string{"signup", "cart_add", "purchase"}
		byUser := map[string][]sent{}
		for _, e := range history {
			byUser[e.user] = append(byUser[e.user], e)
		}
		want := make([]int, 3)
		for _, evs := range byUser {
			step, deadline := 0, time.Time{}
			for _, e := range evs {
				if step == 0 && e.typ == steps[0] {
					step, deadline = 1, e.at.Add(48*time.Hour)
				} else if step > 0 && step < 3 && e.typ == steps[step] && !e.at.After(deadline) {
					step++
				}
			}
			for s := 0; s < step; s++ {
				want[s]++
			}
		}
		f := get("funnel", url.Values{"from": q["from"], "to": q["to"], "steps": {strings.Join(steps, ",")}, "window": {"48h"}})["steps"].([]any)
		for i, s := range f {
			if got := int(s.(map[string]any)["users"].(float64)); got != want[i] {
				t.Errorf("funnel step %s: %d users, want %d", steps[i], got, want[i])
			}
		}
		if want[0] == 0 || want[2] == 0 {
			t.Fatalf("funnel oracle %v proves nothing", want)
		}

		// Retention: every user is in exactly one daily cohort.
		cohorts := get("retention", url.Values{"from": q["from"], "to": q["to"], "period": {"day"}, "periods": {"3"}})["cohorts"].([]any)
		var size float64
		for _, c := range cohorts {
			cm := c.(map[string]any)
			size += cm["size"].(float64)
			if cm["size"].(float64) > 0 && cm["retained"].([]any)[0].(float64) != cm["size"].(float64) {
				t.Errorf("cohort %v: everyone is active in period 0", cm)
			}
		}
		if size != 7 {
			t.Errorf("cohorts hold %v users, want 7", size)
		}
		// Weekly: users active in each week since their first (UTC, from
		// Monday), from the weekly roll-up.
		weeks := map[string]map[int]bool{}
		firstWeek := map[string]time.Time{}
		week := func(at time.Time) time.Time {
			d := at.Truncate(24 * time.Hour)
			return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
		}
		for _, e := range history {
			if w, ok := firstWeek[e.user]; !ok || week(e.at).Before(w) {
				firstWeek[e.user] = week(e.at)
			}
		}
		for _, e := range history {
			if weeks[e.user] == nil {
				weeks[e.user] = map[int]bool{}
			}
			weeks[e.user][int(week(e.at).Sub(firstWeek[e.user])/(7*24*time.Hour))] = true
		}
		cohorts = get("retention", url.Values{"from": q["from"], "to": q["to"], "period": {"week"}, "periods": {"2"}})["cohorts"].([]any)
		var retained [3]float64
		for _, c := range cohorts {
			for p, n := range c.(map[string]any)["retained"].([]any) {
				retained[p] += n.(float64)
			}
		}
		for p := range retained {
			var want float64
			for _, w := range weeks {
				if w[p] {
					want++
				}
			}
			if retained[p] != want {
				t.Errorf("weekly retention, period %d: %v users, want %v", p, retained[p], want)
			}
		}
		if retained[0] != 7 {
			t.Errorf("weekly retention %v: all 7 users are active in their first week", retained)
		}

		for _, c := range []struct{ path, query, field string }{
			{"events", "bucket=year", "bucket"}, {"events", "tz=Mars/Olympus", "tz"}, {"events", "from=soon", "from"},
			{"events", "bucket=minute&from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z", "bucket"},
			{"top-events", "limit=0", "limit"}, {"funnel", "steps=a", "steps"}, {"funnel", "steps=a,b&window=forever", "window"},
			{"retention", "period=year", "period"}, {"retention", "periods=99", "periods"}, {"users", "bucket=minute", "bucket"},
		} {
			r := nd.do("GET", "/v1/projects/"+tn.project+"/analytics/"+c.path+"?"+c.query, "", env.AdminToken)
			if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), `"field":"`+c.field+`"`) {
				t.Errorf("%s?%s: %d %s", c.path, c.query, r.Status, r.Body)
			}
		}
		// A publishable key never reads analytics.
		req, _ := http.NewRequest("GET", nd.base+"/v1/projects/"+tn.project+"/analytics/events", nil)
		req.Header.Set("X-Api-Key", tn.pk)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("publishable key read analytics: %d", resp.StatusCode)
		}
	})
}
