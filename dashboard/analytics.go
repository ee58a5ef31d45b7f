package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gamify/boost/queries"
)

// analyticsForm is the analytics page's controls, as chosen in the URL.
type analyticsForm struct {
	Range     string // 24h, 7d, 30d, 90d, custom
	From, To  string // the days of a custom range, YYYY-MM-DD, both included
	Bucket    string // hour, day, week
	Users     string // day, week, month: DAU, WAU, MAU
	TZ        string
	Types     string
	Steps     []string
	Window    string
	Retention string // day, week
}

// Link is the page's URL with one control changed, for the tabs.
func (f analyticsForm) Link(key, value string) string {
	q := url.Values{"range": {f.Range}, "from": {f.From}, "to": {f.To}, "bucket": {f.Bucket}, "users": {f.Users},
		"tz": {f.TZ}, "types": {f.Types}, "step": f.Steps, "window": {f.Window}, "retention": {f.Retention}}
	q.Set(key, value)
	return "?" + q.Encode()
}

var (
	ranges = map[string]time.Duration{"24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour,
		"30d": 30 * 24 * time.Hour, "90d": 90 * 24 * time.Hour}
	windows = map[string]time.Duration{"1h": time.Hour, "1d": 24 * time.Hour, "7d": 7 * 24 * time.Hour,
		"30d": 30 * 24 * time.Hour}
)

// analyticsData is what the analytics page shows. The charts are drawn in
// the browser from the query API (the *URL fields); the tables (top events,
// funnel, retention) are rendered here from the same queries.
type analyticsData struct {
	Form       analyticsForm
	EventsURL  string
	UsersURL   string
	RevenueURL string
	Top        []queries.TopEvent
	TopTypes   []string
	Funnel     []queries.FunnelStep
	Cohorts    []queries.Cohort
	Retained   [][]retentionCell
	Empty      bool
}

type retentionCell struct {
	Rate  float64
	Count int64
	Shade int // 0–10, a CSS class
}

// analyticsPage shows the project's analytics for the controls in the URL,
// bad ones replaced by defaults and named in the page's error.
func (d *Dashboard) analyticsPage(w http.ResponseWriter, r *http.Request, pc *projectCtx) {
	f := analyticsFormFrom(r.URL.Query())
	v := pc.view("Analytics", "analytics")
	problems := f.settle()
	from, to, problem := f.span(time.Now().UTC())
	if problem != "" {
		problems = append(problems, problem)
	}
	if len(problems) > 0 {
		v.Error = strings.Join(problems, "; ") + "."
	}
	data := newAnalyticsData(f, pc.project.ID, from, to)
	err := d.read(r.Context(), pc, func(ctx context.Context, qs *queries.Queries) error {
		return data.readTables(ctx, qs, pc.project.ID, from, to)
	})
	if err != nil {
		d.queryFailed(w, r, err, "Analytics unavailable", "")
		return
	}
	data.Empty = len(data.Top) == 0
	for _, t := range data.Top {
		data.TopTypes = append(data.TopTypes, t.Event)
	}
	data.Retained = retentionGrid(data.Cohorts)
	v.Data = data
	d.render(w, r, http.StatusOK, "analytics", v)
}

// analyticsFormFrom reads the controls from the URL's query, as given.
func analyticsFormFrom(q url.Values) analyticsForm {
	f := analyticsForm{Range: q.Get("range"), From: q.Get("from"), To: q.Get("to"), Bucket: q.Get("bucket"), Users: q.Get("users"), TZ: q.Get("tz"),
		Types: strings.TrimSpace(q.Get("types")), Window: q.Get("window"), Retention: q.Get("retention")}
	for _, s := range q["step"] {
		if s = strings.TrimSpace(s); s != "" {
			f.Steps = append(f.Steps, s)
		}
	}
	return f
}

