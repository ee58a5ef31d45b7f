package dashboard

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gamify/boost/queries"
)

// analyticsForm is the analytics page's controls, as chosen in the URL.
type analyticsForm struct {
	Range     string // 24h, 7d, 30d, 90d
	Bucket    string // hour, day, week
	Users     string // day, week, month: DAU, WAU, MAU
	TZ        string
	Types     string
	Steps     []string
	Window    string
	Retention string // day, week
}

var (
	ranges = map[string]time.Duration{"24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour,
		"30d": 30 * 24 * time.Hour, "90d": 90 * 24 * time.Hour}
	windows = map[string]time.Duration{"1h": time.Hour, "1d": 24 * time.Hour, "7d": 7 * 24 * time.Hour,
		"30d": 30 * 24 * time.Hour}
)

// analyticsData is everything the charts draw, handed to the page's script
// as JSON.
type analyticsData struct {
	Buckets     []time.Time             `json:"buckets"`
	Bucket      string                  `json:"bucket"`
	TZ          string                  `json:"tz"`
	Series      []queries.Series        `json:"series"`
	UserBuckets []time.Time             `json:"userBuckets"`
	UserBucket  string                  `json:"userBucket"`
	Users       []int64                 `json:"users"`
	Top         []queries.TopEvent      `json:"top"`
	Revenue     []queries.RevenueSeries `json:"revenue"`
	Funnel      []queries.FunnelStep    `json:"funnel"`
	Cohorts     []queries.Cohort        `json:"cohorts"`
	Totals      map[string]int64        `json:"totals"`
	Errors      map[string]string       `json:"-"`
	Form        analyticsForm           `json:"-"`
	TopTypes    []string                `json:"-"`
	Retained    [][]retentionCell       `json:"-"`
	Empty       bool                    `json:"-"`
	From, To    time.Time               `json:"-"`
}

type retentionCell struct {
	Rate  float64
	Count int64
	Shade int // 0–10, a CSS class
}

// maxSeries bounds the event-count chart to the busiest types; the rest
// are summed into "other" so the chart stays readable.
const maxSeries = 8

func (d *Dashboard) analyticsPage(w http.ResponseWriter, r *http.Request, pc *projectCtx) {
	q := r.URL.Query()
	f := analyticsForm{Range: q.Get("range"), Bucket: q.Get("bucket"), Users: q.Get("users"), TZ: q.Get("tz"),
		Types: strings.TrimSpace(q.Get("types")), Window: q.Get("window"), Retention: q.Get("retention")}
	for _, s := range q["step"] {
		if s = strings.TrimSpace(s); s != "" {
			f.Steps = append(f.Steps, s)
		}
	}
	v := pc.view("Analytics", "analytics")
	var problems []string
	if _, ok := ranges[f.Range]; !ok {
		if f.Range != "" {
			problems = append(problems, "range must be 24h, 7d, 30d or 90d")
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
	loc := time.UTC
	if f.TZ == "" {
		f.TZ = "UTC"
	} else if l, err := time.LoadLocation(f.TZ); err != nil || f.TZ == "Local" {
		problems = append(problems, "tz "+f.TZ+" is not an IANA time zone (e.g. Europe/Paris); showing UTC")
		f.TZ = "UTC"
	} else {
		loc = l
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
	if len(problems) > 0 {
		v.Error = strings.Join(problems, "; ") + "."
	}

	to := time.Now().UTC()
	from := to.Add(-ranges[f.Range])
	var types []string
	for _, t := range strings.Split(f.Types, ",") {
		if t = strings.TrimSpace(t); t != "" {
			types = append(types, t)
		}
	}
	data := &analyticsData{Bucket: f.Bucket, TZ: f.TZ, UserBucket: f.Users, Form: f, Errors: map[string]string{},
		Totals: map[string]int64{}, From: from, To: to}
	err := d.read(r.Context(), pc, func(ctx context.Context, qs *queries.Queries) error {
		var err error
		rg := queries.Range{From: from, To: to, Bucket: queries.Bucket(f.Bucket), Loc: loc}
		if data.Buckets, data.Series, err = qs.EventCounts(ctx, pc.project.ID, types, rg); err != nil {
			return err
		}
		urg := queries.Range{From: from, To: to, Bucket: queries.Bucket(f.Users), Loc: loc}
		if data.UserBuckets, data.Users, err = qs.UniqueUsers(ctx, pc.project.ID, urg); err != nil {
			return err
		}
		if data.Top, err = qs.TopEvents(ctx, pc.project.ID, from, to, 10); err != nil {
			return err
		}
		if _, data.Revenue, err = qs.Revenue(ctx, pc.project.ID, rg); err != nil {
			return err
		}
		if len(f.Steps) >= 2 {
			if data.Funnel, err = qs.Funnel(ctx, pc.project.ID, f.Steps, windows[f.Window], from, to); err != nil {
				return err
			}
		}
		data.Cohorts, err = qs.Retention(ctx, pc.project.ID, queries.Bucket(f.Retention), from, to, 7)
		return err
	})
	if err != nil {
		d.queryFailed(w, r, err, "Analytics unavailable", "")
		return
	}
	data.Series = busiest(data.Series, maxSeries)
	for _, s := range data.Series {
		data.Totals["events"] += s.Total
	}
	for _, t := range data.Top {
		data.TopTypes = append(data.TopTypes, t.Event)
	}
	data.Empty = data.Totals["events"] == 0
	for _, c := range data.Cohorts {
		row := make([]retentionCell, len(c.Rates))
		for i, rate := range c.Rates {
			row[i] = retentionCell{Rate: rate, Count: c.Retained[i], Shade: int(rate*10 + 0.5)}
		}
		data.Retained = append(data.Retained, row)
	}
	v.Data = data
	d.render(w, r, http.StatusOK, "analytics", v)
}

// busiest keeps the n−1 series with the most events and sums the rest.
func busiest(series []queries.Series, n int) []queries.Series {
	if len(series) <= n {
		return series
	}
	sorted := slices.Clone(series)
	slices.SortStableFunc(sorted, func(a, b queries.Series) int {
		switch {
		case a.Total > b.Total:
			return -1
		case a.Total < b.Total:
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	other := queries.Series{Name: "(other)", Counts: make([]int64, len(sorted[0].Counts))}
	for _, s := range sorted[n-1:] {
		for i, c := range s.Counts {
			other.Counts[i] += c
		}
		other.Total += s.Total
	}
	return append(sorted[:n-1:n-1], other)
}
