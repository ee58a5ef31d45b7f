package api

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gamify/boost/queries"
)

// analyticsRange reads from, to, bucket and tz. Defaults: the last 7 days
// up to now, daily buckets, UTC.
func analyticsRange(r *http.Request, defaultBucket queries.Bucket, allowed ...queries.Bucket) (queries.Range, *Error) {
	q := r.URL.Query()
	rg := queries.Range{Bucket: defaultBucket, Loc: time.UTC}
	if b := q.Get("bucket"); b != "" {
		rg.Bucket = queries.Bucket(b)
	}
	ok := false
	var names []string
	for _, a := range allowed {
		ok = ok || a == rg.Bucket
		names = append(names, string(a))
	}
	if !ok {
		return rg, errBadRequest("bucket", "bucket must be one of %s", strings.Join(names, ", "))
	}
	if tz := q.Get("tz"); tz != "" {
		loc, err := time.LoadLocation(tz)
		if err != nil || tz == "Local" {
			return rg, errBadRequest("tz", "tz must be an IANA time zone such as Europe/Paris")
		}
		rg.Loc = loc
	}
	var e *Error
	if rg.From, e = parseTimeParam(r, "from"); e != nil {
		return rg, e
	}
	if rg.To, e = parseTimeParam(r, "to"); e != nil {
		return rg, e
	}
	if rg.To.IsZero() {
		rg.To = queries.CeilMicro(time.Now().UTC())
	}
	if rg.From.IsZero() {
		rg.From = rg.To.AddDate(0, 0, -7)
	}
	if !rg.From.Before(rg.To) {
		return rg, errBadRequest("from", "from must be before to")
	}
	if rg.To.Sub(rg.From) > 400*24*time.Hour {
		return rg, errBadRequest("from", "the range may span at most 400 days")
	}
	return rg, nil
}

// projectRange reads the project id and the range of an analytics request,
// answering the error itself when either is wrong.
func projectRange(w http.ResponseWriter, r *http.Request, def queries.Bucket, allowed ...queries.Bucket) (string, queries.Range, bool) {
	projectID, e := pathID(r, "projectId")
	if e == nil {
		var rg queries.Range
		if rg, e = analyticsRange(r, def, allowed...); e == nil {
			return projectID, rg, true
		}
	}
	writeError(w, e)
	return "", queries.Range{}, false
}

func eventTypes(r *http.Request) []string {
	return queries.SplitNames(append(r.URL.Query()["event"], r.URL.Query()["type"]...)...)
}

func (s *Server) analyticsError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, queries.ErrTooManyBuckets) {
		writeError(w, errBadRequest("bucket", "the range holds more than %d buckets; use a wider bucket", queries.MaxBuckets))
		return
	}
	writeError(w, s.lookupError(r.Context(), err, "", ""))
}

func (s *Server) analyticsEvents(w http.ResponseWriter, r *http.Request) {
	projectID, rg, ok := projectRange(w, r, queries.Day, queries.Minute, queries.Hour, queries.Day, queries.Week)
	if !ok {
		return
	}
	starts, series, err := s.queries(r).EventCounts(r.Context(), projectID, eventTypes(r), rg)
	if err != nil {
		s.analyticsError(w, r, err)
		return
	}
	total := make([]int64, len(starts))
	for _, sr := range series {
		for i, c := range sr.Counts {
			total[i] += c
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"bucket": rg.Bucket, "tz": rg.Loc.String(), "buckets": starts,
		"series": series, "total": total})
}

func (s *Server) analyticsUsers(w http.ResponseWriter, r *http.Request) {
	projectID, rg, ok := projectRange(w, r, queries.Day, queries.Hour, queries.Day, queries.Week, queries.Month)
	if !ok {
		return
	}
	starts, counts, err := s.queries(r).UniqueUsers(r.Context(), projectID, rg)
	if err != nil {
		s.analyticsError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"bucket": rg.Bucket, "tz": rg.Loc.String(), "buckets": starts, "users": counts})
}

func (s *Server) analyticsTop(w http.ResponseWriter, r *http.Request) {
	projectID, rg, ok := projectRange(w, r, queries.Day, queries.Day)
	if !ok {
		return
	}
	limit := 10
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, errBadRequest("limit", "limit must be an integer from 1 to 1000"))
			return
		}
		limit = n
	}
	top, err := s.queries(r).TopEvents(r.Context(), projectID, rg.From, rg.To, limit)
	if err != nil {
		s.analyticsError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"from": rg.From, "to": rg.To, "data": top})
}

func (s *Server) analyticsRevenue(w http.ResponseWriter, r *http.Request) {
	projectID, rg, ok := projectRange(w, r, queries.Day, queries.Hour, queries.Day, queries.Week, queries.Month)
	if !ok {
		return
	}
	starts, series, err := s.queries(r).Revenue(r.Context(), projectID, rg)
	if err != nil {
		s.analyticsError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"bucket": rg.Bucket, "tz": rg.Loc.String(), "buckets": starts, "currencies": series})
}

func (s *Server) analyticsFunnel(w http.ResponseWriter, r *http.Request) {
	projectID, rg, ok := projectRange(w, r, queries.Day, queries.Day)
	if !ok {
		return
	}
	steps := queries.SplitNames(r.URL.Query().Get("steps"))
	if len(steps) < 2 || len(steps) > 10 {
		writeError(w, errBadRequest("steps", "steps must list 2 to 10 comma-separated event names"))
		return
	}
	window := 24 * time.Hour
	if v := r.URL.Query().Get("window"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > 90*24*time.Hour {
			writeError(w, errBadRequest("window", "window must be a duration such as 30m or 24h, at most 2160h"))
			return
		}
		window = d
	}
	out, err := s.queries(r).Funnel(r.Context(), projectID, steps, window, rg.From, rg.To)
	if err != nil {
		s.analyticsError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"from": rg.From, "to": rg.To, "window": window.String(), "steps": out})
}

func (s *Server) analyticsRetention(w http.ResponseWriter, r *http.Request) {
	projectID, e := pathID(r, "projectId")
	if e != nil {
		writeError(w, e)
		return
	}
	q := r.URL.Query()
	period := queries.Bucket(q.Get("period"))
	if period == "" {
		period = queries.Day
	}
	if period != queries.Day && period != queries.Week {
		writeError(w, errBadRequest("period", "period must be day or week"))
		return
	}
	rg, e := analyticsRange(r, queries.Day, queries.Day, queries.Hour, queries.Week, queries.Month, queries.Minute)
	if e != nil {
		writeError(w, e)
		return
	}
	periods := 7
	if v := q.Get("periods"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 52 {
			writeError(w, errBadRequest("periods", "periods must be an integer from 1 to 52"))
			return
		}
		periods = n
	}
	cohorts, err := s.queries(r).Retention(r.Context(), projectID, period, rg.From, rg.To, periods)
	if err != nil {
		s.analyticsError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"period": period, "cohorts": cohorts})
}