// settle replaces each missing or bad control with its default (a bucket
// and retention period that suit the range) and returns what was wrong
// with those worth telling about.
func (f *analyticsForm) settle() []string {
	var problems []string
	if _, ok := ranges[f.Range]; !ok && f.Range != "custom" {
		if f.Range != "" {
			problems = append(problems, "range must be 24h, 7d, 30d, 90d or custom")
		}
		f.Range = "7d"
	}
	if !slices.Contains([]string{"hour", "day", "week"}, f.Bucket) {
		if f.Bucket != "" {
			problems = append(problems, "bucket must be hour, day or week")
		}
		f.Bucket = map[string]string{"24h": "hour", "90d": "week"}[f.Range]
		if f.Bucket == "" {
			f.Bucket = "day"
		}
	}
	if !slices.Contains([]string{"day", "week", "month"}, f.Users) {
		f.Users = "day"
	}
	if f.TZ == "" {
		f.TZ = "UTC"
	} else if _, err := time.LoadLocation(f.TZ); err != nil || f.TZ == "Local" {
		problems = append(problems, "tz "+f.TZ+" is not an IANA time zone (e.g. Europe/Paris); showing UTC")
		f.TZ = "UTC"
	}
	if _, ok := windows[f.Window]; !ok {
		f.Window = "1d"
	}
	if f.Retention != "week" {
		f.Retention = "day"
		if f.Range == "90d" {
			f.Retention = "week"
		}
	}
	if len(f.Steps) > 6 {
		problems = append(problems, "a funnel has at most 6 steps")
		f.Steps = f.Steps[:6]
	}
	return problems
}

// newAnalyticsData starts the page with the query API URLs its charts
// fetch, for [from, to) in the form's time zone.
func newAnalyticsData(f analyticsForm, projectID string, from, to time.Time) *analyticsData {
	types := queries.SplitNames(f.Types)
	api := func(kind string, extra url.Values) string {
		q := url.Values{"from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}, "tz": {f.TZ}}
		for k, vs := range extra {
			q[k] = vs
		}
		return "/v1/projects/" + projectID + "/analytics/" + kind + "?" + q.Encode()
	}
	return &analyticsData{Form: f,
		EventsURL:  api("events", url.Values{"bucket": {f.Bucket}, "event": types}),
		UsersURL:   api("users", url.Values{"bucket": {f.Users}}),
		RevenueURL: api("revenue", url.Values{"bucket": {f.Bucket}}),
	}
}

// readTables runs the queries behind the page's tables: the top events,
// the funnel when it has two steps at least, and the retention cohorts.
func (data *analyticsData) readTables(ctx context.Context, qs *queries.Queries, projectID string, from, to time.Time) error {
	f := data.Form
	var err error
	if data.Top, err = qs.TopEvents(ctx, projectID, from, to, 10); err != nil {
		return err
	}
	if len(f.Steps) >= 2 {
		if data.Funnel, err = qs.Funnel(ctx, projectID, f.Steps, windows[f.Window], from, to); err != nil {
			return err
		}
	}
	data.Cohorts, err = qs.Retention(ctx, projectID, queries.Bucket(f.Retention), from, to, 7)
	return err
}

// retentionGrid is the cohorts' cells, each shaded by its rate.
func retentionGrid(cohorts []queries.Cohort) [][]retentionCell {
	var grid [][]retentionCell
	for _, c := range cohorts {
		row := make([]retentionCell, len(c.Rates))
		for i, rate := range c.Rates {
			row[i] = retentionCell{Rate: rate, Count: c.Retained[i], Shade: int(rate*10 + 0.5)}
		}
		grid = append(grid, row)
	}
	return grid
}

// maxRangeDays is the widest range the query API takes.
const maxRangeDays = 400

// span is the [from, to) the page shows: a preset ending now, or whole days
// in the page's time zone. A bad custom range falls back to the last 7 days
// and says why. From and To are filled in either way, so switching to a
// custom range starts from what is on screen.
func (f *analyticsForm) span(now time.Time) (from, to time.Time, problem string) {
	loc, err := time.LoadLocation(f.TZ)
	if err != nil {
		loc = time.UTC
	}
	if f.Range == "custom" {
		fd, err1 := time.ParseInLocation(time.DateOnly, f.From, loc)
		td, err2 := time.ParseInLocation(time.DateOnly, f.To, loc)
		switch {
		case err1 != nil || err2 != nil:
			problem = "from and to must be dates such as 2026-11-01"
		case td.Before(fd):
			problem = "from must not be after to"
		case td.Sub(fd) >= maxRangeDays*24*time.Hour:
			problem = fmt.Sprintf("a range may span at most %d days", maxRangeDays)
		default:
			return fd.UTC(), td.AddDate(0, 0, 1).UTC(), ""
		}
		f.Range = "7d"
	}
	to = now
	from = to.Add(-ranges[f.Range])
	f.From, f.To = from.In(loc).Format(time.DateOnly), to.In(loc).Format(time.DateOnly)
	return from, to, problem
}
